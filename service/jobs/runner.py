"""The job runner of the API process: one background thread.

Without a broker it runs whole jobs (plan, chunks, finalize), so a single ``koe serve`` is a complete
service. With ``KOE_BROKER_URL`` it only plans (the raw upload lives on this machine) and hands the
chunks to Celery workers. Jobs left unfinished by a previous process are picked up again at start; a
job whose planning another instance holds (``Repository.start_planning``) is looked at again once that
planner's lease could have run out.
"""

from __future__ import annotations

import logging
import queue
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from service.jobs import work
from service.runtime import Runtime

__all__ = ["JobRunner"]

log = logging.getLogger("koe.jobs")


class JobRunner:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._celery: Any = None
        if runtime.settings.broker_url:
            from service.jobs.celery_app import make_celery

            self._celery = make_celery(runtime.settings)

    def start(self, *, resume: bool = True) -> None:
        self._thread = threading.Thread(target=self._loop, name="koe-jobs", daemon=True)
        self._thread.start()
        if resume:
            for job in self.runtime.repo.unfinished_jobs():
                if job.state in ("queued", "planning") and not self._has_raw_file(job.survey_id):
                    continue  # uploaded to another API instance: that one plans it
                log.info("resuming job", extra={"job_id": job.id, "state": job.state})
                self.submit(job.id)

    def _has_raw_file(self, survey_id: str) -> bool:
        survey = self.runtime.repo.get_survey(survey_id)
        return survey is not None and Path(survey.raw_path).is_file()

    def sweep(self) -> int:
        """Send again the pending chunks of running jobs that made no progress for longer than the broker's
        visibility timeout (a message lost with a broker restart); returns how many were sent.
        A chunk that is in fact still being worked on is skipped by whoever gets it second."""
        if self._celery is None:
            return 0
        from service.jobs.celery_app import enqueue_chunks

        stale_after = timedelta(seconds=self.runtime.settings.broker_visibility_timeout * 2)
        sent = 0
        for job in self.runtime.repo.unfinished_jobs():
            last = job.updated_at or job.created_at
            last = last if last.tzinfo else last.replace(tzinfo=UTC)
            if job.state != "running" or datetime.now(UTC) - last < stale_after:
                continue
            pending = self.runtime.repo.pending_chunks(job.id)
            if pending:
                log.warning("re-sending stalled chunks", extra={"job_id": job.id, "chunks": len(pending)})
                enqueue_chunks(self._celery, job.id, pending)
                self.runtime.repo.set_job(job.id)  # touch: the next sweep waits a full period again
                sent += len(pending)
        return sent

    def submit(self, job_id: str) -> None:
        self._queue.put(job_id)

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def idle(self) -> bool:
        return self._queue.unfinished_tasks == 0

    def _next(self) -> str | None:
        """The next submitted job id; in broker mode, wake up now and then to sweep stalled jobs."""
        if self._celery is None:
            return self._queue.get()
        period = min(60.0, float(self.runtime.settings.broker_visibility_timeout))
        while True:
            try:
                return self._queue.get(timeout=period)
            except queue.Empty:
                try:
                    self.sweep()
                except Exception:  # the database may be briefly away; try again next period
                    log.exception("sweep failed")

    def _loop(self) -> None:
        while (job_id := self._next()) is not None:
            try:
                self.run(job_id)
            except Exception as exc:  # a bug must fail the job visibly, not kill the runner thread
                log.exception("job crashed", extra={"job_id": job_id})
                self.runtime.repo.set_job(
                    job_id,
                    state="failed",
                    finished_at=datetime.now(UTC),
                    error={"message": f"internal error: {type(exc).__name__}", "status": 500},
                )
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def run(self, job_id: str) -> None:
        self._run(job_id)
        job = self.runtime.repo.get_job(job_id)
        if job is not None and job.state == "planning":
            # another planner holds the lease (alive, or dead and not yet timed out): look again after it
            lease = float(self.runtime.settings.job_plan_lease)
            log.info(
                "job is being planned elsewhere; retrying later", extra={"job_id": job_id, "after_s": lease}
            )
            timer = threading.Timer(lease, self.submit, (job_id,))
            timer.daemon = True
            timer.start()

    def _run(self, job_id: str) -> None:
        ctx = self.runtime.job_context()
        max_bytes = self.runtime.settings.max_upload_bytes
        if self._celery is None:
            work.run_all(ctx, job_id, max_bytes)
            return
        from service.jobs.celery_app import enqueue_chunks

        job = ctx.repo.get_job(job_id)
        if job is None:
            return
        if job.state in ("queued", "planning") and not work.plan(ctx, job_id, max_bytes):
            return
        pending = ctx.repo.pending_chunks(job_id)
        if pending:
            enqueue_chunks(self._celery, job_id, pending)
        else:
            work.finalize(ctx, job_id)
