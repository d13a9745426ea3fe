"""Typed records passed between pipeline stages.

ingest       -> ``SurveyRow`` (original cells + parsed score/date/segments/texts + row issues)
classify     -> ``TextResult`` per free-text answer (sentence results, themes, sentiment)
aggregate    <- ``AnalyzedRow`` (a SurveyRow's parsed fields + one TextResult per answered question)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pipelines.errors import RowIssue

__all__ = [
    "SENTIMENT_LABELS",
    "AnalyzedRow",
    "ColumnMapping",
    "IngestInfo",
    "MetricName",
    "SentenceResult",
    "SurveyKind",
    "SurveyRow",
    "TextResult",
    "ThemeHit",
]

SENTIMENT_LABELS: tuple[str, str, str] = ("negative", "neutral", "positive")
MetricName = Literal["nps", "csat", "ces"]
SurveyKind = Literal["survey", "support"]


@dataclass
class ColumnMapping:
    """Which column plays which role. Column names are the file's own header strings."""

    score: str | None = None
    texts: list[str] = field(default_factory=list)  # free-text questions, each reported on its own
    respondent_id: str | None = None
    date: str | None = None
    segments: list[str] = field(default_factory=list)  # plan, channel, touchpoint, region …

    def to_dict(self) -> dict[str, object]:
        return {
            "score": self.score,
            "texts": list(self.texts),
            "respondent_id": self.respondent_id,
            "date": self.date,
            "segments": list(self.segments),
        }


@dataclass
class IngestInfo:
    """What ingest found out about the file as a whole."""

    file: str
    format: Literal["csv", "tsv", "xlsx"]
    encoding: str | None  # None for xlsx
    header_row: int  # 1-based line of the header
    columns: list[str]  # header strings in file order (blank headers named 列N)
    mapping: ColumnMapping
    kind: SurveyKind
    metric: MetricName


@dataclass
class SurveyRow:
    """One data row of the input, never dropped."""

    row: int  # 1-based line number as the user sees it (header rows included)
    original: dict[str, str]  # every original column, in file order, as text
    score: int | None = None
    texts: dict[str, str] = field(default_factory=dict)  # question column -> raw answer (non-empty only)
    respondent_id: str | None = None
    date: datetime | None = None
    segments: dict[str, str] = field(default_factory=dict)
    issues: list[RowIssue] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (the date as ISO text), so a row can be stored and read back unchanged."""
        return {
            "row": self.row,
            "original": dict(self.original),
            "score": self.score,
            "texts": dict(self.texts),
            "respondent_id": self.respondent_id,
            "date": self.date.isoformat() if self.date else None,
            "segments": dict(self.segments),
            "issues": [i.to_dict() for i in self.issues],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SurveyRow:
        return cls(
            row=int(data["row"]),
            original=dict(data.get("original") or {}),
            score=data.get("score"),
            texts=dict(data.get("texts") or {}),
            respondent_id=data.get("respondent_id"),
            date=datetime.fromisoformat(data["date"]) if data.get("date") else None,
            segments=dict(data.get("segments") or {}),
            issues=[RowIssue(**i) for i in data.get("issues") or []],
        )


@dataclass(slots=True)
class ThemeHit:
    id: str
    label: str  # Japanese display name
    score: float  # calibrated probability that the theme is present
    sentiment: str  # one of SENTIMENT_LABELS, for this theme within the text
    evidence: list[str] = field(default_factory=list)  # matched lemmas / nearest examples

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "label": self.label,
            "score": round(self.score, 4),
            "sentiment": self.sentiment,
            "evidence": list(self.evidence),
        }


@dataclass(slots=True)
class SentenceResult:
    text: str
    sentiment: str
    scores: dict[str, float]
    themes: list[ThemeHit] = field(default_factory=list)


@dataclass(slots=True)
class TextResult:
    """Classification of one free-text answer."""

    text: str  # normalised, PII-masked text
    sentiment: str
    scores: dict[str, float]
    themes: list[ThemeHit] = field(default_factory=list)
    sentences: list[SentenceResult] = field(default_factory=list)
    needs_review: bool = False

    def theme_ids(self) -> list[str]:
        return [t.id for t in self.themes]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TextResult:
        """Read back ``to_dict()`` output: text, sentiment, themes and needs_review (sentences are not rebuilt;
        aggregation does not use them and the stored dict keeps them for display)."""
        sentiment = data["sentiment"]
        hits = [
            ThemeHit(t["id"], t["label"], float(t["score"]), t["sentiment"], list(t.get("evidence") or []))
            for t in data.get("themes") or []
        ]
        return cls(
            data["text"],
            sentiment["label"],
            {k: float(v) for k, v in sentiment["scores"].items()},
            hits,
            [],
            bool(data.get("needs_review", False)),
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "text": self.text,
            "sentiment": {
                "label": self.sentiment,
                "scores": {k: round(v, 4) for k, v in self.scores.items()},
            },
            "themes": [t.to_dict() for t in self.themes],
            "needs_review": self.needs_review,
            "sentences": [
                {
                    "text": s.text,
                    "sentiment": s.sentiment,
                    "themes": [t.id for t in s.themes],
                }
                for s in self.sentences
            ],
        }


@dataclass(slots=True)
class AnalyzedRow:
    """The compact per-row record aggregation works on (kept in memory for the whole file)."""

    row: int
    score: int | None
    date: datetime | None
    segments: dict[str, str]
    answers: dict[str, TextResult]  # question column -> result, answered questions only
    has_error: bool = False

    @classmethod
    def of(cls, row: SurveyRow, answers: dict[str, TextResult]) -> AnalyzedRow:
        """The record of an ingested row with its answers' results (a row with issues is flagged)."""
        return cls(row.row, row.score, row.date, row.segments, answers, has_error=bool(row.issues))
