"""A Celery worker killed in the middle of a job loses nothing: real workers, Redis and PostgreSQL.

The same file is analysed twice in one database: once in this process without a broker (the
reference), once by ``koe worker`` subprocesses fed through Redis. The first worker is SIGKILLed while
it holds an unacknowledged chunk, some chunks committed and not all; a second worker finishes the job,
the chunk that died with the first worker coming back after ``KOE_BROKER_VISIBILITY_TIMEOUT``. Every
row must have exactly one result, for the right row, and the summary must equal the reference.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select

from service.config import Settings
from service.jobs import work
from service.jobs.celery_app import enqueue_chunks, make_celery
from service.runtime import Runtime
from service.storage.tables import JobChunk, RowResult

from .conftest import ROOT, make_settings, stored_survey, wait_for

pytestmark = pytest.mark.slow

# a Redis database of its own, emptied before and after: no stale message of an earlier run can interfere
REDIS_URL = os.environ.get("KOE_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
ROWS = 320
CHUNK_ROWS = 20  # 16 chunks
VISIBILITY_TIMEOUT = 5  # seconds before the chunk of the killed worker goes back to the queue
# each worker loads the models (~10 s on a busy 2-core machine; the very first use also builds the ONNX
# graph under ~/.cache/koe), then classifies its chunks
TIMEOUT = 240.0

# summary parts computed from the file alone (scores, dates, segments), not from the classification
INPUT_ONLY = (
    "schema_version",
    "input",
    "model",
    "nps",
    "metric",
    "score_distribution",
    "segments",
    "periods",
    "drivers_method",
    "notes",
)


@pytest.fixture
def broker() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


class Worker:
    """One ``koe worker`` (solo pool: a single process, in a session of its own) logging to a file."""

    def __init__(self, name: str, settings: Settings, log_dir: Path) -> None:
        env = dict(os.environ)  # what else the test's settings read from KOE_* (encoder, cache dir …) too
        env.update(
            KOE_DATA_DIR=str(settings.data_dir),
            KOE_DATABASE_URL=settings.database,
            KOE_BROKER_URL=str(settings.broker_url),
            KOE_BROKER_VISIBILITY_TIMEOUT=str(settings.broker_visibility_timeout),
            KOE_BOOTSTRAP_SAMPLES=str(settings.bootstrap_samples),  # the worker that finishes aggregates
            KOE_MIN_COUNT=str(settings.min_count),
            KOE_SEED=str(settings.seed),
        )
        self.log_path = log_dir / f"worker-{name}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "service.cli", "worker"),
                    *("--pool", "solo", "--concurrency", "1", "--hostname", f"{name}-{os.getpid()}@%h"),
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a process group of its own: killing it cannot touch pytest
            )

    @property
    def tag(self) -> str:
        """How ``job_chunks.worker`` ends for the chunks this process committed (``host:pid``)."""
        return f":{self.proc.pid}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def pause(self, paused: bool) -> None:
        """Freeze (SIGSTOP) or resume (SIGCONT) the worker, so a state seen while frozen is the state it dies in."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGSTOP if paused else signal.SIGCONT)

    def kill(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):  # it may have exited since
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]


def _create_job(runtime: Runtime) -> tuple[str, str]:
    return stored_survey(runtime)


def _row_results(runtime: Runtime, job_id: str) -> list[RowResult]:
    with runtime.db.session() as s:
        return list(s.scalars(select(RowResult).where(RowResult.job_id == job_id).order_by(RowResult.seq)))


def _identity(r: RowResult) -> tuple[Any, ...]:
    """Which row a result belongs to: position, line number, and each question's text and sentences."""
    texts = {q: (a["text"], [s["text"] for s in a["sentences"]]) for q, a in r.results.items()}
    return r.seq, r.row, r.search_text, texts


def _classification(r: RowResult) -> tuple[Any, ...]:
    return r.theme_ids, r.sentiments, r.needs_review, r.results


def _chunk_workers(runtime: Runtime, job_id: str) -> dict[int, str]:
    with runtime.db.session() as s:
        found = s.execute(select(JobChunk.idx, JobChunk.worker).where(JobChunk.job_id == job_id))
        return {idx: worker or "" for idx, worker in found}


