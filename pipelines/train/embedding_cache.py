"""A disk cache of embeddings for training and benchmarks (one .npz per encoder).

Training re-embeds the same ~20k sentences on every run; at ~20 ms a sentence on this machine that
is minutes, so vectors are kept under the cache directory keyed by a digest of the text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.encoders import Encoder

__all__ = ["CachedEmbedder"]


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class CachedEmbedder:
    def __init__(self, encoder: Encoder, cache_dir: str | Path, *, progress: bool = True) -> None:
        self.encoder = encoder
        safe = "".join(ch if ch.isalnum() else "_" for ch in encoder.name)
        self.path = Path(cache_dir) / f"embeddings-{safe}.npz"
        self.progress = progress
        self._store: dict[str, np.ndarray] = {}
        if self.path.exists():
            with np.load(self.path, allow_pickle=False) as npz:
                self._store = dict(zip(npz["keys"].tolist(), npz["vecs"], strict=True))

    def encode(self, texts: Sequence[str], chunk: int = 256) -> np.ndarray:
        missing = sorted({t for t in texts if _key(t) not in self._store}, key=len)
        if missing:
            bar = tqdm(total=len(missing), desc="embedding", unit="text", disable=not self.progress)
            for start in range(0, len(missing), chunk):
                batch = missing[start : start + chunk]
                for text, vec in zip(batch, self.encoder.encode(batch), strict=True):
                    self._store[_key(text)] = vec
                bar.update(len(batch))
                if start // chunk % 8 == 7:
                    self.save()
            bar.close()
            self.save()
        out = np.zeros((len(texts), self.encoder.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = self._store[_key(text)]
        return out

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self._store), dtype="U40")
        vecs = (
            np.stack(list(self._store.values()))
            if self._store
            else np.zeros((0, self.encoder.dim), np.float32)
        )
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=keys, vecs=vecs)
        tmp.replace(self.path)
