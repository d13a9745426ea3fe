"""Labelling help for a custom theme: propose labels on a sample, let an analyst decide, retrain on them.

A custom theme is scored by its example sentences (``ThemeClassifier.prototype_proba``: the best cosine to an
example against the best to the trained themes' and to its counter-examples, mapped to a probability; shown
at >= 0.5). So "retraining" it means choosing which sentences become examples and counter-examples, and
that is what the decided labels drive:

1. **Sample** (``sample_for_labelling``): a fixed mix from a pool of the survey's sentences: half nearest the
   decision boundary (uncertainty sampling: what a label teaches most), a quarter the highest-scored (are
   they right?), a quarter drawn at random with ``seed`` (what the theme misses). Deterministic.
2. **Propose** (``propose_labels``): the assistant labels each sentence (yes/no with a reason), in batches;
   without one, or when it fails, the classifier's own decision (score >= 0.5) is the proposal. Proposals are
   never used as labels: only what an analyst accepted or corrected is.
3. **Retrain** (``retrain_examples``): greedy forward selection over the accepted positives: add the one whose
   sentence, as an extra example, most improves F1 on the decided labels, until none does (or ``max_new``).
   Each sentence is scored without itself as an example (leave-one-out), so a positive only counts when it
   brings in *other* positives; an accepted negative it would bring in counts against it. Then the same
   selection over the rejected sentences: each one that improves F1 becomes a **counter-example**, which
   the prototype score holds against the theme at full weight (``ThemeClassifier.prototype_proba``): the
   same kind of text stops being flagged, unless it is nearer to an example than to every counter-example.
   Leave-one-out here too: a rejected sentence counts only for the *other* sentences it unflags, so it is
   added when it stands for a kind of text the analyst rejected more than once, and not when it would unflag
   accepted positives (benchmarks/labelling_loop.py, mean held-out F1 of six themes: 0.538 without
   counter-examples, 0.534 with this rule, 0.526 when every flagged rejection that cost no positive was
   added; differences of one or two comments per theme).
4. **Measure** honestly: F1 on the decided labels with the current examples (before), with the chosen ones
   (after, leave-one-out, optimistic since the choice saw these labels), and by ``folds``-fold cross-
   validation (choice made without the fold it is scored on): the figure to trust.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.assistant import Assistant
from pipelines.errors import ConfigError

if TYPE_CHECKING:
    from models.bundle import ModelBundle
    from models.taxonomy import Theme

__all__ = [
    "LABELS_SCHEMA_BATCH",
    "LabelItem",
    "Proposal",
    "RetrainResult",
    "check_custom",
    "propose_labels",
    "retrain_examples",
    "sample_for_labelling",
    "theme_scores",
]

LABELS_SCHEMA_BATCH = 10  # sentences per LLM call
THRESHOLD = 0.5  # custom themes are shown at p >= 0.5 (pipelines.classify)


@dataclass(frozen=True)
class LabelItem:
    row: int
    question: str
    text: str  # normalised, PII-masked sentence


@dataclass
class Proposal:
    item: LabelItem
    score: float  # the theme's score for the sentence now
    proposed: bool
    proposed_by: str  # llm:<model> | classifier
    reason: str | None = None


def check_custom(bundle: ModelBundle, theme_id: str) -> Theme:
    """The theme, if it is scored by its examples (a custom theme); trained themes are retrained by
    ``koe train`` on labelled comments instead."""
    theme = bundle.taxonomy.get(theme_id)
    trained = set(bundle.themes.theme_ids_)
    if theme.id in trained or any(a in trained for a in theme.aliases):
        raise ConfigError(
            f"theme '{theme.id}' is scored by the trained theme head, not by examples; labelling retrains "
            "custom themes (to retrain the head, label comments in the corpus format and run `koe train`)",
            value=theme.id,
        )
    return theme


def theme_scores(bundle: ModelBundle, theme_id: str, embeddings: np.ndarray) -> np.ndarray:
    """The custom theme's probability for sentences with these embeddings, as ``classify`` scores it."""
    return bundle.prototype_proba(theme_id, embeddings)


