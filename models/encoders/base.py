"""The encoder interface and the cache every encoder shares.

An encoder turns texts into L2-normalised vectors. ``encode`` sorts texts by length, batches them,
restores the input order, and serves repeated texts (特になし, 満足) from an in-memory LRU cache,
so a survey where half the answers are identical pays for each distinct text once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from typing import Literal

import numpy as np

__all__ = ["Encoder", "Prefix"]

Prefix = Literal["query", "passage"]


class Encoder(ABC):
    """Base class: subclasses implement ``_encode_batch`` on already-deduplicated, length-sorted texts."""

    #: identifies the embedding space; heads record it and refuse another
    name: str
    dim: int
    max_chars: int = 512  # longer texts are truncated (the e5 window is 512 tokens)

    def __init__(self, batch_size: int = 32, cache_size: int = 50_000) -> None:
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()

    @abstractmethod
    def _encode_batch(self, texts: list[str], prefix: Prefix) -> np.ndarray:
        """Return an array (len(texts), dim) of L2-normalised float32 vectors."""

    def encode(self, texts: Sequence[str], prefix: Prefix = "query") -> np.ndarray:
        """Embed ``texts`` in order; an empty list gives a (0, dim) array."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        todo: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            key = (prefix, text[: self.max_chars])
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                out[i] = hit
            else:
                todo.setdefault(key[1], []).append(i)
        if todo:
            unique = sorted(todo, key=len)
            for start in range(0, len(unique), self.batch_size):
                batch = unique[start : start + self.batch_size]
                vectors = np.asarray(self._encode_batch(batch, prefix), dtype=np.float32)
                for text, vec in zip(batch, vectors, strict=True):
                    for i in todo[text]:
                        out[i] = vec
                    self._remember((prefix, text), vec)
        return out

    def _remember(self, key: tuple[str, str], vec: np.ndarray) -> None:
        if self.cache_size <= 0:
            return
        self._cache[key] = vec
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def info(self) -> dict[str, object]:
        return {"name": self.name, "dim": self.dim}
