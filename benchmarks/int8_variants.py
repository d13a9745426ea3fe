"""Int8 activation quantisation variants on the same weights and batches: throughput and exactness.

    python benchmarks/int8_variants.py [--texts 1000] [--threads 2] [--rounds 2]

Quantises the tuned fp32 graph three ways (onnxruntime's per-tensor activations with 8-bit and with
7-bit weights, and koe's per-token activations with 7-bit weights, ``models.e5_onnx.quantize``), then
encodes JRTE sentences with onnxruntime alone, in koe's length-bucketed batches and one text per call.
Printed per variant: texts/s batched and alone, mean / min cosine to fp32, and the largest change of a
vector between its batch and alone (what decides whether batching is safe). Machine-dependent: on AVX2
without VNNI int8 gains little over fp32.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.e5_onnx import quantize, quantize_per_tensor
from models.encoders import load_encoder
from pipelines.normalize import normalize_text
from pipelines.train.external import load_jrte


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--texts", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)
    import onnxruntime as ort

    enc: Any = load_encoder("e5-tuned-fp32")
    fp32 = enc.graph_path()
    enc.encode(["warm-up: builds the fp32 graph if it is not cached"])
    tmp = Path(tempfile.mkdtemp(prefix="koe-int8-"))
    graphs = {"fp32": fp32}
    for name, rr in (("per-tensor, 8-bit weights", False), ("per-tensor, 7-bit weights", True)):
        graphs[name] = tmp / f"{len(graphs)}.onnx"
        quantize_per_tensor(fp32, graphs[name], reduce_range=rr)
    graphs["per-token, 7-bit weights (koe)"] = tmp / "koe.onnx"
    quantize(fp32, graphs["per-token, 7-bit weights (koe)"])

    texts = random.Random(0).sample([normalize_text(t) for t, _ in load_jrte()], args.texts)
    rows = enc.tokenizer.token_ids(texts, "query")
    batched, alone = enc._sub_batches(rows), [[i] for i in range(len(rows))]

    def run(session: Any, groups: list[list[int]]) -> tuple[float, np.ndarray]:
        out = np.empty((len(rows), enc.dim), np.float32)
        start = time.perf_counter()
        for idx in groups:
            padded = enc.tokenizer.pad([rows[i] for i in idx])
            feeds = {
                "inputs_embeds": enc.weights.word_embeddings(padded.ids),
                "attention_mask": padded.mask.astype(np.float32),
            }
            out[idx] = session.run(None, feeds)[0]
        return time.perf_counter() - start, out

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads, options.log_severity_level = (
        args.threads,
        1,
        3,
    )
    sessions = {
        k: ort.InferenceSession(str(v), options, providers=["CPUExecutionProvider"])
        for k, v in graphs.items()
    }
    _, reference = run(sessions["fp32"], batched)
    print(
        f"{len(texts)} JRTE sentences, {sum(map(len, rows)):,} tokens, {len(batched)} batches, {args.threads} threads\n"
    )
    print(
        "| variant | round | batched texts/s | alone texts/s | cosine to fp32 (mean / min) | max batched - alone |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for r in range(1, args.rounds + 1):
        for name, session in sessions.items():
            t_b, v_b = run(session, batched)
            t_a, v_a = run(session, alone)
            cos = (v_b * reference).sum(1)
            print(
                f"| {name} | {r} | {len(texts) / t_b:.0f} | {len(texts) / t_a:.0f} | "
                f"{cos.mean():.4f} / {cos.min():.4f} | {np.abs(v_b - v_a).max():.1e} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
