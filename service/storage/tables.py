"""The database tables (SQLAlchemy 2 ORM). Changes go through an Alembic migration in ``migrations/``.

api_keys            hashed keys with scopes
taxonomy_versions   every version of the theme taxonomy, as the document ``models.taxonomy`` reads
surveys             one per upload: raw file path + sha256, ingest options and what ingest found
survey_rows         every data row of an upload as ingest read it (kept once, whatever the taxonomy)
jobs                an analysis (upload) or re-classification (new taxonomy) of one survey
job_chunks          a job's rows in fixed ranges; ``done`` flips in the same transaction that
                    writes the chunk's results, so a chunk is never counted twice
row_results         one job's classification of one row, with the columns /rows filters on
report_subscriptions  who gets the weekly report of which survey (or stream of uploads), when, in which zone
report_deliveries   one row per (recipient, source, report week): unique, so a week is never sent twice;
                    attempts, the last error and the next retry are kept for operators to see
survey_insights     discovery and theme summaries computed for one job (kind + key), kept until it goes
theme_labels        labelling of a custom theme on a survey's sentences: proposal (LLM or classifier),
                    the analyst's decision (accepted / corrected); the theme retrains on the decided ones
sign_in_failures    failed dashboard sign-ins per (e-mail, client), hashed, kept for the lock window only
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "ApiKey",
    "Base",
    "Job",
    "JobChunk",
    "ReportDelivery",
    "RowResult",
    "SignInFailure",
    "Subscription",
    "Survey",
    "SurveyRowRecord",
    "TaxonomyVersion",
    "User",
]


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: DateTime(timezone=True)}  # noqa: RUF012


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))  # shown in listings; the key itself is never stored
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(200))  # comma-separated
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class TaxonomyVersion(Base):
    __tablename__ = "taxonomy_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(200))
    document: Mapped[dict[str, Any]]
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime]


class Survey(Base):
    __tablename__ = "surveys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    raw_path: Mapped[str] = mapped_column(Text)
    options: Mapped[dict[str, Any]]  # encoding, kind, metric, mapping as given at upload
    info: Mapped[dict[str, Any] | None]  # IngestInfo found by the planning pass
    rows_total: Mapped[int | None]
    current_job_id: Mapped[str | None] = mapped_column(String(32))  # the job whose results are served
    created_at: Mapped[datetime]


class SurveyRowRecord(Base):
    __tablename__ = "survey_rows"

    survey_id: Mapped[str] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0-based position among data rows
    row: Mapped[int] = mapped_column(Integer)  # line number as the user sees it
    score: Mapped[int | None]
    grp: Mapped[str | None] = mapped_column(String(20))  # promoters / passives / detractors
    date: Mapped[datetime | None]
    segment_keys: Mapped[str] = mapped_column(Text, default="")  # "|列=値|列=値|" for filtering
    data: Mapped[dict[str, Any]]  # SurveyRow.to_dict(): original cells, texts, segments, issues
    n_issues: Mapped[int] = mapped_column(Integer, default=0)


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    survey_id: Mapped[str] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # analyze | reclassify
    taxonomy_version: Mapped[int]
    state: Mapped[str] = mapped_column(String(20), index=True)  # queued planning running succeeded failed
    chunk_size: Mapped[int]
    chunks_total: Mapped[int | None]
    rows_total: Mapped[int | None]
    error: Mapped[dict[str, Any] | None]
    summary: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class JobChunk(Base):
    __tablename__ = "job_chunks"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_seq: Mapped[int]
    n_rows: Mapped[int]
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    done_at: Mapped[datetime | None]
    worker: Mapped[str | None] = mapped_column(String(200))


class RowResult(Base):
    __tablename__ = "row_results"
    __table_args__ = (Index("ix_row_results_job_row", "job_id", "row"),)

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    row: Mapped[int] = mapped_column(Integer)
    theme_ids: Mapped[str] = mapped_column(Text, default="")  # "|price|slow_response|"
    sentiments: Mapped[str] = mapped_column(String(40), default="")  # "|negative|positive|"
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    search_text: Mapped[str] = mapped_column(Text, default="")  # masked, normalised answers
    results: Mapped[dict[str, Any]]  # question column -> TextResult.to_dict()


class Subscription(Base):
    """A weekly report to a list of recipients, from one stored survey or the newest upload of a stream.

    No foreign key to ``surveys``: a subscription whose survey was deleted stays, and its deliveries fail
    visibly instead of disappearing.
    """

    __tablename__ = "report_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    recipients: Mapped[list[Any]]  # e-mail addresses
    survey_id: Mapped[str | None] = mapped_column(String(32))  # a fixed stored survey …
    stream: Mapped[str | None] = mapped_column(String(255))  # … or a file-name pattern: the newest match
    support_survey_id: Mapped[str | None] = mapped_column(String(32))  # support comments shown alongside
    weekday: Mapped[int] = mapped_column(Integer)  # 0 = Monday … 6 = Sunday
    send_time: Mapped[str] = mapped_column(String(5))  # HH:MM, local time in ``timezone``
    timezone: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    token: Mapped[str] = mapped_column(String(64))  # signs one-click unsubscribe links
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ReportDelivery(Base):
    """One report week to one recipient from one source (``survey:<id>``, ``stream:<pattern>``, ``file:<sha256>``).

    state: pending -> sending -> sent | retry (next_attempt_at) -> … -> failed (attempts used up, or refused)
    """

    __tablename__ = "report_deliveries"
    __table_args__ = (UniqueConstraint("recipient", "source", "week", name="uq_report_deliveries_once"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int | None] = mapped_column(Integer, index=True)
    recipient: Mapped[str] = mapped_column(String(320))
    source: Mapped[str] = mapped_column(String(300))
    week: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(20), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[int | None]  # SMTP reply code of the last failure, when the server gave one
    next_attempt_at: Mapped[datetime | None]
    message_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class User(Base):
    """A dashboard account (issue 6). Roles: admin (users, API keys), analyst (uploads, taxonomy,
    subscriptions), viewer (reads). The password is stored only as an scrypt hash; a disabled user
    cannot sign in and their open sessions stop working at the next request."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # lower-cased
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]


