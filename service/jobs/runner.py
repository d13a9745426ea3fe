"""The job runner of the API process: one background thread.

Without a broker it runs whole jobs (plan, chunks, finalize), so a single ``koe serve`` is a complete
service. With ``KOE_BROKER_URL`` it only plans (the raw upload lives on this machine) and hands the
chunks to Celery workers. Jobs left unfinished by a previous process are picked up again at start.
"""

from __future__ import annotations

import logging
import queue
import threading
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
                log.info("resuming job", extra={"job_id": job.id, "state": job.state})
                self.submit(job.id)

    def submit(self, job_id: str) -> None:
        self._queue.put(job_id)

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def idle(self) -> bool:
        return self._queue.unfinished_tasks == 0

    def _loop(self) -> None:
        while (job_id := self._queue.get()) is not None:
            try:
                self.run(job_id)
            except Exception as exc:  # a bug must fail the job visibly, not kill the runner thread
                log.exception("job crashed", extra={"job_id": job_id})
                self.runtime.repo.set_job(
                    job_id,
                    state="failed",
                    error={"message": f"internal error: {type(exc).__name__}", "status": 500},
                )
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def run(self, job_id: str) -> None:
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
