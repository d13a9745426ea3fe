"""Representative customer quotes per theme and group, and reusable promoter quotes.

Texts come from ``TextResult.text``, already normalised and PII-masked by the classify stage.

Selection (:func:`select_quotes`) is deterministic:

1. exact duplicates (ignoring whitespace) are collapsed, keeping the most relevant;
2. candidates of a medium length (15–120 characters by default) are used first; others only when fewer
   than ``k`` medium-length quotes exist, nearest to the length range first;
3. the first quote is the *typical* one: closest (cosine) to the cell's embedding centroid when every
   candidate has an embedding, else the one with the highest relevance (the theme's score);
4. the next quotes are *diverse*: maximal marginal relevance
   ``(1 − diversity)·relevance − diversity·max similarity to the quotes already chosen``, with cosine
   similarity over embeddings or character-bigram Jaccard similarity without them; candidates at or above
   the near-duplicate threshold of a chosen quote are skipped. MMR looks at the ``pool`` most relevant
   candidates only, which keeps it linear in the number of answers.

Ties are broken by row number and question column.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipelines.records import AnalyzedRow

__all__ = [
    "QUOTE_LENGTH",
    "QuoteCandidate",
    "bigram_jaccard",
    "promoter_quotes",
    "select_quotes",
    "theme_quotes",
]

QUOTE_LENGTH: tuple[int, int] = (15, 120)
Embeddings = Mapping[tuple[int, str], Sequence[float]]  # (row, question column) -> vector
NEAR_DUPLICATE_JACCARD = 0.6
NEAR_DUPLICATE_COSINE = 0.95
_SURVEY_GROUPS = ("detractors", "passives", "promoters")


@dataclass(frozen=True)
class QuoteCandidate:
    row: int
    question: str
    text: str
    sentiment: str
    score: int | None
    relevance: float  # theme score (or positive-sentiment probability for promoter quotes)
    theme: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "row": self.row,
            "question": self.question,
            "text": self.text,
            "sentiment": self.sentiment,
            "score": self.score,
        }
        if self.theme is not None:
            out["theme"] = self.theme
        return out


def _bigrams(text: str) -> frozenset[str]:
    s = "".join(text.split())
    return frozenset(s[i : i + 2] for i in range(len(s) - 1)) if len(s) > 1 else frozenset([s])


def bigram_jaccard(a: str, b: str) -> float:
    """Jaccard similarity of the two texts' character-bigram sets (whitespace ignored)."""
    x, y = _bigrams(a), _bigrams(b)
    union = len(x | y)
    return len(x & y) / union if union else 1.0


def _length_gap(text: str, length: tuple[int, int]) -> int:
    n = len(text)
    return max(length[0] - n, n - length[1], 0)


def select_quotes(
    candidates: Sequence[QuoteCandidate],
    *,
    k: int = 3,
    embeddings: Embeddings | None = None,
    length: tuple[int, int] = QUOTE_LENGTH,
    diversity: float = 0.5,
    centroid: bool = True,
    pool: int = 200,
) -> list[QuoteCandidate]:
    """Up to ``k`` quotes: the typical one first, then diverse ones (see the module docstring).

    ``centroid=False`` keeps the candidates' own relevance even when embeddings are given (they then only
    measure similarity).
    """
    if k <= 0 or not candidates:
        return []
    best: dict[str, QuoteCandidate] = {}
    for c in sorted(candidates, key=lambda c: (-c.relevance, c.row, c.question)):
        best.setdefault("".join(c.text.split()), c)
    unique = list(best.values())
    vectors = None
    if embeddings is not None and all((c.row, c.question) in embeddings for c in unique):
        mat = np.array([embeddings[(c.row, c.question)] for c in unique], dtype=float)
        norms = np.linalg.norm(mat, axis=1, keepdims=True)
        vectors = mat / np.where(norms > 0, norms, 1.0)
    if vectors is not None and centroid:
        mean = vectors.mean(axis=0)
        relevance = vectors @ (mean / (np.linalg.norm(mean) or 1.0))
    else:
        relevance = np.array([c.relevance for c in unique], dtype=float)
    order = sorted(
        range(len(unique)),
        key=lambda i: (_length_gap(unique[i].text, length), -relevance[i], unique[i].row, unique[i].question),
    )
    preferred = [i for i in order if _length_gap(unique[i].text, length) == 0][:pool]
    fallback = [i for i in order if _length_gap(unique[i].text, length) > 0][:pool]
    threshold = NEAR_DUPLICATE_COSINE if vectors is not None else NEAR_DUPLICATE_JACCARD

    def similarity(i: int, j: int) -> float:
        if vectors is not None:
            return float(vectors[i] @ vectors[j])
        return bigram_jaccard(unique[i].text, unique[j].text)

    chosen: list[int] = []
    for tier in (preferred, fallback):
        max_sim = {i: max((similarity(i, j) for j in chosen), default=0.0) for i in tier}
        while len(chosen) < k:
            open_ = [i for i in tier if i not in chosen and max_sim[i] < threshold]
            if not open_:
                break
            if not chosen:  # typical: the best by relevance (tier order already breaks ties)
                pick = max(open_, key=lambda i: relevance[i])
            else:
                pick = max(open_, key=lambda i: (1 - diversity) * relevance[i] - diversity * max_sim[i])
            chosen.append(pick)
            for i in tier:
                max_sim[i] = max(max_sim[i], similarity(i, pick))
    return [unique[i] for i in chosen]


