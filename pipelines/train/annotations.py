"""Further annotators of the corpus, and the labels the corpus trains and tests on: the majority of the votes.

The writer of each comment labelled it first (the record in ``corpus/part-*.jsonl``). A second annotator labelled
every comment again, blind (without the writer's labels, the model or its predictions), from the same guide and
taxonomy; a third labelled, equally blind, every comment where the first two differ on the overall sentiment or
on any theme. Their files: ``corpus/annotations/<order>-<name>.jsonl``, one ``{"id", "sentiment", "themes"}`` per
line, read in file-name order.

``adjudicate`` turns the votes on one comment into its labels:
- a theme applies when more than half of the annotators of the comment give it; on a tie (two annotators who
  differ) the writer's label stands;
- the sentiment about an applied theme, and the comment's overall sentiment, are the majority of the votes; without
  a majority the earliest annotator's label stands (the writer's first).
Sentence sentiments have one annotator, the writer.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.errors import InputError
from pipelines.metrics import classification_report, cohen_kappa, multilabel_report
from pipelines.records import SENTIMENT_LABELS

__all__ = ["WRITER", "Annotation", "adjudicate", "agreement", "read_annotations"]

WRITER = "writer"


@dataclass(frozen=True)
class Annotation:
    annotator: str
    sentiment: str
    themes: dict[str, str]  # theme id -> sentiment about that theme


def _majority(votes: Sequence[str]) -> str:
    """The label more than half the votes give; otherwise the first vote's."""
    label, n = Counter(votes).most_common(1)[0]
    return label if 2 * n > len(votes) else votes[0]


def adjudicate(votes: Sequence[Annotation]) -> tuple[str, dict[str, str]]:
    """(overall sentiment, themes) of one comment from its annotations, the writer's first."""
    if not votes:
        raise ValueError("a comment needs at least the writer's annotation")
    writer = votes[0]
    themes: dict[str, str] = {}
    for theme in dict.fromkeys(t for v in votes for t in v.themes):
        given = [v.themes[theme] for v in votes if theme in v.themes]
        if 2 * len(given) > len(votes) or (2 * len(given) == len(votes) and theme in writer.themes):
            themes[theme] = _majority(given)
    return _majority([v.sentiment for v in votes]), themes


def read_annotations(path: Path, theme_ids: set[str]) -> dict[str, Annotation]:
    """One annotator's file, checked: every line names its file and line number when it is wrong."""
    name = path.stem.split("-", 1)[-1]
    out: dict[str, Annotation] = {}
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path.name}:{lineno}"
            try:
                d = json.loads(line)
                item_id = str(d["id"])
                ann = Annotation(
                    name, str(d["sentiment"]), {str(k): str(v) for k, v in (d.get("themes") or {}).items()}
                )
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                raise InputError(f"annotation line is not a valid record: {exc}", file=where) from exc
            if not {ann.sentiment, *ann.themes.values()} <= set(SENTIMENT_LABELS):
                raise InputError("unknown sentiment label", file=where, value=line.strip()[:120])
            if unknown := set(ann.themes) - theme_ids:
                raise InputError(f"unknown theme id(s) {sorted(unknown)}", file=where)
            if item_id in out:
                raise InputError(f"comment {item_id} annotated twice", file=where)
            out[item_id] = ann
    return out


def agreement(pairs: Sequence[tuple[Annotation, Annotation]], theme_ids: Sequence[str]) -> dict[str, Any]:
    """How two annotators agree on the same comments: theme micro/macro-F1 with the first as reference (micro-F1
    is symmetric), Cohen's kappa per theme on whether it applies, and overall sentiment macro-F1 and kappa."""
    first = np.array([[t in a.themes for t in theme_ids] for a, _ in pairs], dtype=bool).reshape(
        -1, len(theme_ids)
    )
    second = np.array([[t in b.themes for t in theme_ids] for _, b in pairs], dtype=bool).reshape(
        -1, len(theme_ids)
    )
    themes = multilabel_report(first, second, theme_ids)
    for k, t in enumerate(theme_ids):
        themes["per_label"][t]["kappa"] = cohen_kappa(first[:, k], second[:, k])
    sent_a, sent_b = [a.sentiment for a, _ in pairs], [b.sentiment for _, b in pairs]
    sentiment = classification_report(sent_a, sent_b, SENTIMENT_LABELS)
    return {
        "n": len(pairs),
        "themes": themes,
        "sentiment_macro_f1": sentiment["macro_f1"],
        "sentiment_kappa": cohen_kappa(sent_a, sent_b),
    }