def _comparable(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary without what differs between two analyses of one file (time, the survey's link)."""
    out = {k: v for k, v in summary.items() if k != "generated_at"}
    out["issues"] = {k: v for k, v in summary["issues"].items() if k != "rows"}
    return out


def test_worker_killed_mid_job_loses_nothing(tmp_path: Path, pg_url: str, broker: redis.Redis) -> None:
    settings = make_settings(tmp_path, pg_url, job_chunk_rows=CHUNK_ROWS, bootstrap_samples=200)
    with_broker = settings.model_copy(
        update={"broker_url": REDIS_URL, "broker_visibility_timeout": VISIBILITY_TIMEOUT}
    )
    app = make_celery(with_broker)  # connects only when used
    runtime = Runtime(settings)
    workers: list[Worker] = []
    try:
        # the reference: the whole job in this process, no broker
        ref_survey, ref_job_id = _create_job(runtime)
        work.run_all(runtime.job_context(), ref_job_id, settings.max_upload_bytes)
        ref_job = runtime.repo.get_job(ref_job_id)
        assert ref_job is not None and ref_job.state == "succeeded", ref_job and ref_job.error
        assert ref_job.summary is not None
        ref_rows = _row_results(runtime, ref_job_id)
        assert len(ref_rows) == ROWS

        # the same file as a second survey: planned here, its chunks handed to workers
        survey_id, job_id = _create_job(runtime)
        assert work.plan(runtime.job_context(), job_id, settings.max_upload_bytes)
        chunks = runtime.repo.pending_chunks(job_id)
        assert chunks == list(range(ROWS // CHUNK_ROWS))
        enqueue_chunks(app, job_id, chunks)

        t_start = time.monotonic()
        first = Worker("first", with_broker, tmp_path)
        workers.append(first)

        def stranding() -> bool:
            _, n_done = runtime.repo.progress(job_id)
            assert n_done < len(chunks) - 1, "the first worker got too far before the kill"
            # at least 2 chunks committed, and a delivered, unacknowledged message: the one the kill strands
            return n_done >= 2 and broker.hlen("unacked") >= 1

        def holding_a_chunk() -> bool:
            """Seen, then seen again with the worker frozen: it could otherwise ack the message between this
            check and the kill, and the kill would strand nothing (it happened once in a .ci/run)."""
            assert first.alive(), f"the first worker exited:\n{first.output()}"
            if not stranding():
                return False
            first.pause(True)
            if stranding():
                return True  # stays frozen until the kill
            first.pause(False)
            return False

        wait_for(holding_a_chunk, timeout=TIMEOUT, every=0.02)
        first.kill()
        t_kill = time.monotonic()
        rows_at_kill, chunks_at_kill = runtime.repo.progress(job_id)  # a dead worker commits nothing more
        assert 2 <= chunks_at_kill < len(chunks)
        assert broker.hlen("unacked") >= 1, "the killed worker's message should be waiting to be restored"

        second = Worker("second", with_broker, tmp_path)
        workers.append(second)

        def finished() -> bool:
            job = runtime.repo.get_job(job_id)
            assert job is not None and job.state != "failed", job and job.error
            assert second.alive(), f"the second worker exited:\n{second.output()}"
            return job.state == "succeeded"

        try:
            wait_for(finished, timeout=TIMEOUT, every=0.2)
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}; progress {runtime.repo.progress(job_id)}, pending {runtime.repo.pending_chunks(job_id)}, "
                f"queued {broker.llen('celery')}, unacked {broker.hlen('unacked')}\n{second.output()}"
            ) from exc
        print(
            f"\nfirst worker killed {t_kill - t_start:.1f} s after its start, {chunks_at_kill} chunks committed; "
            f"job succeeded {time.monotonic() - t_kill:.1f} s after the kill"
        )

        # nothing lost, nothing twice: one result per row, every chunk committed once
        job = runtime.repo.get_job(job_id)
        assert job is not None and job.summary is not None
        assert job.rows_total == ROWS
        assert runtime.repo.progress(job_id) == (ROWS, len(chunks))
        rows = _row_results(runtime, job_id)
        assert [r.seq for r in rows] == list(range(ROWS))
        assert [_identity(r) for r in rows] == [_identity(r) for r in ref_rows]

        # the killed worker's chunks, then the second worker's: both committed, by two processes
        by_worker = _chunk_workers(runtime, job_id)
        first_chunks = sorted(i for i, w in by_worker.items() if w.endswith(first.tag))
        second_chunks = sorted(i for i, w in by_worker.items() if w.endswith(second.tag))
        assert first_chunks == list(range(chunks_at_kill)), by_worker
        assert second_chunks == list(range(chunks_at_kill, len(chunks))), by_worker
        assert rows_at_kill == chunks_at_kill * CHUNK_ROWS

        # the summary: what comes from the file alone is the reference's, and the link is this survey's
        summary, reference = job.summary, ref_job.summary
        assert {k: summary[k] for k in INPUT_ONLY} == {k: reference[k] for k in INPUT_ONLY}
        assert summary["issues"] == {
            "count": reference["issues"]["count"],
            "rows": f"/v1/surveys/{survey_id}/rows?has_issues=true",
        }
        assert reference["issues"]["rows"] == f"/v1/surveys/{ref_survey}/rows?has_issues=true"

        # the classification of every row, and so the rest of the summary, as in the reference
        differ = [
            (r.seq, _classification(r), _classification(ref))
            for r, ref in zip(rows, ref_rows, strict=True)
            if _classification(r) != _classification(ref)
        ]
        assert not differ, (
            f"rows classified differently after the kill: {[d[0] for d in differ]}; "
            f"the first (row, after, reference): {differ[:1]}"
        )
        assert _comparable(summary) == _comparable(reference)
    finally:
        for w in workers:
            w.kill()
        app.close()
        runtime.close()