class SurveyInsight(Base):
    """Discovery (``kind="discovery"``) or theme summaries (``kind="summaries"``) of one job's results;
    ``key`` names the variant (``""``, or the theme/group/segment asked for). Deleted with the job."""

    __tablename__ = "survey_insights"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    document: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class ThemeLabel(Base):
    """One sentence of a survey, labelled for one theme: proposed (``proposed_by`` llm:<model> or
    classifier), then decided by an analyst (``state`` accepted or corrected, ``label`` the decision)."""

    __tablename__ = "theme_labels"
    __table_args__ = (
        UniqueConstraint("survey_id", "theme_id", "text_hash", name="uq_theme_labels_text"),
        Index("ix_theme_labels_survey_theme", "survey_id", "theme_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    survey_id: Mapped[str] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"))
    theme_id: Mapped[str] = mapped_column(String(48))
    row: Mapped[int] = mapped_column(Integer)
    question: Mapped[str] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text)  # the sentence, normalised and PII-masked
    text_hash: Mapped[str] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float)  # the theme's score when proposed
    proposed: Mapped[bool] = mapped_column(Boolean)
    proposed_by: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str | None] = mapped_column(Text)
    label: Mapped[bool | None] = mapped_column(Boolean)
    state: Mapped[str] = mapped_column(String(20))  # proposed | accepted | corrected
    taxonomy_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]


class SignInFailure(Base):
    """A failed dashboard sign-in (or password check) of one e-mail address from one client. ``key`` is a
    SHA-256 of both, so neither mistyped addresses nor client addresses are stored in the clear."""

    __tablename__ = "sign_in_failures"
    __table_args__ = (Index("ix_sign_in_failures_key_at", "key", "failed_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[datetime] = mapped_column(index=True)
