"""The CX dashboard (issue 6): server-rendered Japanese pages under /app, static files under /app/static."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["UPLOAD_PATHS", "mount_dashboard"]

STATIC_DIR = Path(__file__).parent / "static"
UPLOAD_PATHS = ("/app/upload", "/app/upload/preview")  # get KOE_MAX_UPLOAD_BYTES, like POST /v1/surveys


def mount_dashboard(app: FastAPI) -> None:
    from service.web import account_pages, admin_pages, insight_pages, pages, survey_pages, upload_pages
    from service.web.deps import install_page_errors

    app.mount("/app/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")
    for module in (pages, upload_pages, survey_pages, insight_pages, admin_pages, account_pages):
        app.include_router(module.router)
    install_page_errors(app)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/app", status_code=307)
