"""HTTP errors as ``application/problem+json`` (RFC 9457), rendered in one place.

APIError                 an HTTP answer with a problem body (status, title, detail, extra fields)
KoeError (pipelines)     -> 422 (413 for FileTooLargeError, 503 for ModelError), with file/row/column
RequestValidationError   -> 422, one entry per invalid field, naming where it is (body.texts[3])
HTTPException            -> its status (404 for unknown routes, 405 …)
anything else            -> 500 without internals (logged with its traceback)

The OpenAPI schema says so: ``problem_responses`` documents error statuses of a route as
``application/problem+json`` with the ``Problem`` schema, and FastAPI's own 422 entries are rewritten to it.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipelines.errors import FileTooLargeError, KoeError, ModelError
from service.schemas import Problem

__all__ = ["AUTH_PROBLEMS", "PROBLEM_JSON", "APIError", "install_handlers", "problem", "problem_responses"]

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("koe.api")

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class APIError(Exception):
    def __init__(
        self, status: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers
        self.extra = extra


def problem(status: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": _TITLES.get(status, "Error"), "status": status, "detail": detail}
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def problem_responses(described: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for a route: each status (with its description) answers a ``Problem``."""
    return {
        status: {"description": text, "content": {PROBLEM_JSON: {"schema": _PROBLEM_REF}}}
        for status, text in described.items()
    }


AUTH_PROBLEMS = problem_responses(
    {401: "no API key, or an unknown or revoked one", 403: "the API key is not allowed this operation"}
)


def _document_problems(spec: dict[str, Any]) -> dict[str, Any]:
    """Add the ``Problem`` schema; FastAPI's default 422 (``HTTPValidationError``) becomes a ``Problem``."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem_schema.pop("$defs", {}))
    schemas["Problem"] = problem_schema
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            invalid = operation.get("responses", {}).get("422")
            if invalid and "application/json" in invalid.get("content", {}):
                invalid["content"] = {PROBLEM_JSON: {"schema": _PROBLEM_REF}}
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return spec


def _koe_status(err: KoeError) -> int:
    if isinstance(err, FileTooLargeError):
        return 413
    if isinstance(err, ModelError):
        return 503
    return 422


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def install_handlers(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document_problems(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return problem(exc.status, exc.detail, headers=exc.headers, **exc.extra)

    @app.exception_handler(KoeError)
    async def _koe_error(_: Request, exc: KoeError) -> JSONResponse:
        return problem(
            _koe_status(exc), str(exc), file=exc.file, row=exc.row, column=exc.column, value=exc.value
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _loc(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem(422, detail or "invalid request", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
            # FastAPI answers broken JSON with 422 but a JSON body that is not UTF-8 (or is nested too
            # deep to parse) with a bare 400 "error parsing the body": one answer for both, naming why
            reasons = {UnicodeDecodeError: "not UTF-8", RecursionError: "nested too deep"}
            why = reasons.get(type(exc.__cause__), str(exc.__cause__))
            message = f"the request body cannot be read as JSON ({why})"
            return problem(
                422,
                f"body: {message}",
                errors=[{"field": "body", "message": message, "type": "json_invalid"}],
            )
        return problem(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return problem(500, "internal error; the server log has the details")
