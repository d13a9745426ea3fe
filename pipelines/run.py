"""The runner: ingest -> normalize/tokenize/embed/classify (in chunks) -> aggregate -> insights -> report.

Rows stream through in chunks: each chunk's answers are classified as one batch, written to
``rows.csv`` at once, and only a compact ``AnalyzedRow`` is kept for aggregation (plus each answer's
sentences with their themes, for discovery), so memory grows with the number of distinct results, not
with the file. The same stage functions serve the API and the workers (a request is a chunk of one).
Insights (``pipelines.insights``: emerging themes, theme summaries) are on by default (about 3 s at 1,000
rows, 15 s at 10,000: benchmarks/README.md); ``AnalyzeOptions(insights=None)`` leaves them out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from models.bundle import ModelBundle
from pipelines.aggregate import build_summary
from pipelines.classify import classify_texts
from pipelines.discovery import AnswerSentences
from pipelines.exports import ErrorsWriter, RowsWriter
from pipelines.ingest import read_survey
from pipelines.insights import AssistantFactory, InsightOptions, add_insights
from pipelines.nps import group_of
from pipelines.records import AnalyzedRow, IngestInfo, MetricName, SurveyKind, SurveyRow, TextResult, ThemeHit

__all__ = ["AnalyzeOptions", "analyze_file", "classify_rows", "summarize"]

ProgressFn = Callable[[int], None]


@dataclass
class AnalyzeOptions:
    encoding: str | None = None
    kind: SurveyKind = "survey"
    metric: MetricName = "nps"
    mapping: dict[str, Any] | None = None
    max_bytes: int = 2 * 1024**3
    chunk_size: int = 256
    min_count: int = 5
    bootstrap: int = 2000
    seed: int = 0
    report: bool = True
    # emerging themes and theme summaries (pipelines.insights); None: neither (``koe analyze --no-insights``)
    insights: InsightOptions | None = field(default_factory=InsightOptions)


def _chunks(rows: Iterable[SurveyRow], size: int) -> Iterator[list[SurveyRow]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def classify_rows(rows: list[SurveyRow], bundle: ModelBundle) -> list[dict[str, TextResult]]:
    """Classify every answered question of every row in one batch; one dict per row."""
    keys = [(i, q) for i, row in enumerate(rows) for q in row.texts]
    results = classify_texts([rows[i].texts[q] for i, q in keys], bundle)
    out: list[dict[str, TextResult]] = [{} for _ in rows]
    for (i, q), res in zip(keys, results, strict=True):
        out[i][q] = res
    return out


def _compact(result: TextResult, texts: dict[str, str]) -> TextResult:
    """What aggregation needs of a result: masked text, sentiment and theme hits (no sentences, no evidence).

    rows.csv already holds the full result, so the in-memory copy can drop the rest.
    """
    text = texts.setdefault(result.text, result.text)
    hits = [ThemeHit(h.id, h.label, h.score, h.sentiment) for h in result.themes]
    return TextResult(text, result.sentiment, result.scores, hits, [], result.needs_review)


def summarize(
    analyzed: list[AnalyzedRow],
    info: IngestInfo,
    bundle: ModelBundle,
    *,
    min_count: int = 5,
    seed: int = 0,
    bootstrap: int = 2000,
) -> dict[str, Any]:
    """``build_summary`` with the bundle's taxonomy and model information (the CLI and jobs alike)."""
    return build_summary(
        analyzed,
        info,
        [t.to_dict() for t in bundle.taxonomy.themes],
        model_info=bundle.info(),
        min_count=min_count,
        seed=seed,
        bootstrap=bootstrap,
    )


def analyze_file(
    path: str | Path,
    out_dir: str | Path,
    bundle: ModelBundle,
    options: AnalyzeOptions | None = None,
    *,
    progress: ProgressFn | None = None,
    new_assistant: AssistantFactory | None = None,
) -> dict[str, Any]:
    """Analyse one export file and write summary.json, rows.csv, errors.csv and report.html.

    ``new_assistant``: an LLM for naming emerging themes and writing summaries (None: extractive)."""
    opts = options or AnalyzeOptions()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    info, rows = read_survey(
        path,
        encoding=opts.encoding,
        kind=opts.kind,
        metric=opts.metric,
        mapping=opts.mapping,
        max_bytes=opts.max_bytes,
    )
    analyzed, answers, n_issues = _process(rows, info, bundle, out, opts, progress)
    summary = summarize(
        analyzed, info, bundle, min_count=opts.min_count, seed=opts.seed, bootstrap=opts.bootstrap
    )
    summary["issues"] = {"count": n_issues, "file": "errors.csv"}
    if opts.insights is not None:
        add_insights(summary, analyzed, answers, info, bundle, opts.insights, new_assistant)
    (out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    if opts.report:
        from pipelines.report import render_report

        render_report(summary, out / "report.html")
    return summary


def _process(
    rows: Iterable[SurveyRow],
    info: IngestInfo,
    bundle: ModelBundle,
    out: Path,
    opts: AnalyzeOptions,
    progress: ProgressFn | None,
) -> tuple[list[AnalyzedRow], list[AnswerSentences], int]:
    """Classify and write every row; the compact rows, and each answer's sentences when discovery needs them."""
    scored = opts.kind == "survey"
    keep_sentences = opts.insights is not None and opts.insights.discovery
    writer = RowsWriter(out / "rows.csv", info.columns, info.mapping.texts, group_column=scored)
    errors = ErrorsWriter(out / "errors.csv")
    analyzed: list[AnalyzedRow] = []
    sentences: list[AnswerSentences] = []
    texts: dict[str, str] = {}  # one string object per distinct answer (特になし x 10,000 is one string)
    try:
        for chunk in _chunks(rows, opts.chunk_size):
            for row, answers in zip(chunk, classify_rows(chunk, bundle), strict=True):
                group = group_of(row.score, opts.metric) if scored and row.score is not None else None
                writer.write(row, answers, group)
                errors.write(row.issues)
                compact = {q: _compact(res, texts) for q, res in answers.items()}
                analyzed.append(AnalyzedRow.of(row, compact))
                if keep_sentences:
                    sentences.extend(
                        AnswerSentences.from_result(row.row, q, row.date, res) for q, res in answers.items()
                    )
            if progress:
                progress(len(chunk))
    finally:
        writer.close()
        errors.close()
    return analyzed, sentences, errors.count
