"""Lexical features: TF-IDF over fugashi content lemmas or over character n-grams.

Embeddings generalise; lexical features are precise and explainable. Lemmas (negated predicates
marked ``:NEG``) name the evidence a theme rests on (「解約」, 「配送」, 「エラー」); character 1–3-grams
catch what the tokenizer splits oddly: half-width kana after NFKC, emoji, kaomoji, typos, slang.

Term weights are ``(1 + log tf) × idf`` with ``idf = log((1 + n) / (1 + df)) + 1``, rows L2-normalised,
the same recipe as scikit-learn's ``TfidfVectorizer(sublinear_tf=True)``. The vocabulary and idf are
plain lists and arrays, so a saved model needs no pickles.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from models.base import NotFittedError

__all__ = ["Analyzer", "SparseTfidf"]

Analyzer = Literal["lemma", "char"]


class SparseTfidf:
    """TF-IDF over lemma lists (``analyzer="lemma"``) or over strings' character n-grams (``"char"``)."""

    def __init__(
        self,
        analyzer: Analyzer = "lemma",
        *,
        min_df: int = 2,
        max_features: int = 8000,
        ngram_range: tuple[int, int] = (1, 3),
    ) -> None:
        self.analyzer = analyzer
        self.min_df = min_df
        self.max_features = max_features
        self.ngram_range = ngram_range

    def terms_of(self, doc: str | Sequence[str]) -> list[str]:
        if self.analyzer == "lemma":
            return list(doc)
        text = f" {doc} "  # boundary marks, so 「遅い」 at the start differs from one inside a word
        lo, hi = self.ngram_range
        return [text[i : i + n] for n in range(lo, hi + 1) for i in range(len(text) - n + 1)]

    def fit(self, docs: Sequence[str | Sequence[str]]) -> SparseTfidf:
        df: Counter[str] = Counter()
        for doc in docs:
            df.update(set(self.terms_of(doc)))
        kept = sorted(
            ((t, n) for t, n in df.items() if n >= self.min_df), key=lambda item: (-item[1], item[0])
        )
        kept = kept[: self.max_features]
        n_docs = max(len(docs), 1)
        self.terms_ = [t for t, _ in kept]
        self.vocabulary_ = {t: i for i, t in enumerate(self.terms_)}
        self.idf_ = np.array([math.log((1 + n_docs) / (1 + n)) + 1.0 for _, n in kept], dtype=np.float32)
        return self

    @property
    def counts_key(self) -> tuple[str, tuple[int, int]]:
        """What decides a document's term counts (not the vocabulary): vectorisers with the same key count alike."""
        return (self.analyzer, self.ngram_range)

    def term_counts(self, docs: Sequence[str | Sequence[str]]) -> list[Counter[str]]:
        return [Counter(self.terms_of(doc)) for doc in docs]

    def transform(
        self, docs: Sequence[str | Sequence[str]], *, counts: Sequence[Counter[str]] | None = None
    ) -> sp.csr_matrix:
        """TF-IDF rows of ``docs``; ``counts`` are their ``term_counts`` when the caller already has them."""
        if not hasattr(self, "vocabulary_"):
            raise NotFittedError(f"This SparseTfidf({self.analyzer!r}) is not fitted yet; call 'fit' first")
        if counts is not None and len(counts) != len(docs):
            raise ValueError(f"{len(counts)} term counts for {len(docs)} documents")
        indptr: list[int] = [0]
        indices: list[int] = []
        data: list[float] = []
        for doc_counts in counts if counts is not None else map(Counter, map(self.terms_of, docs)):
            cols, vals = [], []
            for term, count in doc_counts.items():
                col = self.vocabulary_.get(term)
                if col is not None:
                    cols.append(col)
                    vals.append((1.0 + math.log(count)) * float(self.idf_[col]))
            norm = math.sqrt(sum(v * v for v in vals))
            indices.extend(cols)
            data.extend(v / norm for v in vals) if norm > 0 else None
            indptr.append(len(indices))
        return sp.csr_matrix(
            (
                np.array(data, dtype=np.float32),
                np.array(indices, dtype=np.int32),
                np.array(indptr, dtype=np.int64),
            ),
            shape=(len(docs), len(self.terms_)),
        )

    # -- persistence (the owner stores these in its config.json / weights.npz) ----------------------
    def get_config(self) -> dict[str, Any]:
        return {
            "analyzer": self.analyzer,
            "min_df": self.min_df,
            "max_features": self.max_features,
            "ngram_range": list(self.ngram_range),
            "terms": self.terms_,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], idf: np.ndarray) -> SparseTfidf:
        lo, hi = config["ngram_range"]
        vec = cls(
            config["analyzer"],
            min_df=config["min_df"],
            max_features=config["max_features"],
            ngram_range=(lo, hi),
        )
        vec.terms_ = list(config["terms"])
        vec.vocabulary_ = {t: i for i, t in enumerate(vec.terms_)}
        vec.idf_ = np.asarray(idf, dtype=np.float32)
        return vec
