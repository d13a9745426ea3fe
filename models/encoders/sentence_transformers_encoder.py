"""A sentence-transformers backend for users with a model hub or a local model directory.

Any model id or directory that ``SentenceTransformer`` loads works (a plain transformers checkpoint
is wrapped with mean pooling by sentence-transformers itself). e5-family models need their
``query: `` / ``passage: `` prefixes; set ``prefixes=False`` for models trained without them.
torch and sentence-transformers are optional: ``pip install 'koe[hub]'``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.encoders.base import Encoder, Prefix

__all__ = ["SentenceTransformerEncoder"]


class SentenceTransformerEncoder(Encoder):
    def __init__(
        self,
        model_name_or_path: str,
        *,
        prefixes: bool = True,
        device: str = "cpu",
        batch_size: int = 32,
        cache_size: int = 50_000,
    ) -> None:
        super().__init__(batch_size=batch_size, cache_size=cache_size)
        self.model_name_or_path = model_name_or_path
        self.prefixes = prefixes
        self.device = device
        self.name = f"st:{model_name_or_path}"
        self._model: Any = None
        model = self._get_model()
        # sentence-transformers 6 renamed the method; older releases only have the old name.
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(get_dim())

    def _get_model(self) -> Any:
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise ImportError(
                    "the sentence-transformers encoder needs torch and sentence-transformers: "
                    "pip install 'koe[hub]'"
                ) from exc
            self._model = SentenceTransformer(self.model_name_or_path, device=self.device)
        return self._model

    def _encode_batch(self, texts: list[str], prefix: Prefix) -> np.ndarray:
        inputs = [f"{prefix}: {t}" for t in texts] if self.prefixes else texts
        vectors = self._get_model().encode(
            inputs, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype=np.float32)
