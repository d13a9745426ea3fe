"""The sentence-transformers path for users with a model hub, on a tiny model this test builds itself.

No hub is reachable here, so the test trains a WordPiece tokenizer on a few Japanese sentences, makes a
two-layer BERT with random weights, and saves it twice: as a plain transformers checkpoint and as a
sentence-transformers directory. Both must load through ``load_encoder``; heads trained on it must
record it and refuse another encoder; the classify stage must run end to end on it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
st = pytest.importorskip("sentence_transformers")

from models.bundle import load_bundle  # noqa: E402
from models.encoders import load_encoder  # noqa: E402
from pipelines.classify import classify_texts  # noqa: E402
from pipelines.errors import ModelError  # noqa: E402
from pipelines.train.train_models import train_models  # noqa: E402

pytestmark = pytest.mark.hub

MINI = Path(__file__).parents[1] / "fixtures" / "mini_corpus"
SENTENCES = [
    "配送が遅くて困りました",
    "スタッフの対応がとても丁寧でした",
    "料金が高すぎるので解約を考えています",
    "アプリが使いやすくなって助かります",
    "エラーでログインできません",
    "ありがとうございました",
]


def _build_tiny_bert(root: Path, seed: int = 0) -> Path:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    lines = (MINI / "part-mini.jsonl").read_text(encoding="utf-8").splitlines()
    corpus = [json.loads(line)["sentences"][0]["text"] for line in lines]
    tok.train_from_iterator(
        corpus + SENTENCES, trainers.WordPieceTrainer(vocab_size=400, special_tokens=specials)
    )
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tok.decoder = decoders.WordPiece()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=128,
    )  # fmt: skip
    config = BertConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128,
    )  # fmt: skip
    torch.manual_seed(seed)
    root.mkdir(parents=True)
    BertModel(config).eval().save_pretrained(root)
    fast.save_pretrained(root)
    return root


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("hub")
    plain = _build_tiny_bert(base / "tiny-bert")
    try:  # sentence-transformers >= 6 moved the modules
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:  # pragma: no cover - older releases
        from sentence_transformers.models import Pooling, Transformer
    wrapped = st.SentenceTransformer(
        modules=[Transformer(str(plain), max_seq_length=128), Pooling(32, "mean")], device="cpu"
    )
    wrapped.save(str(base / "tiny-st"))
    other = _build_tiny_bert(base / "other-bert", seed=1)
    return {"plain": plain, "st": base / "tiny-st", "other": other}


def test_sentence_transformers_directory_loads_and_embeds(tiny_models: dict[str, Path]) -> None:
    enc = load_encoder(f"st:{tiny_models['st']}")
    assert enc.name == f"st:{tiny_models['st']}" and enc.dim == 32
    v = enc.encode(SENTENCES)
    assert v.shape == (len(SENTENCES), 32)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert np.allclose(v, enc.encode(SENTENCES), atol=1e-6)  # deterministic (and served from the cache)
    assert not np.allclose(v[0], v[1])  # different texts, different vectors


def test_plain_transformers_checkpoint_is_wrapped_with_mean_pooling(tiny_models: dict[str, Path]) -> None:
    enc = load_encoder(str(tiny_models["plain"]))
    wrapped = load_encoder(f"st:{tiny_models['st']}")
    a, b = enc.encode(SENTENCES[:3]), wrapped.encode(SENTENCES[:3])
    assert np.allclose(a, b, atol=1e-5)  # same weights, same mean pooling


def test_heads_trained_on_the_hub_encoder_record_it_and_refuse_another(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    spec = f"st:{tiny_models['st']}"
    train_models(
        tmp_path / "artifacts", encoder=spec, corpus_dir=MINI, use_chabsa=False, cache_dir=tmp_path / "cache",
        progress=False,
    )  # fmt: skip
    meta = json.loads((tmp_path / "artifacts" / "sentiment" / "meta.json").read_text(encoding="utf-8"))
    assert meta["encoder"] == spec
    bundle = load_bundle(tmp_path / "artifacts", encoder=spec)
    out = classify_texts(["配送が遅くて困りました。でもスタッフは親切でした", ""], bundle)
    assert len(out) == 2 and out[1].themes == []
    assert abs(sum(out[0].scores.values()) - 1.0) < 1e-4
    assert len(out[0].sentences) == 2
    with pytest.raises(ModelError, match="trained on encoder"):
        load_bundle(tmp_path / "artifacts", encoder=f"st:{tiny_models['other']}")