def _hash_order(texts: Sequence[str], seed: int) -> list[int]:
    return sorted(range(len(texts)), key=lambda i: hashlib.sha256(f"{seed}\t{texts[i]}".encode()).hexdigest())


def sample_for_labelling(
    items: Sequence[LabelItem], scores: np.ndarray, *, size: int = 30, seed: int = 0
) -> list[int]:
    """Indices of ``size`` distinct sentences: half uncertain, a quarter top-scored, a quarter random."""
    texts = [it.text for it in items]
    first: dict[str, int] = {}
    for i, t in enumerate(texts):
        first.setdefault(t, i)
    unique = sorted(first.values())
    chosen: list[int] = []
    seen: set[int] = set()

    def take(order: Sequence[int], n: int) -> None:
        for i in order:
            if len(chosen) >= size or n <= 0:
                return
            if i not in seen:
                chosen.append(i)
                seen.add(i)
                n -= 1

    uncertain = sorted(unique, key=lambda i: (abs(float(scores[i]) - THRESHOLD), i))
    top = sorted(unique, key=lambda i: (-float(scores[i]), i))
    random = [unique[j] for j in _hash_order([texts[i] for i in unique], seed)]
    take(uncertain, size - 2 * (size // 4))
    take(top, size // 4)
    take(random, size)
    return chosen


def _labels_schema(ids: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "labels": {
                "type": "array",
                "minItems": len(ids),
                "maxItems": len(ids),
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string", "enum": list(ids)},
                        "label": {"type": "boolean"},
                        "reason": {"type": "string", "maxLength": 200},
                    },
                    "required": ["id", "label", "reason"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["labels"],
        "additionalProperties": False,
    }


def _labels_problems(data: dict[str, Any], ids: Sequence[str]) -> list[str]:
    given = [str(x.get("id")) for x in data.get("labels") or [] if isinstance(x, dict)]
    problems = []
    missing = [i for i in ids if i not in given]
    if missing:
        problems.append(f"no label for {', '.join(missing)}")
    twice = sorted({i for i in given if given.count(i) > 1})
    if twice:
        problems.append(f"more than one label for {', '.join(twice)}")
    unknown = sorted(set(given) - set(ids))
    if unknown:
        problems.append(f"labels for ids that were not given: {', '.join(unknown)}")
    return problems


def propose_labels(
    items: Sequence[LabelItem],
    scores: np.ndarray,
    theme: Theme,
    assistant: Assistant | None = None,
    *,
    batch: int = LABELS_SCHEMA_BATCH,
) -> list[Proposal]:
    """A proposal per item: the assistant's where it answers, else the classifier's (score >= 0.5)."""
    out = [
        Proposal(item, float(scores[i]), bool(scores[i] >= THRESHOLD), "classifier")
        for i, item in enumerate(items)
    ]
    if assistant is None:
        return out
    spec = {"name": theme.name, "description": theme.description, "examples": list(theme.examples)[:8]}
    for start in range(0, len(items), batch):
        part = list(range(start, min(start + batch, len(items))))
        ids = [f"t{k}" for k in range(1, len(part) + 1)]
        payload = {
            "theme": spec,
            "items": [{"id": i, "text": items[j].text} for i, j in zip(ids, part, strict=True)],
        }
        data = assistant.ask(
            "propose_labels", payload, _labels_schema(ids), check=partial(_labels_problems, ids=ids)
        )
        if data is None:
            continue
        by_id = {str(x["id"]): x for x in data["labels"]}
        for i, j in zip(ids, part, strict=True):
            answer = by_id[i]
            out[j].proposed = bool(answer["label"])
            out[j].proposed_by = f"llm:{assistant.model}"
            out[j].reason = str(answer.get("reason") or "")[:200] or None
    return out


# -- retraining ---------------------------------------------------------------------------------------
def _prf(y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    tp = int((y & pred).sum())
    fp = int((~y & pred).sum())
    fn = int((y & ~pred).sum())
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return {
        "n": len(y),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": None if precision is None else round(precision, 3),
        "recall": None if recall is None else round(recall, 3),
        "f1": round(f1, 3),
    }


def _f1(y: np.ndarray, p: np.ndarray) -> float:
    pred = p >= THRESHOLD
    tp = float((y & pred).sum())
    return 2 * tp / (2 * tp + float((~y & pred).sum()) + float((y & ~pred).sum())) if tp else 0.0


def _greedy(
    base: np.ndarray,
    P: np.ndarray,
    y: np.ndarray,
    candidates: Sequence[int],
    scored: np.ndarray,
    max_new: int,
) -> list[int]:
    """Forward selection: the candidate (column of P) that most improves F1 over the ``scored`` rows."""
    current = base.copy()
    best_f1 = _f1(y[scored], current[scored])
    chosen: list[int] = []
    while len(chosen) < max_new:
        pick, pick_f1 = None, best_f1
        for j in candidates:
            if j in chosen:
                continue
            f1 = _f1(y[scored], np.maximum(current, P[:, j])[scored])
            if f1 > pick_f1 + 1e-9:
                pick, pick_f1 = j, f1
        if pick is None:
            break
        chosen.append(pick)
        current = np.maximum(current, P[:, pick])
        best_f1 = pick_f1
    return chosen


Score = Callable[[np.ndarray, np.ndarray, np.ndarray | None], np.ndarray]  # (X, examples, counter-examples)


def _loo_scores(
    X: np.ndarray, score: Score, base_examples: np.ndarray, examples: Sequence[int], counters: np.ndarray
) -> np.ndarray:
    """Each labelled sentence's probability given the base examples plus sentences ``examples`` as examples,
    against ``counters``; a sentence does not count as its own example (leave-one-out)."""
    p = score(X, base_examples, counters) if len(base_examples) else np.zeros(len(X), dtype=np.float32)
    for j in examples:
        col = score(X, X[j : j + 1], counters)
        col[j] = 0.0
        p = np.maximum(p, col)
    return p


def _with_counters(p: np.ndarray, Q: np.ndarray, chosen: Sequence[int]) -> np.ndarray:
    """The scores ``p`` against the counter-examples ``chosen`` too: the least of ``p`` and each one's column."""
    return np.minimum(p, Q[:, list(chosen)].min(axis=1)) if len(chosen) else p


def _counter_greedy(
    y: np.ndarray, p: np.ndarray, Q: np.ndarray, candidates: Sequence[int], scored: np.ndarray, max_new: int
) -> list[int]:
    """Forward selection of counter-examples among the rejected sentences: the one that most improves F1 over
    the ``scored`` rows, until none does. ``p``: the scores without them; ``Q[:, c]``: with ``c`` one more."""
    chosen: list[int] = []
    best_f1 = _f1(y[scored], p[scored])
    while len(chosen) < max_new:
        pick, pick_f1 = None, best_f1
        for c in candidates:
            if c in chosen:
                continue
            f1 = _f1(y[scored], _with_counters(p, Q, [*chosen, c])[scored])
            if f1 > pick_f1 + 1e-9:
                pick, pick_f1 = c, f1
        if pick is None:
            break
        chosen.append(pick)
        best_f1 = pick_f1
    return chosen


@dataclass
class RetrainResult:
    added: list[str]  # sentences that become examples, in the order chosen
    counter_examples: list[str]  # rejected sentences that become counter-examples, in the order chosen
    before: dict[str, Any]  # on the decided labels, current examples
    after: dict[str, Any]  # same labels, current + added examples and counter-examples (leave-one-out)
    cross_validated: dict[str, Any]  # selection without the fold scored
    positives: int
    negatives: int
    folds: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "counter_examples": self.counter_examples,
            "positives": self.positives,
            "negatives": self.negatives,
            "metrics": {"before": self.before, "after": self.after, "cross_validated": self.cross_validated},
            "folds": self.folds,
            "notes": self.notes,
        }


def retrain_examples(
    texts: Sequence[str],
    labels: Sequence[bool],
    embeddings: np.ndarray,
    score: Score,
    base_examples: np.ndarray,
    *,
    base_counters: np.ndarray | None = None,
    existing: Sequence[str] = (),
    existing_counters: Sequence[str] = (),
    max_new: int = 20,
    folds: int = 5,
) -> RetrainResult:
    """Choose new examples among the positives and new counter-examples among the negatives of the decided
    labels (see the module docstring).

    ``score(X, examples, counter_examples)``: the theme's probability for embeddings ``X`` (the bundle's
    ``ThemeClassifier.prototype_proba``); ``base_examples`` / ``base_counters``: the embeddings of the
    theme's current examples and counter-examples, whose texts are ``existing`` / ``existing_counters``.
    At most ``max_new`` of each are added.
    """
    y = np.asarray(labels, dtype=bool)
    n = len(y)
    X = np.asarray(embeddings, dtype=np.float32)
    C0 = (
        np.asarray(base_counters, dtype=np.float32)
        if base_counters is not None
        else np.zeros((0, X.shape[1] if X.ndim == 2 else 0), dtype=np.float32)
    )
    base = score(X, base_examples, C0) if len(base_examples) else np.zeros(n, dtype=np.float32)
    candidates = [j for j in range(n) if y[j] and texts[j] not in set(existing)]
    rejected = [j for j in range(n) if not y[j] and texts[j] not in set(existing_counters)]
    P = np.zeros((n, n), dtype=np.float32)
    for j in candidates:
        P[:, j] = score(X, X[j : j + 1], C0)
        P[j, j] = 0.0  # leave-one-out: a sentence is not scored by itself as an example

    def select(rows: np.ndarray) -> tuple[list[int], list[int], np.ndarray]:
        """Examples, then counter-examples, chosen on ``rows``; and every sentence's probability with them."""
        picked = _greedy(base, P, y, [j for j in candidates if rows[j]], rows, max_new)
        p = np.maximum(base, P[:, picked].max(axis=1)) if picked else base
        # the score falls with the best cosine to a counter-example, so with several counter-examples it is
        # the least of the scores with each one: one column per rejected sentence, as P has per positive
        Q = np.tile(p[:, None], (1, n))
        for c in rejected:
            if rows[c]:
                Q[:, c] = _loo_scores(X, score, base_examples, picked, np.concatenate([C0, X[c : c + 1]]))
                Q[c, c] = p[c]  # leave-one-out: a counter-example only counts for the *other* sentences
        counters = _counter_greedy(y, p, Q, [c for c in rejected if rows[c]], rows, max_new)
        return picked, counters, _with_counters(p, Q, counters)

    chosen, counters, after = select(np.ones(n, dtype=bool))

    # cross-validation: folds by a hash of the text, selection on the others, scored on the fold
    order = _hash_order(list(texts), 0)
    fold_of = np.empty(n, dtype=int)
    fold_of[order] = np.arange(n) % max(folds, 2)
    cv_pred = np.zeros(n, dtype=bool)
    for f in range(max(folds, 2)):
        held = fold_of == f
        _, _, p = select(~held)
        cv_pred[held] = p[held] >= THRESHOLD
    notes = []
    if y.sum() < 3 or (~y).sum() < 3:
        notes.append("fewer than 3 positive or 3 negative labels: the figures say little; label more")
    if not chosen:
        notes.append("no accepted positive improved F1 on the decided labels: the examples stay as they are")
    return RetrainResult(
        added=[texts[j] for j in chosen],
        counter_examples=[texts[j] for j in counters],
        before=_prf(y, base >= THRESHOLD),
        after=_prf(y, after >= THRESHOLD),
        cross_validated=_prf(y, cv_pred),
        positives=int(y.sum()),
        negatives=int((~y).sum()),
        folds=max(folds, 2),
        notes=notes,
    )