def theme_quotes(
    rows: Sequence[AnalyzedRow],
    theme_ids: Sequence[str],
    groups: Sequence[str | None] | None,
    *,
    embeddings: Embeddings | None = None,
    k: int = 3,
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """The schema's ``quotes``: theme -> group -> up to ``k`` quote items, for every mentioned theme.

    An item's ``sentiment`` is the theme's sentiment within that answer.
    Survey: groups detractors, passives, promoters (unscored responses are not quoted).
    ``groups=None`` (support, no score): one group ``"all"``.
    """
    wanted = set(theme_ids)
    cells: dict[tuple[str, str], list[QuoteCandidate]] = {}
    for i, row in enumerate(rows):
        group = "all" if groups is None else groups[i]
        if group is None:
            continue
        for question, result in row.answers.items():
            for hit in result.themes:
                if hit.id in wanted:
                    candidate = QuoteCandidate(
                        row.row, question, result.text, hit.sentiment, row.score, hit.score
                    )
                    cells.setdefault((hit.id, group), []).append(candidate)
    names = ("all",) if groups is None else _SURVEY_GROUPS
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for theme in theme_ids:
        if not any((theme, g) in cells for g in names):
            continue
        out[theme] = {
            g: [c.to_dict() for c in select_quotes(cells.get((theme, g), []), k=k, embeddings=embeddings)]
            for g in names
        }
    return out


def promoter_quotes(
    rows: Sequence[AnalyzedRow],
    groups: Sequence[str | None],
    *,
    negative_themes: Collection[str] = (),
    embeddings: Embeddings | None = None,
    k: int = 5,
    length: tuple[int, int] = QUOTE_LENGTH,
) -> list[dict[str, Any]]:
    """Quotes a team can reuse: promoters' answers that are positive, carry no negative theme, and have an
    informative length (within ``length``). Most positive first, then diverse; each item names its main theme.

    A theme counts as negative when it is in ``negative_themes`` (the taxonomy's negative signals) or its own
    sentiment in the answer is negative.
    """
    candidates = []
    for i, row in enumerate(rows):
        if groups[i] != "promoters":
            continue
        for question, result in row.answers.items():
            if result.sentiment != "positive" or _length_gap(result.text, length) > 0:
                continue
            if any(h.id in negative_themes or h.sentiment == "negative" for h in result.themes):
                continue
            main = max(result.themes, key=lambda h: h.score).id if result.themes else None
            candidates.append(
                QuoteCandidate(
                    row.row,
                    question,
                    result.text,
                    result.sentiment,
                    row.score,
                    float(result.scores.get("positive", 0.0)),
                    main,
                )
            )
    chosen = select_quotes(candidates, k=k, embeddings=embeddings, length=length, centroid=False)
    return [c.to_dict() for c in chosen]
