"""Further annotators of the corpus, and the labels the corpus trains and tests on: the majority of the votes.

The writer of each comment labelled it first (the record in ``corpus/part-*.jsonl``). A second annotator labelled
every comment again, blind (without the writer's labels, the model or its predictions), from the same guide and
taxonomy; a third labelled, equally blind, every comment where the first two differ on the overall sentiment or
on any theme, and a fourth and a fifth every comment where three split on a theme. Their files: ``corpus/annotations/<order>-<name>.jsonl``, one ``{"id", "sentiment", "themes"}`` per
line, read in file-name order.

``adjudicate`` turns the votes on one comment into its labels:
- a theme applies when more than half of the annotators of the comment give it; on a tie (two annotators who
  differ) the writer's label stands;
- the sentiment about an applied theme, and the comment's overall sentiment, are the majority of the votes; without
  a majority the earliest annotator's label stands (the writer's first).
Sentence sentiments have one annotator, the writer. Clauses (the parts the classify stage cuts a sentence into,
``pipelines.classify.prepare``; per-theme sentiment is read from them) have their own labels in
``corpus/clauses/<order>-<name>.jsonl``, one ``{"key": "<comment id>#<sentence index>", "clauses": [[text, label],
...]}`` per multi-clause sentence; ``read_clause_votes`` / ``clause_labels`` take the majority per clause, and a clause
without one is left out. They measure clause-level sentiment (``benchmarks/quality.py``); the heads do not train on
them (doing so raised clause macro-F1 from 0.54 to 0.77 but lowered per-theme sentiment accuracy from 0.907 to 0.895
and JRTE from 0.724 to 0.708: the per-theme labels expect a theme named in a scene-setting clause to carry the
complaint that follows it).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from pipelines.errors import InputError
from pipelines.metrics import classification_report, cohen_kappa, multilabel_report
from pipelines.records import SENTIMENT_LABELS

__all__ = [
    "WRITER",
    "Annotation",
    "adjudicate",
    "agreement",
    "clause_labels",
    "read_annotations",
    "read_clause_votes",
]

WRITER = "writer"
_T = TypeVar("_T")


@dataclass(frozen=True)
class Annotation:
    annotator: str
    sentiment: str
    themes: dict[str, str]  # theme id -> sentiment about that theme


def _strict_majority(votes: Sequence[str]) -> str | None:
    """The label more than half the votes give, if any."""
    label, n = Counter(votes).most_common(1)[0]
    return label if 2 * n > len(votes) else None


def _majority(votes: Sequence[str]) -> str:
    """The label more than half the votes give; otherwise the first vote's."""
    return _strict_majority(votes) or votes[0]


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


def _records(path: Path, what: str, parse: Callable[[dict[str, Any]], _T]) -> Iterator[tuple[str, _T]]:
    """(``file:line``, parsed record) for each non-blank line; a line that is not JSON or that ``parse`` cannot
    read is an error naming its file and line."""
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path.name}:{lineno}"
            try:
                yield where, parse(json.loads(line))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
                raise InputError(f"{what} line is not a valid record: {exc}", file=where) from exc


def _check_labels(labels: set[str], where: str) -> None:
    if not labels <= set(SENTIMENT_LABELS):
        raise InputError("unknown sentiment label", file=where, value=", ".join(sorted(labels)))


def read_annotations(path: Path, theme_ids: set[str]) -> dict[str, Annotation]:
    """One annotator's file, checked: every line names its file and line number when it is wrong."""
    name = path.stem.split("-", 1)[-1]

    def parse(d: dict[str, Any]) -> tuple[str, Annotation]:
        themes = {str(k): str(v) for k, v in (d.get("themes") or {}).items()}
        return str(d["id"]), Annotation(name, str(d["sentiment"]), themes)

    out: dict[str, Annotation] = {}
    for where, (item_id, ann) in _records(path, "annotation", parse):
        _check_labels({ann.sentiment, *ann.themes.values()}, where)
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


ClauseKey = tuple[str, int]  # (comment id, sentence index)


def read_clause_votes(directory: Path) -> dict[ClauseKey, list[list[tuple[str, str]]]]:
    """Every clause annotator's labels, per sentence: key -> one [(clause text, label), ...] list per annotator.
    Annotators must agree on the clause texts of a sentence; errors name the file and line."""

    def parse(d: dict[str, Any]) -> tuple[ClauseKey, list[tuple[str, str]]]:
        item_id, _, index = str(d["key"]).rpartition("#")
        return (item_id, int(index)), [(str(text), str(label)) for text, label in d["clauses"]]

    votes: dict[ClauseKey, list[list[tuple[str, str]]]] = {}
    for path in sorted(directory.glob("*.jsonl")) if directory.is_dir() else []:
        for where, (key, clauses) in _records(path, "clause", parse):
            _check_labels({label for _, label in clauses}, where)
            earlier = votes.setdefault(key, [])
            if earlier and [t for t, _ in earlier[0]] != [t for t, _ in clauses]:
                raise InputError(
                    f"clauses of {key[0]}#{key[1]} differ from the first annotator's", file=where
                )
            earlier.append(clauses)
    return votes


def clause_labels(votes: Sequence[Sequence[tuple[str, str]]]) -> list[tuple[str, str]]:
    """(clause text, label) for the clauses of one sentence that more than half of its annotators agree on."""
    out = []
    for k, (text, _) in enumerate(votes[0]):
        if label := _strict_majority([v[k][1] for v in votes]):
            out.append((text, label))
    return out
