"""Surveys, jobs, chunks and results: every query the API and the workers make goes through here."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, delete, func, or_, select, update

from pipelines.records import SurveyRow, TextResult
from service.storage.db import Database
from service.storage.tables import Job, JobChunk, RowResult, Survey, SurveyRowRecord

__all__ = ["Repository", "RowFilter", "new_id", "now"]

FINISHED = ("succeeded", "failed")


def new_id() -> str:
    return uuid.uuid4().hex


def now() -> datetime:
    return datetime.now(UTC)


def searchable(value: str) -> str:
    """Text for the filter columns: PostgreSQL text cannot hold NUL, so it becomes U+FFFD there (the row's
    own data keeps the original, escaped inside JSON)."""
    return value.replace("\x00", "\ufffd")


def _like(value: str) -> str:
    """A LIKE pattern matching ``value`` literally (``\\`` escapes % and _)."""
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@dataclass
class RowFilter:
    theme: str | None = None
    sentiment: str | None = None
    group: str | None = None
    segment: tuple[str, str] | None = None  # (column, value)
    score_min: int | None = None
    score_max: int | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    text: str | None = None
    needs_review: bool | None = None
    has_issues: bool | None = None


class Repository:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- surveys -----------------------------------------------------------------------------------
    def find_duplicate(self, content_hash: str, options: dict[str, Any]) -> tuple[Survey, Job | None] | None:
        """An earlier upload of the same bytes with the same options, and its newest job."""
        with self.db.session() as s:
            for survey in s.scalars(
                select(Survey).where(Survey.content_hash == content_hash).order_by(Survey.created_at)
            ):
                if survey.options == options:
                    return survey, self.latest_job(survey.id)
        return None

    def create_survey(
        self,
        *,
        survey_id: str,
        filename: str,
        content_hash: str,
        size_bytes: int,
        raw_path: str,
        options: dict[str, Any],
        taxonomy_version: int,
        chunk_size: int,
    ) -> tuple[Survey, Job]:
        stamp = now()
        survey = Survey(
            id=survey_id,
            filename=filename[:255],
            content_hash=content_hash,
            size_bytes=size_bytes,
            raw_path=raw_path,
            options=options,
            created_at=stamp,
        )
        job = Job(
            id=new_id(),
            survey_id=survey_id,
            kind="analyze",
            taxonomy_version=taxonomy_version,
            state="queued",
            chunk_size=chunk_size,
            created_at=stamp,
        )
        with self.db.session() as s:
            s.add(survey)
            s.flush()
            s.add(job)
        return survey, job

    def get_survey(self, survey_id: str) -> Survey | None:
        with self.db.session() as s:
            return s.get(Survey, survey_id)

    def list_surveys(self, limit: int, offset: int) -> tuple[int, list[Survey]]:
        with self.db.session() as s:
            total = s.scalar(select(func.count()).select_from(Survey)) or 0
            rows = list(
                s.scalars(select(Survey).order_by(Survey.created_at.desc()).limit(limit).offset(offset))
            )
            return total, rows

    def delete_survey(self, survey_id: str) -> Survey | None:
        """Remove the survey and everything derived from it (rows, jobs, chunks, results)."""
        with self.db.session() as s:
            survey = s.get(Survey, survey_id)
            if survey is None:
                return None
            job_ids = list(s.scalars(select(Job.id).where(Job.survey_id == survey_id)))
            if job_ids:  # explicit deletes: SQLite only cascades with foreign keys switched on
                s.execute(delete(RowResult).where(RowResult.job_id.in_(job_ids)))
                s.execute(delete(JobChunk).where(JobChunk.job_id.in_(job_ids)))
                s.execute(delete(Job).where(Job.id.in_(job_ids)))
            s.execute(delete(SurveyRowRecord).where(SurveyRowRecord.survey_id == survey_id))
            s.delete(survey)
            return survey

    def set_survey_info(self, survey_id: str, info: dict[str, Any], rows_total: int) -> None:
        with self.db.session() as s:
            s.execute(update(Survey).where(Survey.id == survey_id).values(info=info, rows_total=rows_total))

    def raw_path_users(self, raw_path: str) -> int:
        with self.db.session() as s:
            return s.scalar(select(func.count()).select_from(Survey).where(Survey.raw_path == raw_path)) or 0

    # -- survey rows (input, written once by the planning pass) -------------------------------------
    def clear_rows(self, survey_id: str) -> None:
        with self.db.session() as s:
            s.execute(delete(SurveyRowRecord).where(SurveyRowRecord.survey_id == survey_id))

    def add_rows(self, survey_id: str, rows: Sequence[tuple[int, SurveyRow, str | None]]) -> None:
        """Store (seq, row, NPS group) triples in one transaction."""
        with self.db.session() as s:
            s.add_all(
                SurveyRowRecord(
                    survey_id=survey_id,
                    seq=seq,
                    row=row.row,
                    score=row.score,
                    grp=group,
                    date=row.date,
                    segment_keys=searchable("".join(f"|{k}={v}" for k, v in row.segments.items()) + "|"),
                    data=row.to_dict(),
                    n_issues=len(row.issues),
                )
                for seq, row, group in rows
            )

    def rows_range(self, survey_id: str, first_seq: int, n: int) -> list[SurveyRow]:
        with self.db.session() as s:
            recs = s.scalars(
                select(SurveyRowRecord)
                .where(
                    SurveyRowRecord.survey_id == survey_id,
                    SurveyRowRecord.seq >= first_seq,
                    SurveyRowRecord.seq < first_seq + n,
                )
                .order_by(SurveyRowRecord.seq)
            )
            return [SurveyRow.from_dict(r.data) for r in recs]

    def issue_count(self, survey_id: str) -> int:
        with self.db.session() as s:
            return int(
                s.scalar(
                    select(func.sum(SurveyRowRecord.n_issues)).where(SurveyRowRecord.survey_id == survey_id)
                )
                or 0
            )

    # -- jobs ------------------------------------------------------------------------------------
    def create_job(self, survey_id: str, kind: str, taxonomy_version: int, chunk_size: int) -> Job:
        job = Job(
            id=new_id(),
            survey_id=survey_id,
            kind=kind,
            taxonomy_version=taxonomy_version,
            state="queued",
            chunk_size=chunk_size,
            created_at=now(),
        )
        with self.db.session() as s:
            s.add(job)
        return job

    def get_job(self, job_id: str) -> Job | None:
        with self.db.session() as s:
            return s.get(Job, job_id)

    def latest_job(self, survey_id: str) -> Job | None:
        with self.db.session() as s:
            return s.scalar(
                select(Job).where(Job.survey_id == survey_id).order_by(Job.created_at.desc()).limit(1)
            )

    def job_counts(self) -> dict[str, int]:
        with self.db.session() as s:
            return {
                state: int(n) for state, n in s.execute(select(Job.state, func.count()).group_by(Job.state))
            }

    def unfinished_jobs(self) -> list[Job]:
        with self.db.session() as s:
            return list(s.scalars(select(Job).where(Job.state.not_in(FINISHED)).order_by(Job.created_at)))

    def set_job(self, job_id: str, **values: Any) -> None:
        with self.db.session() as s:
            s.execute(update(Job).where(Job.id == job_id).values(**{"updated_at": now(), **values}))

    def start_planning(self, job_id: str, lease_seconds: float) -> bool:
        """Claim a job's planning: a queued job, or one whose planner made no progress for ``lease_seconds``
        (it died). False if the job is past planning or another planner holds it: one UPDATE decides, so
        two API instances that resume the same job cannot both read its upload into the row table."""
        stale = now() - timedelta(seconds=lease_seconds)
        with self.db.session() as s:
            res = s.execute(
                update(Job)
                .where(
                    Job.id == job_id,
                    or_(Job.state == "queued", and_(Job.state == "planning", Job.updated_at < stale)),
                )
                .values(state="planning", started_at=now(), updated_at=now())
            )
            return bool(res.rowcount)  # type: ignore[attr-defined]

    def plan_chunks(self, job_id: str, rows_total: int, chunk_size: int) -> int:
        """Cut the job into chunks of ``chunk_size`` rows and mark it running; returns the chunk count."""
        n_chunks = (rows_total + chunk_size - 1) // chunk_size
        with self.db.session() as s:
            s.execute(delete(JobChunk).where(JobChunk.job_id == job_id))
            s.add_all(
                JobChunk(
                    job_id=job_id,
                    idx=i,
                    first_seq=i * chunk_size,
                    n_rows=min(chunk_size, rows_total - i * chunk_size),
                    done=False,
                )
                for i in range(n_chunks)
            )
            s.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(state="running", chunks_total=n_chunks, rows_total=rows_total, updated_at=now())
            )
        return n_chunks

    def pending_chunks(self, job_id: str) -> list[int]:
        with self.db.session() as s:
            return list(
                s.scalars(
                    select(JobChunk.idx)
                    .where(JobChunk.job_id == job_id, JobChunk.done.is_(False))
                    .order_by(JobChunk.idx)
                )
            )

    def get_chunk(self, job_id: str, idx: int) -> JobChunk | None:
        with self.db.session() as s:
            return s.get(JobChunk, (job_id, idx))

    def commit_chunk(self, job_id: str, idx: int, results: Iterable[RowResult], worker: str) -> bool:
        """Write a chunk's results and mark it done, atomically; False (and nothing written) if it was done."""
        with self.db.session() as s:
            res = s.execute(
                update(JobChunk)
                .where(JobChunk.job_id == job_id, JobChunk.idx == idx, JobChunk.done.is_(False))
                .values(done=True, done_at=now(), worker=worker[:200])
            )
            if not res.rowcount:  # type: ignore[attr-defined]
                return False
            s.add_all(results)
            s.execute(update(Job).where(Job.id == job_id).values(updated_at=now()))
        return True

    def progress(self, job_id: str) -> tuple[int, int]:
        """(rows done, chunks done) from the committed chunks: a count no retry can inflate."""
        with self.db.session() as s:
            n_rows, n_chunks = s.execute(
                select(func.coalesce(func.sum(JobChunk.n_rows), 0), func.count()).where(
                    JobChunk.job_id == job_id, JobChunk.done.is_(True)
                )
            ).one()
            return int(n_rows), int(n_chunks)

    def finish_job(self, job_id: str, survey_id: str, summary: dict[str, Any]) -> bool:
        """Store the summary and serve this job's results; False if another process finished it first."""
        with self.db.session() as s:
            res = s.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == "running")
                .values(state="succeeded", summary=summary, finished_at=now(), updated_at=now())
            )
            if not res.rowcount:  # type: ignore[attr-defined]
                return False
            s.execute(update(Survey).where(Survey.id == survey_id).values(current_job_id=job_id))
        return True

    # -- results ---------------------------------------------------------------------------------
    def iter_analyzed(
        self, survey_id: str, job_id: str, batch: int = 2000
    ) -> Iterator[tuple[SurveyRow, dict[str, TextResult]]]:
        """Every row of the survey with this job's results, in file order, read in batches."""
        for row, stored in self.iter_stored(survey_id, job_id, batch):
            yield row, {q: TextResult.from_dict(r) for q, r in stored.items()}

    def iter_stored(
        self, survey_id: str, job_id: str, batch: int = 2000
    ) -> Iterator[tuple[SurveyRow, dict[str, dict[str, Any]]]]:
        """``iter_analyzed`` with each result as stored (``TextResult.to_dict()``: sentences included)."""
        last = -1
        while True:
            with self.db.session() as s:
                pairs = s.execute(
                    select(SurveyRowRecord.seq, SurveyRowRecord.data, RowResult.results)
                    .join(
                        RowResult,
                        and_(RowResult.seq == SurveyRowRecord.seq, RowResult.job_id == job_id),
                        isouter=True,
                    )
                    .where(SurveyRowRecord.survey_id == survey_id, SurveyRowRecord.seq > last)
                    .order_by(SurveyRowRecord.seq)
                    .limit(batch)
                ).all()
            if not pairs:
                return
            for seq, data, results in pairs:
                yield SurveyRow.from_dict(data), dict(results or {})
                last = seq

    def answered_sample(self, survey_id: str, job_id: str, n: int) -> tuple[int, list[SurveyRow]]:
        """(rows with an answer, at most ``n`` of them spread evenly over the file, in file order).

        Every k-th answered row, not a random draw: the same survey gives the same sample each time, and
        the sample covers the whole period of the file."""
        answered = and_(RowResult.job_id == job_id, RowResult.search_text != "")
        with self.db.session() as s:
            total = int(s.scalar(select(func.count()).select_from(RowResult).where(answered)) or 0)
            step = max(1, -(-total // max(n, 1)))
            ranked = (
                select(RowResult.seq, func.row_number().over(order_by=RowResult.seq).label("k"))
                .where(answered)
                .subquery()
            )
            chosen = select(ranked.c.seq).where((ranked.c.k - 1) % step == 0).limit(n)
            data = s.scalars(
                select(SurveyRowRecord.data)
                .where(SurveyRowRecord.survey_id == survey_id, SurveyRowRecord.seq.in_(chosen))
                .order_by(SurveyRowRecord.seq)
            ).all()
        return total, [SurveyRow.from_dict(d) for d in data]

    def _filtered(self, query: Select[Any], survey_id: str, job_id: str, f: RowFilter) -> Select[Any]:
        query = query.join(
            RowResult, and_(RowResult.seq == SurveyRowRecord.seq, RowResult.job_id == job_id), isouter=True
        ).where(SurveyRowRecord.survey_id == survey_id)
        if f.theme:
            query = query.where(RowResult.theme_ids.like(_like(f"|{f.theme}|"), escape="\\"))
        if f.sentiment:
            query = query.where(RowResult.sentiments.like(_like(f"|{f.sentiment}|"), escape="\\"))
        if f.group:
            query = query.where(SurveyRowRecord.grp == f.group)
        if f.segment:
            col, val = f.segment
            query = query.where(SurveyRowRecord.segment_keys.like(_like(f"|{col}={val}|"), escape="\\"))
        if f.score_min is not None:
            query = query.where(SurveyRowRecord.score >= f.score_min)
        if f.score_max is not None:
            query = query.where(SurveyRowRecord.score <= f.score_max)
        if f.date_from is not None:
            query = query.where(SurveyRowRecord.date >= f.date_from)
        if f.date_to is not None:
            query = query.where(SurveyRowRecord.date < f.date_to)
        if f.text:
            query = query.where(RowResult.search_text.like(_like(f.text), escape="\\"))
        if f.needs_review is not None:
            query = query.where(RowResult.needs_review.is_(f.needs_review))
        if f.has_issues is not None:
            query = query.where(
                SurveyRowRecord.n_issues > 0 if f.has_issues else SurveyRowRecord.n_issues == 0
            )
        return query

    def query_rows(
        self, survey_id: str, job_id: str, f: RowFilter, *, limit: int | None, offset: int = 0
    ) -> tuple[int, list[tuple[SurveyRow, str | None, dict[str, Any]]]]:
        """(matching count, page of (row, NPS group, stored results)) in file order."""
        with self.db.session() as s:
            total = (
                s.scalar(
                    self._filtered(select(func.count()).select_from(SurveyRowRecord), survey_id, job_id, f)
                )
                or 0
            )
            query = self._filtered(
                select(SurveyRowRecord.data, SurveyRowRecord.grp, RowResult.results), survey_id, job_id, f
            ).order_by(SurveyRowRecord.seq)
            if limit is not None:
                query = query.limit(limit).offset(offset)
            page = [(SurveyRow.from_dict(d), g, r or {}) for d, g, r in s.execute(query)]
        return int(total), page
