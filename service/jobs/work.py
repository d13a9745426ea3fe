"""The three steps of a job, shared by the in-process worker and Celery workers.

    plan      (where the raw file is) ingest the upload into ``survey_rows``, cut the job into chunks
    chunk     (any worker) classify one chunk's rows and commit results + ``done`` in one transaction
    finalize  (whoever commits the last chunk) aggregate every row into the summary, with emerging themes
              and theme summaries (``pipelines.insights``) unless the context leaves them out

Each step is safe to run twice: a chunk already done is skipped, a finished job is not finished again,
and a planning pass that was cut off starts over from an empty row table. So a worker that dies at any
point loses at most the chunk it was working on, and no row is counted twice.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from models.bundle import ModelBundle
from pipelines.discovery import AnswerSentences
from pipelines.errors import FileTooLargeError, KoeError
from pipelines.ingest import read_survey
from pipelines.insights import AssistantFactory, InsightOptions, add_insights
from pipelines.nps import group_of
from pipelines.records import AnalyzedRow, ColumnMapping, IngestInfo, TextResult
from pipelines.run import classify_rows, summarize
from service.storage.repository import Repository, now, searchable
from service.storage.tables import RowResult

__all__ = ["JobContext", "finalize", "ingest_info", "plan", "process_chunk", "run_all"]

log = logging.getLogger("koe.jobs")
WORKER = f"{socket.gethostname()}:{os.getpid()}"
_PLAN_BATCH = 1000


@dataclass
class JobContext:
    """What a step needs besides the job id: storage, models for a taxonomy version, and limits."""

    repo: Repository
    bundle_for: Callable[[int], ModelBundle]
    max_rows: int
    plan_lease: float = 120.0  # seconds; see Repository.start_planning
    min_count: int = 5
    bootstrap: int = 2000
    seed: int = 0
    insights: InsightOptions | None = None  # emerging themes and theme summaries; None: not in the summary
    new_assistant: AssistantFactory | None = None  # an LLM for them (None: keyword names, extractive)


def ingest_info(info: dict[str, Any]) -> IngestInfo:
    return IngestInfo(
        file=info["file"],
        format=info["format"],
        encoding=info["encoding"],
        header_row=info["header_row"],
        columns=list(info["columns"]),
        mapping=ColumnMapping(**info["mapping"]),
        kind=info["kind"],
        metric=info["metric"],
    )


def _fail(ctx: JobContext, job_id: str, err: KoeError, status: int = 422) -> None:
    ctx.repo.set_job(
        job_id, state="failed", finished_at=now(), error={**err.to_dict(), "text": str(err), "status": status}
    )
    log.warning("job failed", extra={"job_id": job_id, "error": str(err)})


def plan(ctx: JobContext, job_id: str, max_bytes: int) -> bool:
    """Read the upload into the database and cut the job into chunks. False if the job failed or was planned."""
    job = ctx.repo.get_job(job_id)
    if job is None or not ctx.repo.start_planning(job_id, ctx.plan_lease):
        return False
    survey = ctx.repo.get_survey(job.survey_id)
    if survey is None:
        return False
    if job.kind == "analyze":
        opts = survey.options
        try:
            info, rows = read_survey(
                survey.raw_path,
                encoding=opts.get("encoding"),
                kind=opts.get("kind", "survey"),
                metric=opts.get("metric", "nps"),
                mapping=opts.get("mapping"),
                max_bytes=max_bytes,
                display_name=survey.filename,
            )
            ctx.repo.clear_rows(survey.id)
            scored = info.kind == "survey"
            batch: list[tuple[int, Any, str | None]] = []
            seq = 0
            for row in rows:
                if seq >= ctx.max_rows:
                    raise FileTooLargeError(
                        f"the upload has more than {ctx.max_rows:,} data rows (KOE_MAX_UPLOAD_ROWS); "
                        "split the file or raise the limit",
                        file=survey.filename,
                        row=row.row,
                    )
                group = group_of(row.score, info.metric) if scored and row.score is not None else None
                batch.append((seq, row, group))
                seq += 1
                if len(batch) >= _PLAN_BATCH:
                    ctx.repo.add_rows(survey.id, batch)
                    ctx.repo.set_job(job_id)  # heartbeat: the planning lease stays ours
                    batch = []
            if batch:
                ctx.repo.add_rows(survey.id, batch)
        except FileTooLargeError as err:
            ctx.repo.clear_rows(survey.id)
            _fail(ctx, job_id, err, 413)
            return False
        except KoeError as err:
            ctx.repo.clear_rows(survey.id)
            _fail(ctx, job_id, err)
            return False
        info_dict = {
            "file": info.file,
            "format": info.format,
            "encoding": info.encoding,
            "header_row": info.header_row,
            "columns": info.columns,
            "mapping": info.mapping.to_dict(),
            "kind": info.kind,
            "metric": info.metric,
        }
        ctx.repo.set_survey_info(survey.id, info_dict, seq)
        rows_total = seq
    else:  # reclassify: the rows are already stored
        rows_total = survey.rows_total or 0
    n = ctx.repo.plan_chunks(job_id, rows_total, job.chunk_size)
    log.info("job planned", extra={"job_id": job_id, "rows": rows_total, "chunks": n})
    return True


def _row_result(job_id: str, seq: int, row_no: int, answers: dict[str, TextResult]) -> RowResult:
    stored = {q: r.to_dict() for q, r in answers.items()}
    themes = sorted({t.id for r in answers.values() for t in r.themes})
    sentiments = sorted({r.sentiment for r in answers.values()})
    return RowResult(
        job_id=job_id,
        seq=seq,
        row=row_no,
        theme_ids="|" + "|".join(themes) + "|" if themes else "",
        sentiments="|" + "|".join(sentiments) + "|" if sentiments else "",
        needs_review=any(r.needs_review for r in answers.values()),
        search_text=searchable("\n".join(r.text for r in answers.values())),
        results=stored,
    )


def process_chunk(ctx: JobContext, job_id: str, idx: int) -> bool:
    """Classify chunk ``idx`` and commit it; False when it was already done (by us earlier or someone else)."""
    chunk = ctx.repo.get_chunk(job_id, idx)
    job = ctx.repo.get_job(job_id)
    if chunk is None or job is None or chunk.done or job.state != "running":
        return False
    rows = ctx.repo.rows_range(job.survey_id, chunk.first_seq, chunk.n_rows)
    answers = classify_rows(rows, ctx.bundle_for(job.taxonomy_version))
    results = [
        _row_result(job_id, chunk.first_seq + i, row.row, a)
        for i, (row, a) in enumerate(zip(rows, answers, strict=True))
    ]
    done = ctx.repo.commit_chunk(job_id, idx, results, WORKER)
    log.info("chunk committed" if done else "chunk was already done", extra={"job_id": job_id, "chunk": idx})
    return done


def finalize(ctx: JobContext, job_id: str) -> bool:
    """Aggregate once every chunk is done; True when this call finished the job."""
    job = ctx.repo.get_job(job_id)
    if job is None or job.state != "running" or ctx.repo.pending_chunks(job_id):
        return False
    survey = ctx.repo.get_survey(job.survey_id)
    if survey is None or survey.info is None:
        return False
    bundle = ctx.bundle_for(job.taxonomy_version)
    info = ingest_info(survey.info)
    analyzed: list[AnalyzedRow] = []
    sentences: list[AnswerSentences] = []
    for row, stored in ctx.repo.iter_stored(survey.id, job_id):
        answers = {q: TextResult.from_dict(r) for q, r in stored.items()}
        analyzed.append(AnalyzedRow.of(row, answers))
        if ctx.insights is not None and ctx.insights.discovery:
            sentences.extend(AnswerSentences.from_stored(row.row, q, row.date, r) for q, r in stored.items())
    summary = summarize(
        analyzed, info, bundle, min_count=ctx.min_count, seed=ctx.seed, bootstrap=ctx.bootstrap
    )
    summary["issues"] = {
        "count": ctx.repo.issue_count(survey.id),
        "rows": f"/v1/surveys/{survey.id}/rows?has_issues=true",
    }
    if ctx.insights is not None:
        add_insights(summary, analyzed, sentences, info, bundle, ctx.insights, ctx.new_assistant)
    summary["model"].pop("artifacts", None)  # a server path is none of the API user's business
    finished = ctx.repo.finish_job(job_id, survey.id, summary)
    if finished:
        log.info("job succeeded", extra={"job_id": job_id, "rows": len(analyzed)})
    return finished


def run_all(ctx: JobContext, job_id: str, max_bytes: int) -> None:
    """The whole job in this process: plan if needed, every pending chunk in order, then finalize."""
    job = ctx.repo.get_job(job_id)
    if job is None or job.state in ("succeeded", "failed"):
        return
    if job.state in ("queued", "planning") and not plan(ctx, job_id, max_bytes):
        return
    for idx in ctx.repo.pending_chunks(job_id):
        process_chunk(ctx, job_id, idx)
    finalize(ctx, job_id)
