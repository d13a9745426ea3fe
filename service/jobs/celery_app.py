"""Celery: chunks of an upload processed by ``koe worker`` processes, on as many machines as share the
database and the broker.

Delivery is at-least-once (late acks, a task whose worker died goes back to the queue after
``KOE_BROKER_VISIBILITY_TIMEOUT``); ``work.process_chunk`` makes a second delivery harmless.

The message of a worker that died stays in Redis's ``unacked`` hash until a live worker sweeps it back
to the queue. kombu sweeps when a worker starts and then every ``unacked_restore_interval`` x
``unacked_restore_throttle`` seconds (10 x 10 by default): a chunk would come back up to 100 s after its
timeout. ``_transport_options`` scans on every tick, one tick per tenth of the timeout (1 s to 60 s).
The timeout must exceed the longest chunk (the first chunk of a worker also loads the models), or
chunks still running are handed out again: harmless, but work done twice.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from celery import Celery

from service.config import Settings, get_settings
from service.storage.repository import now

__all__ = ["CHUNK_TASK", "REPORT_TICK_TASK", "enqueue_chunks", "make_celery"]

CHUNK_TASK = "koe.process_chunk"
REPORT_TICK_TASK = "koe.report_tick"  # weekly report e-mails: `koe scheduler --beat` sends it every interval
log = logging.getLogger("koe.jobs")


def _transport_options(visibility_timeout: int) -> dict[str, Any]:
    return {
        "visibility_timeout": visibility_timeout,
        "unacked_restore_interval": max(1, min(60, visibility_timeout // 10)),  # seconds between sweeps
        "unacked_restore_throttle": 1,  # every sweep scans (kombu's default: every 10th)
    }


def make_celery(settings: Settings) -> Celery:
    if not settings.broker_url:
        raise RuntimeError("KOE_BROKER_URL is not set: jobs run in the API process (no workers needed)")
    app = Celery("koe", broker=settings.broker_url)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options=_transport_options(settings.broker_visibility_timeout),
        worker_hijack_root_logger=False,
        beat_schedule={
            "weekly-reports": {
                "task": REPORT_TICK_TASK,
                "schedule": settings.scheduler_interval_seconds,
                "options": {"expires": settings.scheduler_interval_seconds},  # a missed pass is not queued up
            }
        },
    )

    @app.task(name=REPORT_TICK_TASK)
    def report_tick_task() -> int:
        """One scheduler pass (service.scheduler.tick); the delivery log keeps it idempotent."""
        from service.scheduler import tick

        return sum(o.state == "sent" for o in tick(_worker_runtime()))

    @app.task(name=CHUNK_TASK, bind=True, max_retries=5)
    def process_chunk_task(self: Any, job_id: str, idx: int) -> None:
        from service.jobs.work import finalize, process_chunk

        ctx = _worker_runtime().job_context()
        try:
            process_chunk(ctx, job_id, idx)
            finalize(ctx, job_id)
        except Exception as exc:  # database or model hiccup: retry the chunk later, with backoff
            log.exception("chunk failed", extra={"job_id": job_id, "chunk": idx})
            if self.request.retries >= self.max_retries:
                ctx.repo.set_job(
                    job_id,
                    state="failed",
                    finished_at=now(),
                    error={
                        "message": f"chunk {idx} failed {self.max_retries + 1} times: {exc}",
                        "status": 500,
                    },
                )
                raise
            raise self.retry(exc=exc, countdown=min(60, 2 ** (self.request.retries + 1))) from exc

    return app


@lru_cache(maxsize=1)
def _worker_runtime() -> Any:
    from service.runtime import Runtime

    return Runtime(get_settings(), migrate=False)


def enqueue_chunks(app: Celery, job_id: str, indices: list[int]) -> None:
    for idx in indices:
        app.send_task(CHUNK_TASK, args=[job_id, idx])
