"""Lexical evidence: TF-IDF over fugashi content lemmas (negated predicates marked ``:NEG``).

Embeddings generalise; lemmas are precise and explainable (「解約」, 「配送」, 「エラー」). The theme
classifier uses both, and reports the lemmas that pushed a theme up as its evidence.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from models.base import NotFittedError

__all__ = ["LemmaVectorizer"]


class LemmaVectorizer:
    def __init__(self, min_df: int = 2, max_features: int = 4000) -> None:
        self.min_df = min_df
        self.max_features = max_features

    def fit(self, docs: Sequence[Sequence[str]]) -> LemmaVectorizer:
        df: Counter[str] = Counter()
        for doc in docs:
            df.update(set(doc))
        kept = [(term, n) for term, n in df.items() if n >= self.min_df]
        kept.sort(key=lambda item: (-item[1], item[0]))
        kept = kept[: self.max_features]
        n_docs = max(len(docs), 1)
        self.vocabulary_ = {term: i for i, (term, _) in enumerate(kept)}
        self.terms_ = [term for term, _ in kept]
        self.idf_ = np.array([math.log((1 + n_docs) / (1 + n)) + 1.0 for _, n in kept], dtype=np.float32)
        return self

    def transform(self, docs: Sequence[Sequence[str]]) -> np.ndarray:
        if not hasattr(self, "vocabulary_"):
            raise NotFittedError("This LemmaVectorizer is not fitted yet; call 'fit' first")
        out = np.zeros((len(docs), len(self.terms_)), dtype=np.float32)
        for row, doc in enumerate(docs):
            for term, count in Counter(doc).items():
                col = self.vocabulary_.get(term)
                if col is not None:
                    out[row, col] = (1.0 + math.log(count)) * self.idf_[col]
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out

    def fit_transform(self, docs: Sequence[Sequence[str]]) -> np.ndarray:
        return self.fit(docs).transform(docs)
