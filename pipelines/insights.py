"""Emerging themes and theme summaries of an analysed survey: the ``discovery`` and ``summaries`` sections.

Stage: reads the analysed rows (``AnalyzedRow``), their answers' sentences with the themes they got
(``AnswerSentences``) and the ingest information; adds ``discovery`` (``pipelines.discovery``) and
``summaries`` (``pipelines.summaries``) to ``summary.json`` (docs/summary-schema.md). The same functions
serve ``koe analyze``, the service job's finalize step, the API (on request, with filters) and
``koe insights``.

An LLM is optional: ``new_assistant`` makes one per section (each with its own token budget) and the
section records what it did (``llm``: the assistant's ``report()``); without one, clusters are named by
their keywords and summaries are extractive. Deterministic either way (the LLM at temperature 0, cached).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pipelines.assistant import Assistant
from pipelines.discovery import AnswerSentences, Lemmatizer, discover, lemmatizer, theme_thresholds
from pipelines.nps import group_of
from pipelines.records import AnalyzedRow, IngestInfo
from pipelines.summaries import build_summaries

if TYPE_CHECKING:
    from models.bundle import ModelBundle

__all__ = [
    "AssistantFactory",
    "InsightOptions",
    "SessionAssistant",
    "add_insights",
    "discovery_section",
    "nps_groups",
    "summaries_section",
]

_T = TypeVar("_T")


class SessionAssistant(Assistant, Protocol):
    """An assistant made for one computation: it reports what it did and is closed afterwards."""

    def report(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


AssistantFactory = Callable[[], SessionAssistant | None]  # None: no LLM configured


@dataclass
class InsightOptions:
    """What ``add_insights`` computes, and its limits (the service fills them from ``Settings``)."""

    discovery: bool = True
    summaries: bool = True
    max_sentences: int = 5000  # discovery: uncovered sentences clustered at most (a fixed sample above)
    min_mentions: int = 5  # summaries: responses a theme x group cell needs
    seed: int = 0
    workers: int = 1  # LLM requests in flight at once


def _with_assistant(
    new_assistant: AssistantFactory | None, compute: Callable[[Assistant | None], _T]
) -> tuple[_T, dict[str, Any] | None]:
    assistant = new_assistant() if new_assistant is not None else None
    try:
        result = compute(assistant)
        return result, (assistant.report() if assistant is not None else None)
    finally:
        if assistant is not None:
            assistant.close()


def nps_groups(rows: Sequence[AnalyzedRow], info: IngestInfo) -> list[str | None] | None:
    """Each row's NPS group (None without a score); None for support data (no score column)."""
    if info.kind != "survey":
        return None
    return [group_of(r.score, info.metric) if r.score is not None else None for r in rows]


def discovery_section(
    bundle: ModelBundle,
    answers: Sequence[AnswerSentences],
    rows: Sequence[AnalyzedRow],
    *,
    options: InsightOptions | None = None,
    new_assistant: AssistantFactory | None = None,
    taken_ids: Sequence[str] = (),
    lemmatize: Lemmatizer | None = None,
) -> dict[str, Any]:
    """``pipelines.discovery.discover`` with the bundle's thresholds, encoder and tokenizer: the
    ``discovery`` section. ``taken_ids``: theme ids suggested ids must avoid (besides the bundle's)."""
    opts = options or InsightOptions()

    def compute(assistant: Assistant | None) -> dict[str, Any]:
        found = discover(
            answers,
            thresholds=theme_thresholds(bundle),
            embed=bundle.encoder.encode,
            lemmatize=lemmatize or lemmatizer(bundle.tokenizer),
            answering_rows={r.row: r.date for r in rows if r.answers},
            assistant=assistant,
            taken_ids=[*bundle.taxonomy.ids, *taken_ids],
            max_sentences=opts.max_sentences,
            seed=opts.seed,
            workers=opts.workers,
        )
        return found.to_dict()

    doc, report = _with_assistant(new_assistant, compute)
    doc["llm"] = report
    return doc


def summaries_section(
    bundle: ModelBundle,
    rows: Sequence[AnalyzedRow],
    groups: Sequence[str | None] | None,
    *,
    options: InsightOptions | None = None,
    new_assistant: AssistantFactory | None = None,
    theme: str | None = None,
    group: str | None = None,
    segment: tuple[str, str] | None = None,
    lemmatize: Lemmatizer | None = None,
) -> dict[str, Any]:
    """``pipelines.summaries.build_summaries`` over the bundle's taxonomy: the ``summaries`` section
    (every theme x group cell, or those ``theme``, ``group`` and ``segment`` narrow it down to)."""
    opts = options or InsightOptions()

    def compute(assistant: Assistant | None) -> list[dict[str, Any]]:
        return build_summaries(
            rows,
            [t.to_dict() for t in bundle.taxonomy.themes],
            groups,
            lemmatize=lemmatize or lemmatizer(bundle.tokenizer),
            assistant=assistant,
            theme=theme,
            group=group,
            segment=segment,
            min_mentions=opts.min_mentions,
            workers=opts.workers,
        )

    items, report = _with_assistant(new_assistant, compute)
    return {"min_mentions": opts.min_mentions, "llm": report, "items": items}


def add_insights(
    summary: dict[str, Any],
    rows: Sequence[AnalyzedRow],
    answers: Sequence[AnswerSentences],
    info: IngestInfo,
    bundle: ModelBundle,
    options: InsightOptions,
    new_assistant: AssistantFactory | None = None,
) -> dict[str, Any]:
    """Add the ``discovery`` and ``summaries`` sections ``options`` asks for to ``summary`` (and return it).
    Both share one lemmatizer, so each text is tokenised once."""
    lemmatize = lemmatizer(bundle.tokenizer)
    if options.discovery:
        summary["discovery"] = discovery_section(
            bundle, answers, rows, options=options, new_assistant=new_assistant, lemmatize=lemmatize
        )
    if options.summaries:
        summary["summaries"] = summaries_section(
            bundle,
            rows,
            nps_groups(rows, info),
            options=options,
            new_assistant=new_assistant,
            lemmatize=lemmatize,
        )
    return summary
