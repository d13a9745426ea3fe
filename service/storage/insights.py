"""Stored insights (discovery, theme summaries) per job, and theme labels per survey.

Insights are computed on first request and kept with the job whose results they describe (deleted with it).
Labels belong to the survey: a proposal, then an analyst's decision; a sentence is labelled once per theme.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from service.storage.db import Database, iso
from service.storage.repository import now
from service.storage.tables import SurveyInsight, ThemeLabel

__all__ = [
    "STATES",
    "NewLabel",
    "add_labels",
    "decide_labels",
    "delete_insight",
    "get_insight",
    "label_counts",
    "label_out",
    "labelled_hashes",
    "list_labels",
    "put_insight",
    "text_hash",
]

STATES = ("proposed", "accepted", "corrected")


def get_insight(db: Database, job_id: str, kind: str, key: str = "") -> dict[str, Any] | None:
    with db.session() as s:
        row = s.get(SurveyInsight, (job_id, kind, key))
        return dict(row.document) if row else None


def put_insight(db: Database, job_id: str, kind: str, key: str, document: dict[str, Any]) -> dict[str, Any]:
    """Store ``document``; if another request stored one first, keep and return that one."""
    try:
        with db.session() as s:
            s.add(SurveyInsight(job_id=job_id, kind=kind, key=key[:300], document=document, created_at=now()))
    except IntegrityError:
        return get_insight(db, job_id, kind, key) or document
    return document


def delete_insight(db: Database, job_id: str, kind: str, key: str = "") -> None:
    with db.session() as s:
        s.execute(
            delete(SurveyInsight).where(
                SurveyInsight.job_id == job_id, SurveyInsight.kind == kind, SurveyInsight.key == key[:300]
            )
        )


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class NewLabel:
    row: int
    question: str
    text: str
    score: float
    proposed: bool
    proposed_by: str
    reason: str | None


def labelled_hashes(db: Database, survey_id: str, theme_id: str) -> set[str]:
    with db.session() as s:
        return set(
            s.scalars(
                select(ThemeLabel.text_hash).where(
                    ThemeLabel.survey_id == survey_id, ThemeLabel.theme_id == theme_id
                )
            )
        )


def add_labels(
    db: Database, survey_id: str, theme_id: str, taxonomy_version: int, items: Sequence[NewLabel]
) -> list[ThemeLabel]:
    """Store proposals; a sentence already labelled for the theme is skipped (its row stays as it is)."""
    known = labelled_hashes(db, survey_id, theme_id)
    rows = []
    for it in items:
        digest = text_hash(it.text)
        if digest in known:
            continue
        known.add(digest)
        rows.append(
            ThemeLabel(
                survey_id=survey_id,
                theme_id=theme_id,
                row=it.row,
                question=it.question[:255],
                text=it.text,
                text_hash=digest,
                score=float(it.score),
                proposed=it.proposed,
                proposed_by=it.proposed_by[:120],
                reason=it.reason,
                label=None,
                state="proposed",
                taxonomy_version=taxonomy_version,
                created_at=now(),
            )
        )
    with db.session() as s:
        s.add_all(rows)
    return rows


def list_labels(
    db: Database, survey_id: str, theme_id: str, *, state: str | None = None, decided: bool | None = None
) -> list[ThemeLabel]:
    with db.session() as s:
        query = select(ThemeLabel).where(ThemeLabel.survey_id == survey_id, ThemeLabel.theme_id == theme_id)
        if state is not None:
            query = query.where(ThemeLabel.state == state)
        if decided is not None:
            query = query.where(ThemeLabel.label.is_not(None) if decided else ThemeLabel.label.is_(None))
        return list(s.scalars(query.order_by(ThemeLabel.id)))


def label_counts(db: Database, survey_id: str, theme_id: str) -> dict[str, int]:
    with db.session() as s:
        found = dict(
            s.execute(
                select(ThemeLabel.state, func.count())
                .where(ThemeLabel.survey_id == survey_id, ThemeLabel.theme_id == theme_id)
                .group_by(ThemeLabel.state)
            ).all()
        )
    return {state: int(found.get(state, 0)) for state in STATES}


def decide_labels(
    db: Database, survey_id: str, theme_id: str, decisions: Sequence[tuple[int, bool]]
) -> tuple[list[ThemeLabel], list[int]]:
    """Record each (label id, label): ``accepted`` when it agrees with the proposal, else ``corrected``.
    Deciding again overwrites. Returns the updated labels and the ids that are not this survey's theme's."""
    updated, unknown = [], []
    with db.session() as s:
        for label_id, value in decisions:
            row = s.get(ThemeLabel, label_id)
            if row is None or row.survey_id != survey_id or row.theme_id != theme_id:
                unknown.append(label_id)
                continue
            row.label = bool(value)
            row.state = "accepted" if bool(value) == row.proposed else "corrected"
            row.decided_at = now()
            updated.append(row)
    return updated, unknown


def label_out(row: ThemeLabel) -> dict[str, Any]:
    return {
        "id": row.id,
        "row": row.row,
        "question": row.question,
        "text": row.text,
        "score": round(row.score, 4),
        "proposed": row.proposed,
        "proposed_by": row.proposed_by,
        "reason": row.reason,
        "label": row.label,
        "state": row.state,
        "taxonomy_version": row.taxonomy_version,
        "created_at": iso(row.created_at),
        "decided_at": iso(row.decided_at),
    }
