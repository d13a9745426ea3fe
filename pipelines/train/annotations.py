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
A theme whose written definition was revised is judged again under the new one: a *re-annotation* file holds
``{"id", "scope": [theme ids], "themes"}`` lines (no overall sentiment), from annotators who saw only the text and
the revised taxonomy. For a theme in its scope, a comment's re-annotations replace the earlier votes: the theme
applies when more than half of them give it (its sentiment their majority), does not when more than half leave it
out, and a tie keeps the earlier decision. The first revision (2026-12-07): ``inconvenience`` (不便), the theme
annotators agreed on least (kappa 0.77), now written as an extra effort or a thing the customer cannot do, not a
problem of another theme stated on its own; three annotators judged every comment again. The second (2026-12-07,
later): ``trust`` (信頼) and ``disappointment`` (がっかり) in one pass (scope of both), with what earns each and
where they meet written out (a claim that turned out false is trust; the letdown voiced is disappointment).
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
from collections.abc import Callable, Iterable, Iterator, Sequence
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
    "check_labels",
    "clause_labels",
    "majority",
    "read_annotations",
    "read_clause_votes",
    "read_records",
    "revision_agreement",
    "writer_second_pairs",
]

WRITER = "writer"
_T = TypeVar("_T")


@dataclass(frozen=True)
class Annotation:
    annotator: str
    sentiment: str  # "" in a re-annotation
    themes: dict[str, str]  # theme id -> sentiment about that theme
    scope: tuple[str, ...] = ()  # a re-annotation: the themes it judges again; () for a full annotation


def _strict_majority(votes: Sequence[str]) -> str | None:
    """The label more than half the votes give, if any."""
    label, n = Counter(votes).most_common(1)[0]
    return label if 2 * n > len(votes) else None


def majority(votes: Sequence[str]) -> str:
    """The label more than half the votes give; otherwise the first vote's."""
    return _strict_majority(votes) or votes[0]


def adjudicate(votes: Sequence[Annotation]) -> tuple[str, dict[str, str]]:
    """(overall sentiment, themes) of one comment from its annotations, the writer's first."""
    full = [v for v in votes if not v.scope]
    if not full:
        raise ValueError("a comment needs at least the writer's annotation")
    writer = full[0]
    themes: dict[str, str] = {}
    for theme in dict.fromkeys(t for v in full for t in v.themes):
        given = [v.themes[theme] for v in full if theme in v.themes]
        if 2 * len(given) > len(full) or (2 * len(given) == len(full) and theme in writer.themes):
            themes[theme] = majority(given)
    for theme in dict.fromkeys(t for v in votes for t in v.scope):
        again = [v for v in votes if theme in v.scope]
        given = [v.themes[theme] for v in again if theme in v.themes]
        if 2 * len(given) > len(again):
            themes[theme] = majority(given)
        elif 2 * len(given) < len(again):
            themes.pop(theme, None)
    return majority([v.sentiment for v in full]), themes


def read_records(path: Path, what: str, parse: Callable[[dict[str, Any]], _T]) -> Iterator[tuple[str, _T]]:
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


def check_labels(labels: set[str], where: str) -> None:
    if not labels <= set(SENTIMENT_LABELS):
        raise InputError("unknown sentiment label", file=where, value=", ".join(sorted(labels)))


def read_annotations(path: Path, theme_ids: set[str]) -> dict[str, Annotation]:
    """One annotator's file, checked: every line names its file and line number when it is wrong."""
    name = path.stem.split("-", 1)[-1]

    def parse(d: dict[str, Any]) -> tuple[str, Annotation]:
        themes = {str(k): str(v) for k, v in (d.get("themes") or {}).items()}
        if "scope" in d:
            scope = tuple(str(t) for t in d["scope"])
            if not scope:
                raise ValueError("a re-annotation needs the themes it judges (scope)")
            return str(d["id"]), Annotation(name, "", themes, scope)
        return str(d["id"]), Annotation(name, str(d["sentiment"]), themes)

    out: dict[str, Annotation] = {}
    for where, (item_id, ann) in read_records(path, "annotation", parse):
        check_labels({*([ann.sentiment] if not ann.scope else []), *ann.themes.values()}, where)
        if unknown := (set(ann.themes) | set(ann.scope)) - theme_ids:
            raise InputError(f"unknown theme id(s) {sorted(unknown)}", file=where)
        if ann.scope and (outside := set(ann.themes) - set(ann.scope)):
            raise InputError(f"theme(s) {sorted(outside)} outside the re-annotation's scope", file=where)
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


def writer_second_pairs(labellings: Iterable[Sequence[Annotation]]) -> list[tuple[Annotation, Annotation]]:
    """(writer, second annotator) of every comment that has a second full annotation."""
    pairs = []
    for anns in labellings:
        full = [a for a in anns if not a.scope]
        if len(full) > 1:
            pairs.append((full[0], full[1]))
    return pairs


def revision_agreement(labellings: Iterable[Sequence[Annotation]], theme: str) -> dict[str, Any]:
    """How the re-annotators of ``theme`` agree with each other (Cohen's kappa of each pair, in file order, on the
    comments both judged; the share where all agree) and how their votes moved its labels: comments that gained
    or lost it against the adjudication of the full annotations alone."""
    votes: dict[str, dict[int, bool]] = {}
    n = unanimous = gained = lost = 0
    for k, anns in enumerate(labellings):
        again = [a for a in anns if theme in a.scope]
        if not again:
            continue
        n += 1
        said = [theme in a.themes for a in again]
        unanimous += len(set(said)) == 1
        for a, v in zip(again, said, strict=True):
            votes.setdefault(a.annotator, {})[k] = v
        before = theme in adjudicate([a for a in anns if not a.scope])[1]
        after = theme in adjudicate(anns)[1]
        gained += after and not before
        lost += before and not after
    names = list(votes)
    kappas = {}
    for i, first in enumerate(names):
        for other in names[i + 1 :]:
            both = sorted(set(votes[first]) & set(votes[other]))
            if both:
                kappas[f"{first} / {other}"] = cohen_kappa(
                    [votes[first][k] for k in both], [votes[other][k] for k in both]
                )
    return {"n": n, "unanimous": unanimous, "kappa": kappas, "gained": gained, "lost": lost}


ClauseKey = tuple[str, int]  # (comment id, sentence index)


def read_clause_votes(directory: Path) -> dict[ClauseKey, list[list[tuple[str, str]]]]:
    """Every clause annotator's labels, per sentence: key -> one [(clause text, label), ...] list per annotator.
    Annotators must agree on the clause texts of a sentence; errors name the file and line."""

    def parse(d: dict[str, Any]) -> tuple[ClauseKey, list[tuple[str, str]]]:
        item_id, _, index = str(d["key"]).rpartition("#")
        return (item_id, int(index)), [(str(text), str(label)) for text, label in d["clauses"]]

    votes: dict[ClauseKey, list[list[tuple[str, str]]]] = {}
    for path in sorted(directory.glob("*.jsonl")) if directory.is_dir() else []:
        for where, (key, clauses) in read_records(path, "clause", parse):
            check_labels({label for _, label in clauses}, where)
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
