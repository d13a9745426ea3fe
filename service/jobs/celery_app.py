"""Celery: chunks of an upload processed by ``koe worker`` processes, on as many machines as share the
database and the broker.

Delivery is at-least-once (late acks, a task whose worker died goes back to the queue after
``KOE_BROKER_VISIBILITY_TIMEOUT``); ``work.process_chunk`` makes a second delivery harmless.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from celery import Celery

from service.config import Settings, get_settings

__all__ = ["CHUNK_TASK", "enqueue_chunks", "make_celery"]

CHUNK_TASK = "koe.process_chunk"
log = logging.getLogger("koe.jobs")


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
        broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout},
        worker_hijack_root_logger=False,
    )

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
