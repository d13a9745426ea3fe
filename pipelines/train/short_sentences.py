"""Short sentences: one-clause customer sentences with their sentiment, a training and test set of its own.

The corpus is made of whole comments, mostly several sentences with a story; a short, plain sentence (a one-line
survey answer, a review sentence) was where the sentiment head failed most (sincere praise in words sarcasm also
uses, plain facts, a sentence whose polarity hangs on one word). ``corpus/short/part-*.jsonl`` holds written
sentences of that kind, ``{"id", "industry", "text", "sentiment"}`` per line (the writer's label), and
``corpus/short/annotations/<order>-<name>.jsonl`` further blind annotators' ``{"id", "sentiment"}``. A sentence's
label is the majority of its votes (writer first; without a majority the writer's stands). Splits as for the
corpus (``pipelines.train.corpus.hash_splits``): by a hash of the id, near-duplicates kept together. The
sentiment head trains on the train split, is calibrated on validation with the corpus, and ``benchmarks/quality.py``
reports the test split as a row of its own. See ``corpus/short/README.md`` for how the set was made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.errors import InputError
from pipelines.train.annotations import check_labels, majority, read_records
from pipelines.train.corpus import CORPUS_DIR, INDUSTRIES, hash_splits

__all__ = [
    "SHORT_DIR",
    "ShortSentence",
    "corpus_short_sentences",
    "load_short_sentences",
    "short_agreement",
    "short_digest",
]

SHORT_DIR = CORPUS_DIR / "short"


@dataclass
class ShortSentence:
    id: str
    industry: str
    text: str
    sentiment: str  # the majority of ``votes``
    votes: list[str] = field(default_factory=list)  # the writer's first
    split: str = ""


def corpus_short_sentences(corpus_dir: str | Path | None = None) -> list[ShortSentence]:
    """The short sentences that go with a corpus folder: its ``short/`` subfolder (the shipped set for None)."""
    return load_short_sentences(Path(corpus_dir) / "short" if corpus_dir else SHORT_DIR)


def load_short_sentences(directory: str | Path | None = None) -> list[ShortSentence]:
    """Every short sentence with its adjudicated label and split; ``[]`` when the folder does not exist.
    Errors name the file and line (bad JSON, missing key, unknown industry or label, empty text, duplicate id,
    a vote for an unknown sentence)."""
    root = Path(directory) if directory else SHORT_DIR
    if not root.is_dir():
        return []

    def sentence(d: dict[str, Any]) -> ShortSentence:
        return ShortSentence(str(d["id"]), str(d["industry"]), str(d["text"]), str(d["sentiment"]))

    items: dict[str, ShortSentence] = {}
    for path in sorted(root.glob("*.jsonl")):
        for where, it in read_records(path, "short sentence", sentence):
            if it.industry not in INDUSTRIES:
                raise InputError("unknown industry", file=where, value=it.industry)
            if not it.text.strip():
                raise InputError("empty sentence text", file=where)
            if it.id in items:
                raise InputError(f"sentence {it.id} written twice", file=where)
            check_labels({it.sentiment}, where)
            it.votes.append(it.sentiment)
            items[it.id] = it
    votes_dir = root / "annotations"
    for path in sorted(votes_dir.glob("*.jsonl")) if votes_dir.is_dir() else []:
        seen: set[str] = set()
        for where, (item_id, label) in read_records(
            path, "vote", lambda d: (str(d["id"]), str(d["sentiment"]))
        ):
            if item_id not in items:
                raise InputError(f"vote for unknown sentence {item_id}", file=where)
            if item_id in seen:
                raise InputError(f"sentence {item_id} voted on twice", file=where)
            seen.add(item_id)
            check_labels({label}, where)
            items[item_id].votes.append(label)
    out = sorted(items.values(), key=lambda it: it.id)
    splits, _ = hash_splits([it.id for it in out], [it.text for it in out])
    for it, split in zip(out, splits, strict=True):
        it.sentiment = majority(it.votes)
        it.split = split
    return out


def short_agreement(items: list[ShortSentence]) -> dict[str, Any]:
    """How the writer and the first further annotator agree (share, Cohen's kappa), how many sentences had a
    third vote, and how often the adjudicated label differs from the writer's."""
    from pipelines.metrics import cohen_kappa

    pairs = [(it.votes[0], it.votes[1]) for it in items if len(it.votes) > 1]
    return {
        "n": len(items),
        "second": len(pairs),
        "agree": sum(a == b for a, b in pairs),
        "kappa": cohen_kappa([a for a, _ in pairs], [b for _, b in pairs]) if pairs else None,
        "third": sum(1 for it in items if len(it.votes) > 2),
        "changed": sum(1 for it in items if it.sentiment != it.votes[0]),
    }


def short_digest(items: list[ShortSentence]) -> str:
    """Digest of what the sentiment head learns from the set: each sentence's id, split, label and text."""
    from models.base import data_digest

    return data_digest("\t".join((it.id, it.split, it.sentiment, it.text)) for it in items)
