"""``create_app``: the FastAPI application (``koe serve`` runs it with uvicorn)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.api.routes import classify, health, jobs, reports, surveys, taxonomy
from service.api.routes import insights as insights_routes
from service.config import Settings, get_settings
from service.errors import PROBLEM_JSON, install_handlers, problem
from service.jobs.runner import JobRunner
from service.metrics import Metrics
from service.runtime import Runtime
from service.web import UPLOAD_PATHS, mount_dashboard

__all__ = ["create_app"]

log = logging.getLogger("koe.api")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DESCRIPTION = """\
koe (声) turns Japanese customer voices into sentiment, themes and the drivers behind NPS.

* `POST /v1/classify`: sentiment and themes of support tickets and chats, in one call.
* `POST /v1/surveys`: upload a survey export (CSV/XLSX, CP932 or UTF-8); poll `GET /v1/jobs/{id}`;
  read the summary, drivers, themes, quotes and rows; export them as CSV or XLSX.
* `/v1/taxonomy`: the theme taxonomy, versioned; add, rename and merge themes.

Send an API key (`koe apikey create`) as `Authorization: Bearer <key>`. Errors are
`application/problem+json` and name the field, file, row and column.
"""


class _TooLarge(StarletteHTTPException):
    """Raised from ``receive``: an HTTPException so FastAPI's body parsing passes it on as it is (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the limit of {limit:,} bytes")


class BodyLimit:
    """413 for a request body over the limit: uploads get KOE_MAX_UPLOAD_BYTES, everything else
    KOE_MAX_REQUEST_BYTES. Checked on Content-Length and again while the body streams in."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    def _limit(self, scope: Scope) -> int:
        if scope["path"].rstrip("/") in ("/v1/surveys", *UPLOAD_PATHS) and scope["method"] == "POST":
            return self.settings.max_upload_bytes + 1024 * 1024  # multipart framing
        return self.settings.max_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._reject(send, limit)
                return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(send, limit)

    @staticmethod
    async def _reject(send: Send, limit: int) -> None:
        import json

        body = json.dumps(
            {
                "type": "about:blank",
                "title": "Content Too Large",
                "status": 413,
                "detail": f"the request body is larger than the limit of {limit:,} bytes",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class RejectNul:
    """422 for a NUL character in the path or the query string. No id, filter or name contains one, and
    PostgreSQL text cannot hold one: passed on, it fails the query (a 500) instead of answering 404 or 422."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"")
            where = "path" if "\x00" in scope["path"] else None
            if b"%00" in query or b"\x00" in query:
                where = where or "query"
            if where:
                message = "contains a NUL character (%00)"
                errors = [{"field": where, "message": message, "type": "value_error"}]
                await problem(422, f"{where}: {message}", errors=errors)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class AccessLog:
    """One structured log line and the Prometheus counters per request; never the body."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        request_id = uuid.uuid4().hex[:16]

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(scope["method"], route).observe(elapsed)
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "ms": round(elapsed * 1000, 1),
                },
            )


STATIC_DIR = Path(__file__).parent / "static"


def _offline_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from files shipped in the package (swagger-ui-dist), so it works offline."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles
    from starlette.responses import HTMLResponse

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="koe API",
            swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/swagger-ui/favicon-32x32.png",
        )


def create_app(
    settings: Settings | None = None, *, runtime: Runtime | None = None, preload_models: bool = True
) -> FastAPI:
    settings = settings or (runtime.settings if runtime else get_settings())
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime or Runtime(settings)
        runner = JobRunner(rt)
        app.state.runtime = rt
        app.state.runner = runner
        runner.start()
        rt.warn_seed_drift()
        if preload_models:  # /readyz turns ready once this is done; requests before it load on demand
            threading.Thread(target=rt.bundle, name="koe-preload", daemon=True).start()
        try:
            yield
        finally:
            runner.stop()
            if runtime is None:
                rt.close()

    app = FastAPI(
        docs_url=None,  # served below from the package: the default pulls Swagger UI from a CDN
        redoc_url=None,
        title="koe",
        version="0.1.0",
        summary="Japanese customer-voice analysis: NPS, sentiment, themes and drivers",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    install_handlers(app)
    _offline_docs(app)
    for module in (classify, surveys, jobs, taxonomy, reports, health):
        app.include_router(module.router)
    app.include_router(insights_routes.router)  # discovery, summaries, labelling (issue 7)
    mount_dashboard(app)  # the CX dashboard under /app (service/web)
    app.add_middleware(BodyLimit, settings=settings)
    app.add_middleware(RejectNul)
    app.add_middleware(AccessLog, metrics=metrics)
    return app
