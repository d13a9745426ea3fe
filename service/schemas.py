"""Request and response bodies of the API (they are also its OpenAPI schema)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MAX_VERSION",
    "ClassifyRequest",
    "ClassifyResponse",
    "JobOut",
    "MergeRequest",
    "Problem",
    "ReclassifyRequest",
    "RowsPage",
    "SurveyList",
    "SurveyOut",
    "TaxonomyOut",
    "ThemeCreate",
    "ThemeUpdate",
    "UploadAccepted",
]

MAX_VERSION = 2**31 - 1  # taxonomy versions are 32-bit integers in the database
Sentiment = Literal["negative", "neutral", "positive"]
JobState = Literal["queued", "planning", "running", "succeeded", "failed"]


class _Strict(BaseModel):
    """A request body: exactly its documented JSON (no unknown fields; no true or "2" for an integer)."""

    model_config = ConfigDict(extra="forbid", strict=True)


# -- errors -----------------------------------------------------------------------------------------
class ProblemField(BaseModel):
    field: str = Field(description="where the invalid value is, e.g. body.texts[3]")
    message: str
    type: str


class Problem(BaseModel):
    """Every error answer: ``application/problem+json`` (RFC 9457), with the fields that locate it."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[ProblemField] | None = Field(None, description="an invalid request: one entry per field")
    field: str | None = Field(None, description="the request field at fault")
    file: str | None = Field(None, description="the uploaded file at fault")
    row: int | None = Field(None, description="its row, 1-based as Excel shows it (header rows included)")
    column: str | None = Field(None, description="its column (or form field)")
    value: str | None = Field(None, description="the value at fault")


# -- classify ---------------------------------------------------------------------------------------
class ClassifyRequest(_Strict):
    texts: list[str] = Field(
        ...,
        min_length=1,
        description="1 to KOE_MAX_TEXTS_PER_CALL (default 256) texts, each up to KOE_MAX_TEXT_CHARS",
    )
    taxonomy_version: int | None = Field(
        None, ge=1, le=MAX_VERSION, description="default: the current taxonomy"
    )


class SentimentOut(BaseModel):
    label: Sentiment
    scores: dict[str, float]


class ThemeHitOut(BaseModel):
    id: str
    label: str
    score: float
    sentiment: Sentiment
    evidence: list[str]


class SentenceOut(BaseModel):
    text: str
    sentiment: Sentiment
    themes: list[str]


class ClassifyResult(BaseModel):
    id: int = Field(description="position of the text in the request")
    text: str
    normalized_text: str = Field(description="NFKC-normalised, PII-masked text the models saw")
    sentiment: SentimentOut
    themes: list[ThemeHitOut]
    needs_review: bool
    sentences: list[SentenceOut]


class TaxonomyRef(BaseModel):
    name: str
    version: int


class ModelInfo(BaseModel):
    encoder: str
    sentiment: str
    themes: str
    taxonomy: TaxonomyRef


class ClassifyResponse(BaseModel):
    results: list[ClassifyResult]
    model: ModelInfo


# -- jobs and surveys -------------------------------------------------------------------------------
class JobOut(BaseModel):
    id: str
    survey_id: str
    kind: Literal["analyze", "reclassify"]
    state: JobState
    taxonomy_version: int
    rows_total: int | None
    rows_done: int
    chunks_total: int | None
    chunks_done: int
    progress: float = Field(description="rows done / rows total (0 before planning)")
    eta_seconds: float | None = Field(description="from the rate so far; null until a chunk is done")
    row_issues: int = Field(description="cell problems found by ingest (GET …/rows?has_issues=true)")
    error: dict[str, Any] | None = Field(description="why the job failed (problem fields)")
    created_at: str
    started_at: str | None
    finished_at: str | None


class SurveyOut(BaseModel):
    id: str
    filename: str
    content_hash: str
    size_bytes: int
    options: dict[str, Any]
    rows_total: int | None
    current_job_id: str | None
    created_at: str


class SurveyList(BaseModel):
    total: int
    items: list[SurveyOut]


class UploadAccepted(BaseModel):
    survey: SurveyOut
    job: JobOut | None
    duplicate: bool = Field(description="true when the same bytes with the same options were uploaded before")


class RowOut(BaseModel):
    row: int
    score: int | None
    group: str | None
    date: str | None
    respondent_id: str | None
    segments: dict[str, str]
    answers: dict[str, dict[str, Any]] = Field(
        description="question column -> classification (as /v1/classify)"
    )
    issues: list[dict[str, Any]]


class RowsPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[RowOut]


class ReclassifyRequest(_Strict):
    taxonomy_version: int | None = Field(
        None, ge=1, le=MAX_VERSION, description="default: the current taxonomy"
    )


# -- taxonomy ---------------------------------------------------------------------------------------
class ThemeOut(BaseModel):
    id: str
    name: str
    name_en: str
    polarity: str
    description: str
    examples: list[str]
    aliases: list[str]
    custom: bool
    counter_examples: list[str] = []  # sentences decided not to be about a custom theme (labelling)
    # the one sentiment the theme means, reported for every hit; None: read per text
    sentiment: str | None = None


class TaxonomyOut(BaseModel):
    name: str
    version: int
    themes: list[ThemeOut]


class _Edit(_Strict):
    base_version: int | None = Field(
        None, ge=1, description="the version this edit was made on; 409 if the taxonomy has moved on since"
    )
    note: str = Field("", max_length=500, pattern=r"^[^\x00]*$", description="kept with the version (no NUL)")


class ThemeCreate(_Edit):
    id: str = Field(..., pattern=r"^[a-z][a-z0-9_]{1,47}$")
    name: str = Field(..., min_length=1, max_length=100)
    name_en: str = Field("", max_length=100)
    polarity: Literal["positive_signal", "negative_signal", "topic"] = "topic"
    sentiment: Literal["positive", "neutral", "negative"] | None = Field(
        None,
        description="the one sentiment the theme means (e.g. a complaint theme: negative); omit to read it per text",
    )
    description: str = Field("", max_length=2000)
    examples: list[str] = Field(..., min_length=1, max_length=200)


class ThemeUpdate(_Edit):
    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = Field(None, max_length=2000)
    add_examples: list[str] = Field(default_factory=list, max_length=200)


class MergeRequest(_Edit):
    source: str = Field(..., description="theme id merged away (kept as an alias of the target)")
    into: str = Field(..., description="theme id that remains")
