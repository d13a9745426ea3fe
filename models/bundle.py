"""The set of models one process uses, loaded once and shared by the CLI, the API and workers.

``artifacts/`` holds one directory per head (``sentiment/``, ``themes/``), each trained on the encoder
named in its ``meta.json``. Themes that the taxonomy has but the theme head was not trained on
(custom themes) are scored by their example sentences, whose embeddings are computed here, once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from models.encoders import DEFAULT_ENCODER, Encoder, get_encoder
from models.sentiment import SentimentHead
from models.taxonomy import Taxonomy, default_taxonomy, load_taxonomy
from models.themes import ThemeClassifier
from models.tokenizer import JapaneseTokenizer, get_tokenizer
from pipelines.errors import ModelError

__all__ = ["ARTIFACTS_DIR", "ModelBundle", "get_bundle", "load_bundle"]

ARTIFACTS_DIR = Path(__file__).parent / "artifacts"


@dataclass
class ModelBundle:
    encoder: Encoder
    tokenizer: JapaneseTokenizer
    sentiment: SentimentHead
    themes: ThemeClassifier
    taxonomy: Taxonomy
    artifacts_dir: Path
    _prototypes: dict[str, np.ndarray] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def prototypes(self, theme_id: str) -> np.ndarray:
        """Embeddings of a custom theme's example sentences (computed once)."""
        return self._embedded(theme_id, "examples")

    def counter_prototypes(self, theme_id: str) -> np.ndarray:
        """Embeddings of a custom theme's counter-examples: sentences decided not to be about it (once)."""
        return self._embedded(theme_id, "counter_examples")

    def prototype_proba(self, theme_id: str, X_emb: np.ndarray) -> np.ndarray:
        """A custom theme's probability for texts with these embeddings: by its examples, against its
        counter-examples (``ThemeClassifier.prototype_proba``)."""
        return self.themes.prototype_proba(
            X_emb, self.prototypes(theme_id), self.counter_prototypes(theme_id)
        )

    def _embedded(self, theme_id: str, which: str) -> np.ndarray:
        key = f"{which}:{theme_id}"
        with self._lock:
            if key not in self._prototypes:
                self._prototypes[key] = self.encoder.encode(list(getattr(self.taxonomy.get(theme_id), which)))
            return self._prototypes[key]

    def with_taxonomy(self, taxonomy: Taxonomy) -> ModelBundle:
        """The same models under another taxonomy version (re-classification)."""
        return ModelBundle(
            self.encoder, self.tokenizer, self.sentiment, self.themes, taxonomy, self.artifacts_dir
        )

    def info(self) -> dict[str, object]:
        return {
            "encoder": self.encoder.name,
            "sentiment": self.sentiment.meta_.get("name", "sentiment")
            if hasattr(self.sentiment, "meta_")
            else "",
            "themes": self.themes.meta_.get("name", "themes") if hasattr(self.themes, "meta_") else "",
            "taxonomy": {"name": self.taxonomy.name, "version": self.taxonomy.version},
            "artifacts": str(self.artifacts_dir),
        }


def load_bundle(
    artifacts_dir: str | Path | None = None,
    *,
    encoder: str = DEFAULT_ENCODER,
    taxonomy_path: str | Path | None = None,
    num_threads: int | None = None,
    cache_dir: str | None = None,
) -> ModelBundle:
    root = Path(artifacts_dir) if artifacts_dir else ARTIFACTS_DIR
    if not (root / "sentiment").is_dir() or not (root / "themes").is_dir():
        raise ModelError(
            "no trained models found (expected sentiment/ and themes/ directories); "
            "train them with `koe train` or set KOE_ARTIFACTS_DIR",
            file=str(root),
        )
    enc = get_encoder(encoder, num_threads, cache_dir)
    taxonomy = load_taxonomy(taxonomy_path) if taxonomy_path else default_taxonomy()
    return ModelBundle(
        encoder=enc,
        tokenizer=get_tokenizer(),
        sentiment=SentimentHead.load(root / "sentiment", encoder_name=enc.name),
        themes=ThemeClassifier.load(root / "themes", encoder_name=enc.name),
        taxonomy=taxonomy,
        artifacts_dir=root,
    )


@lru_cache(maxsize=4)
def get_bundle(
    artifacts_dir: str | None = None,
    encoder: str = DEFAULT_ENCODER,
    taxonomy_path: str | None = None,
    num_threads: int | None = None,
    cache_dir: str | None = None,
) -> ModelBundle:
    """The process-wide bundle for these settings (loaded lazily, once)."""
    return load_bundle(
        artifacts_dir,
        encoder=encoder,
        taxonomy_path=taxonomy_path,
        num_threads=num_threads,
        cache_dir=cache_dir,
    )
