"""The feature vector both heads read: ``[embedding | w_lemma × lemma TF-IDF | w_char × char TF-IDF]``.

``TextBatch`` carries what the classify stage already has for each text (its embedding, its lemmas
and its normalised string), so features cost no second pass over the text. A ``Featurizer`` is fitted
with its head and saved inside the head's artifact.

The embedding block is either the text's clause-mean embedding (``emb``) or, for a featurizer with
``whole_text``, that and the text encoded whole side by side (``[emb | whole] / sqrt(2)``): the theme head
reads both, the sentiment head the clause mean only. A batch of comments may also carry its comments'
clauses as a batch of their own (``clauses``, with ``clause_owner``, the comment row of each clause): the
theme head's co-theme stage reads each comment's best clause as well as the comment.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from models.lexical import SparseTfidf

__all__ = ["Featurizer", "LinearCoefficients", "TextBatch"]


@dataclass
class TextBatch:
    emb: np.ndarray  # (n, dim) unit-norm embeddings
    lemmas: Sequence[Sequence[str]]
    texts: Sequence[str]  # normalised, PII-masked
    # (n, dim) unit-norm embeddings of each text encoded whole, where that differs from ``emb`` (a comment of
    # several clauses); None: the same as ``emb`` (sentences and clauses, which are embedded whole anyway)
    whole: np.ndarray | None = None
    # Term counts kept per analyzer when given a dict: the sentiment and theme heads read the same batch and
    # would count the same texts' lemmas and character n-grams twice, half of the heads' time. The classify
    # stage's batches keep one (``pipelines.classify.batches``); batches made by ``take`` / ``concat``, as
    # training's folds are, keep none (large, and read once per fit).
    counts_memo: dict[tuple[str, tuple[int, int]], list[Counter[str]]] | None = field(
        default=None, repr=False, compare=False
    )
    # The texts' clauses as a batch of their own, in text order, and the text row of each clause (non-decreasing;
    # an empty text has none). None: each text is its own only clause (a sentence or a clause batch).
    clauses: TextBatch | None = field(default=None, repr=False, compare=False)
    clause_owner: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (len(self.emb) == len(self.lemmas) == len(self.texts)):
            raise ValueError(
                f"TextBatch parts differ in length: emb {len(self.emb)}, lemmas {len(self.lemmas)}, texts {len(self.texts)}"
            )
        if self.whole is not None and self.whole.shape != self.emb.shape:
            raise ValueError(
                f"TextBatch whole-text embeddings {self.whole.shape} differ from emb {self.emb.shape}"
            )
        if (self.clauses is None) != (self.clause_owner is None):
            raise ValueError("TextBatch clauses and clause_owner come together")
        if self.clauses is not None and self.clause_owner is not None:
            owner = np.asarray(self.clause_owner)
            if len(owner) != len(self.clauses):
                raise ValueError(
                    f"TextBatch clause_owner has {len(owner)} rows for {len(self.clauses)} clauses"
                )
            if len(owner) and (np.any(np.diff(owner) < 0) or owner[0] < 0 or owner[-1] >= len(self.texts)):
                raise ValueError("TextBatch clause_owner must be non-decreasing text rows")

    def __len__(self) -> int:
        return len(self.texts)

    def term_counts(self, vec: SparseTfidf) -> list[Counter[str]] | None:
        """The texts' (or lemma lists') term counts for ``vec``, from the memo; None when the batch keeps none."""
        if self.counts_memo is None:
            return None
        key = vec.counts_key
        if key not in self.counts_memo:
            self.counts_memo[key] = vec.term_counts(self.lemmas if vec.analyzer == "lemma" else self.texts)
        return self.counts_memo[key]

    def take(self, index: Sequence[int] | np.ndarray) -> TextBatch:
        idx = [int(i) for i in index]
        clauses, owner = None, None
        if self.clauses is not None and self.clause_owner is not None:
            rows = np.arange(len(self))
            start = np.searchsorted(self.clause_owner, rows, side="left")
            stop = np.searchsorted(self.clause_owner, rows, side="right")
            picked = [np.arange(start[i], stop[i]) for i in idx]
            clauses = self.clauses.take(np.concatenate(picked) if picked else np.zeros(0, int))
            owner = np.repeat(np.arange(len(idx)), [len(p) for p in picked])
        return TextBatch(
            self.emb[idx],
            [self.lemmas[i] for i in idx],
            [self.texts[i] for i in idx],
            whole=None if self.whole is None else self.whole[idx],
            clauses=clauses,
            clause_owner=owner,
        )

    @staticmethod
    def concat(batches: Sequence[TextBatch]) -> TextBatch:
        whole = None
        if any(b.whole is not None for b in batches):
            whole = np.vstack([b.emb if b.whole is None else b.whole for b in batches])
        clauses, owner = None, None
        if any(b.clauses is not None for b in batches):
            split = [b.clause_batch() for b in batches]
            offsets = np.cumsum([0, *(len(b) for b in batches[:-1])])  # each batch's first row
            clauses = TextBatch.concat([c for c, _ in split])
            owner = np.concatenate([o + off for (_, o), off in zip(split, offsets, strict=True)])
        return TextBatch(
            np.vstack([b.emb for b in batches]),
            [lem for b in batches for lem in b.lemmas],
            [t for b in batches for t in b.texts],
            whole=whole,
            clauses=clauses,
            clause_owner=owner,
        )

    def clause_batch(self) -> tuple[TextBatch, np.ndarray]:
        """The texts' clauses and the text row of each; a batch without ``clauses`` is its own clauses (each
        text as it is, so a head reads the same features for the text and for its only clause)."""
        if self.clauses is not None and self.clause_owner is not None:
            return self.clauses, np.asarray(self.clause_owner)
        own = TextBatch(self.emb, self.lemmas, self.texts, whole=self.whole, counts_memo=self.counts_memo)
        return own, np.arange(len(self))

    def dense(self, whole_text: bool) -> np.ndarray:
        """The embedding block: ``emb``, or with ``whole_text`` ``[emb | whole] / sqrt(2)`` (unit norm again)."""
        emb = np.asarray(self.emb, dtype=np.float32)
        if not whole_text:
            return emb
        whole = emb if self.whole is None else np.asarray(self.whole, dtype=np.float32)
        return np.hstack([emb, whole]) * np.float32(1 / np.sqrt(2))


class Featurizer:
    def __init__(
        self,
        lemma_weight: float = 1.0,
        char_weight: float = 1.0,
        max_lemmas: int = 8000,
        max_chars: int = 30000,
        whole_text: bool = False,
    ) -> None:
        self.lemma_weight = lemma_weight
        self.char_weight = char_weight
        self.max_lemmas = max_lemmas
        self.max_chars = max_chars
        self.whole_text = whole_text

    def fit(self, batch: TextBatch) -> Featurizer:
        self.dim_ = int(batch.emb.shape[1]) * (2 if self.whole_text else 1)
        self.lemma_ = SparseTfidf("lemma", max_features=self.max_lemmas).fit(batch.lemmas)
        self.char_ = SparseTfidf("char", max_features=self.max_chars).fit(batch.texts)
        return self

    @property
    def lemma_offset(self) -> int:
        return self.dim_

    @property
    def n_features(self) -> int:
        return self.dim_ + len(self.lemma_.terms_) + len(self.char_.terms_)

    def transform(self, batch: TextBatch) -> sp.csr_matrix:
        parts = [sp.csr_matrix(batch.dense(self.whole_text))]
        if self.lemma_weight:
            parts.append(
                self.lemma_.transform(batch.lemmas, counts=batch.term_counts(self.lemma_)) * self.lemma_weight
            )
        else:
            parts.append(sp.csr_matrix((len(batch), len(self.lemma_.terms_)), dtype=np.float32))
        if self.char_weight:
            parts.append(
                self.char_.transform(batch.texts, counts=batch.term_counts(self.char_)) * self.char_weight
            )
        else:
            parts.append(sp.csr_matrix((len(batch), len(self.char_.terms_)), dtype=np.float32))
        return sp.hstack(parts, format="csr", dtype=np.float32)

    def logits(self, batch: TextBatch, coef_t: np.ndarray) -> np.ndarray:
        """``transform(batch) @ coef_t`` block by block, without building the stacked sparse matrix.

        ``coef_t`` is the (n_features, k) transposed coefficient matrix, C-contiguous: a sparse row
        times a contiguous column block is about 40 times faster than times a transposed view, and
        skipping the ``hstack`` saves most of the rest (a single short text: 1 ms -> 0.3 ms).

        The dense block is multiplied in float64: in float32, OpenBLAS's rounding depends on how many rows
        share the product (one row takes another kernel than twenty), so a text's scores moved in the 7th
        digit between ``/v1/classify``, a job chunk and ``koe analyze``, and a score at a display-rounding or
        threshold edge could read differently in each. The sparse blocks are summed row by row in a fixed
        order whatever the batch.
        """
        out = batch.dense(self.whole_text).astype(np.float64) @ coef_t[: self.dim_].astype(np.float64)
        lo = self.dim_
        hi = lo + len(self.lemma_.terms_)
        if self.lemma_weight:
            lemma_rows = self.lemma_.transform(batch.lemmas, counts=batch.term_counts(self.lemma_))
            out += (lemma_rows @ coef_t[lo:hi]) * self.lemma_weight
        if self.char_weight:
            char_rows = self.char_.transform(batch.texts, counts=batch.term_counts(self.char_))
            out += (char_rows @ coef_t[hi:]) * self.char_weight
        return np.asarray(out)

    def lemma_column(self, lemma: str) -> int | None:
        col = self.lemma_.vocabulary_.get(lemma)
        return None if col is None else self.lemma_offset + col

    # -- persistence: stored inside the owning head's artifact ---------------------------------------
    def get_config(self) -> dict[str, Any]:
        return {
            "lemma_weight": self.lemma_weight,
            "char_weight": self.char_weight,
            "max_lemmas": self.max_lemmas,
            "max_chars": self.max_chars,
            "whole_text": self.whole_text,
            "dim": self.dim_,
            "lemma": self.lemma_.get_config(),
            "char": self.char_.get_config(),
        }

    def get_arrays(self) -> dict[str, np.ndarray]:
        return {"lemma_idf": self.lemma_.idf_, "char_idf": self.char_.idf_}

    @classmethod
    def from_saved(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> Featurizer:
        feat = cls(
            config["lemma_weight"],
            config["char_weight"],
            config["max_lemmas"],
            config["max_chars"],
            config.get("whole_text", False),  # heads from before 2026-12-07's fifth session read emb only
        )
        feat.dim_ = int(config["dim"])
        feat.lemma_ = SparseTfidf.from_config(config["lemma"], arrays["lemma_idf"])
        feat.char_ = SparseTfidf.from_config(config["char"], arrays["char_idf"])
        return feat


class LinearCoefficients:
    """``coef_`` (k, n_features) of a linear head, with its transposed contiguous copy for ``Featurizer.logits``.

    Assigning ``coef_`` (after fitting or loading) refreshes the copy, so the two never disagree;
    an unfitted head has no ``coef_`` attribute at all.
    """

    _coef: np.ndarray
    _coef_t: np.ndarray

    @property
    def coef_(self) -> np.ndarray:
        return self._coef

    @coef_.setter
    def coef_(self, value: np.ndarray) -> None:
        self._coef = value
        self._coef_t = np.ascontiguousarray(value.T)
