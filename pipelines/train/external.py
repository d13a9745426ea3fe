"""Readers for the shared, human-written evaluation sets in ``../shared/data``.

- JRTE (hotel-review sentences, CC BY-NC-SA 4.0): evaluation only, never training.
- chABSA (securities reports, CC BY 4.0): its documents are split 80/20 by a hash of the document id;
  the 80% may join sentiment training, the 20% is held out for evaluation. ``mixed`` sentences are
  not a 3-class label and are left out.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

__all__ = ["chabsa_split", "default_shared_data", "load_chabsa", "load_jrte"]


def default_shared_data() -> Path:
    """``shared/data`` beside the repository (where CI and the developers' machines have it)."""
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def load_jrte(root: str | Path | None = None) -> list[tuple[str, str]]:
    path = Path(root or default_shared_data()) / "jrte_pn_dev" / "sentences.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        return [(r["text"], r["sentiment"]) for r in csv.DictReader(fh)]


def chabsa_split(doc_id: str) -> str:
    return "heldout" if int(hashlib.sha256(doc_id.encode()).hexdigest()[:8], 16) % 5 == 0 else "train"


def load_chabsa(root: str | Path | None = None, split: str = "train") -> list[tuple[str, str]]:
    path = Path(root or default_shared_data()) / "chabsa" / "sentences.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        return [
            (r["text"], r["label"])
            for r in csv.DictReader(fh)
            if r["label"] in {"positive", "neutral", "negative"} and chabsa_split(r["doc_id"]) == split
        ]
