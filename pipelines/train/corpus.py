"""The project's labelled corpus: loading, validation, fixed splits, near-duplicate check.

Each comment's labels are the adjudicated votes of its annotators (``pipelines.train.annotations``): the writer's
labels, and those of the further annotators in ``<corpus>/annotations/`` when that folder exists.

Splits are a pure function of the corpus: each comment goes to train / validation / test by a hash
of its id (70/15/15), then near-duplicates (character 3-gram cosine >= 0.8 after normalisation) are
pulled into the split of their first member, so no test comment has a twin in training.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.errors import InputError
from pipelines.normalize import normalize_text
from pipelines.records import SENTIMENT_LABELS
from pipelines.train.annotations import (
    WRITER,
    Annotation,
    adjudicate,
    clause_labels,
    read_annotations,
    read_clause_votes,
)

__all__ = [
    "CORPUS_DIR",
    "CorpusItem",
    "assign_splits",
    "corpus_digest",
    "corpus_stats",
    "hash_splits",
    "load_corpus",
    "near_duplicate_pairs",
]

CORPUS_DIR = Path(__file__).parent / "corpus"
INDUSTRIES = (
    "ec",
    "saas",
    "telecom",
    "bank",
    "insurance",
    "restaurant",
    "hotel",
    "app",
    "utility",
    "education",
    "btob",
)
NEAR_DUPLICATE_COSINE = 0.8


@dataclass
class CorpusItem:
    id: str
    industry: str
    kind: str
    channel: str
    score: int | None
    sentences: list[tuple[str, str]]  # (text, sentiment)
    sentiment: str  # adjudicated (see ``annotations``)
    themes: dict[str, str]  # theme id -> sentiment about that theme, adjudicated
    phenomena: list[str] = field(default_factory=list)
    split: str = ""
    annotations: list[Annotation] = field(default_factory=list)  # the writer's first
    # (clause, label) of its multi-clause sentences: an evaluation set (see ``annotations``), not trained on
    clauses: list[tuple[str, str]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(s for s, _ in self.sentences)


def _parse(line: str, source: str, lineno: int, theme_ids: set[str]) -> CorpusItem:
    where = f"{source}:{lineno}"
    try:
        d = json.loads(line)
        sentences = [(str(s["text"]), str(s["sentiment"])) for s in d["sentences"]]
        item = CorpusItem(
            id=str(d["id"]),
            industry=str(d["industry"]),
            kind=str(d["kind"]),
            channel=str(d.get("channel", "")),
            score=d.get("score"),
            sentences=sentences,
            sentiment=str(d["sentiment"]),
            themes={str(k): str(v) for k, v in (d.get("themes") or {}).items()},
            phenomena=[str(p) for p in d.get("phenomena", [])],
        )
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"corpus line is not a valid record: {exc}", file=where) from exc
    labels = {item.sentiment, *(s for _, s in sentences), *item.themes.values()}
    if not labels <= set(SENTIMENT_LABELS):
        raise InputError(f"unknown sentiment label(s) {sorted(labels - set(SENTIMENT_LABELS))}", file=where)
    if unknown := set(item.themes) - theme_ids:
        raise InputError(f"unknown theme id(s) {sorted(unknown)}", file=where)
    if item.kind == "survey" and not (isinstance(item.score, int) and 0 <= item.score <= 10):
        raise InputError("a survey item needs an integer score 0-10", file=where, value=str(item.score))
    return item


def near_duplicate_pairs(texts: list[str], threshold: float = NEAR_DUPLICATE_COSINE) -> list[tuple[int, int]]:
    """Index pairs (i < j) whose character 3-gram TF vectors have cosine >= threshold."""
    from sklearn.feature_extraction.text import HashingVectorizer

    vec = HashingVectorizer(
        analyzer="char", ngram_range=(3, 3), n_features=2**18, norm="l2", alternate_sign=False
    )
    X = vec.transform([normalize_text(t) for t in texts])
    sims = (X @ X.T).tocoo()
    keep = (sims.row < sims.col) & (sims.data >= threshold)  # filtered in numpy: millions of shared 3-grams
    return sorted({(int(i), int(j)) for i, j in zip(sims.row[keep], sims.col[keep], strict=True)})


def _hash_split(item_id: str) -> str:
    bucket = int(hashlib.sha256(item_id.encode()).hexdigest()[:8], 16) % 100
    return "train" if bucket < 70 else ("validation" if bucket < 85 else "test")


def hash_splits(ids: Sequence[str], texts: Sequence[str]) -> tuple[list[str], list[tuple[int, int]]]:
    """The split of each record (by a hash of its id, near-duplicates pulled into the split of their first
    member) and the near-duplicate pairs found."""
    splits = [_hash_split(i) for i in ids]
    pairs = near_duplicate_pairs(list(texts))
    # union-find so a chain of near-duplicates lands in one split
    parent = list(range(len(splits)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs:
        parent[find(j)] = find(i)
    return [splits[find(i)] for i in range(len(splits))], pairs


def assign_splits(items: list[CorpusItem]) -> list[tuple[int, int]]:
    """Set ``item.split`` for every item; returns the near-duplicate pairs found."""
    splits, pairs = hash_splits([it.id for it in items], [it.text for it in items])
    for item, split in zip(items, splits, strict=True):
        item.split = split
    return pairs


def load_corpus(directory: str | Path | None = None, theme_ids: list[str] | None = None) -> list[CorpusItem]:
    from models.taxonomy import default_taxonomy

    ids = set(theme_ids or default_taxonomy().ids)
    root = Path(directory) if directory else CORPUS_DIR
    items: list[CorpusItem] = []
    for path in sorted(root.glob("*.jsonl")):
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if line.strip():
                    items.append(_parse(line, path.name, lineno, ids))
    if not items:
        raise InputError("no corpus files (*.jsonl) found", file=str(root))
    dup = [k for k, n in Counter(it.id for it in items).items() if n > 1]
    if dup:
        raise InputError(f"duplicate corpus ids: {dup[:5]}", file=str(root))
    items.sort(key=lambda it: it.id)
    by_id = {it.id: it for it in items}
    _adjudicate(by_id, root / "annotations", ids)
    _add_clauses(by_id, root / "clauses")
    assign_splits(items)
    return items


def _adjudicate(by_id: dict[str, CorpusItem], directory: Path, theme_ids: set[str]) -> None:
    for it in by_id.values():
        it.annotations = [Annotation(WRITER, it.sentiment, dict(it.themes))]
    for path in sorted(directory.glob("*.jsonl")) if directory.is_dir() else []:
        for item_id, ann in read_annotations(path, theme_ids).items():
            if item_id not in by_id:
                raise InputError(f"annotation of unknown comment {item_id}", file=path.name)
            by_id[item_id].annotations.append(ann)
    for it in by_id.values():
        it.sentiment, it.themes = adjudicate(it.annotations)


def _add_clauses(by_id: dict[str, CorpusItem], directory: Path) -> None:
    for (item_id, index), votes in sorted(read_clause_votes(directory).items()):
        item = by_id.get(item_id)
        if item is None or not 0 <= index < len(item.sentences):
            raise InputError(f"clause labels for unknown sentence {item_id}#{index}", file=directory.name)
        joined = "".join(text for text, _ in votes[0])
        if joined.replace(" ", "") != normalize_text(item.sentences[index][0]).replace(" ", ""):
            raise InputError(f"clauses of {item_id}#{index} do not make up its sentence", file=directory.name)
        item.clauses.extend(clause_labels(votes))


def corpus_digest(items: list[CorpusItem]) -> str:
    """Digest of what a model trains on: each comment's text, split and (adjudicated) labels, sentences included."""
    from models.base import data_digest

    return data_digest(
        "\t".join(
            [
                it.id,
                it.split,
                it.sentiment,
                json.dumps(it.themes, sort_keys=True, ensure_ascii=False),
                *(f"{t}\x1f{s}" for t, s in it.sentences),
            ]
        )
        for it in items
    )


def corpus_stats(items: list[CorpusItem]) -> dict[str, Any]:
    themes: Counter[str] = Counter()
    theme_sent: Counter[str] = Counter()
    for it in items:
        themes.update(it.themes.keys())
        theme_sent.update(f"{k}:{v}" for k, v in it.themes.items())
    lengths = np.array([len(it.text) for it in items])
    return {
        "comments": len(items),
        "sentences": sum(len(it.sentences) for it in items),
        "splits": dict(Counter(it.split for it in items)),
        "industries": dict(Counter(it.industry for it in items)),
        "kinds": dict(Counter(it.kind for it in items)),
        "sentiment": dict(Counter(it.sentiment for it in items)),
        "sentence_sentiment": dict(Counter(s for it in items for _, s in it.sentences)),
        "themes": dict(themes.most_common()),
        "theme_sentiment": dict(sorted(theme_sent.items())),
        "no_theme": sum(1 for it in items if not it.themes),
        "phenomena": dict(Counter(p for it in items for p in it.phenomena).most_common()),
        "length_chars": {"median": float(np.median(lengths)), "p90": float(np.percentile(lengths, 90))},
    }
