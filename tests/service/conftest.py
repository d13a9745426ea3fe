"""Fixtures for the service tests: real databases (SQLite file and PostgreSQL), runtimes, keys, clients.

PostgreSQL is the real server at 127.0.0.1:5432 (database ``test``, trust auth; override with
``KOE_TEST_POSTGRES_URL``). Each test gets a schema of its own, dropped afterwards, so tests never
wipe or share data. An unreachable server fails the tests that need it: it is not skipped.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from service.config import Settings
from service.runtime import Runtime
from service.storage.keys import create_key

PASSWORD = "correct horse battery"  # every dashboard user the ``web`` fixture creates
PG_BASE = os.environ.get("KOE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ROOT = Path(__file__).parents[2]
SURVEY_CP932 = ROOT / "examples" / "survey_cp932.csv"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema (dropped at the end of the test)."""
    schema = f"koe_t_{os.getpid()}_{secrets.token_hex(4)}"
    engine = create_engine(PG_BASE)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'koe.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


def make_settings(tmp_path: Path, database_url: str | None = None, **overrides: Any) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        job_chunk_rows=overrides.pop("job_chunk_rows", 64),
        bootstrap_samples=overrides.pop("bootstrap_samples", 200),
        **overrides,
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """SQLite settings (the default database): API tests that are not about storage use these."""
    return make_settings(tmp_path)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime(settings)
    yield rt
    rt.close()


@pytest.fixture
def keys(runtime: Runtime) -> dict[str, dict[str, str]]:
    """Authorization headers by scope: classify, upload, admin."""
    return {
        scope: {"Authorization": f"Bearer {create_key(runtime.db, scope, scope)[1]}"}
        for scope in ("classify", "upload", "admin")
    }


@pytest.fixture
def client(runtime: Runtime) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from service.main import create_app

    with TestClient(create_app(runtime=runtime)) as c:
        yield c


@pytest.fixture
def web(runtime: Runtime) -> Iterator[Any]:
    """The dashboard over TestClient, with one user per role: ``<role>@example.com`` / ``PASSWORD``."""
    from fastapi.testclient import TestClient

    from service.main import create_app
    from service.web.users import create_user

    for role in ("admin", "analyst", "viewer"):
        create_user(runtime.db, f"{role}@example.com", PASSWORD, role, name=f"{role}さん")
    with TestClient(create_app(runtime=runtime, preload_models=False), base_url="http://testserver") as c:
        yield c


def csrf_token(client: Any, path: str) -> str:
    """The CSRF token of the form on the page at ``path``."""
    html = client.get(path).text
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert found, html[:500]
    return found.group(1)


def sign_in(client: Any, role: str) -> None:
    """Sign the ``web`` client in as the user of ``role``; the session cookie must be HttpOnly and SameSite."""
    token = csrf_token(client, "/app/login")
    r = client.post(
        "/app/login",
        data={"email": f"{role}@example.com", "password": PASSWORD, "csrf_token": token, "next": "/app"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    cookie = r.headers.get_list("set-cookie")
    session = next(c for c in cookie if c.startswith("koe_session="))
    assert "HttpOnly" in session and "SameSite=lax" in session and "Max-Age=" in session


def stored_survey(runtime: Runtime, path: Path = SURVEY_CP932) -> tuple[str, str]:
    """What ``POST /v1/surveys`` stores (the raw file, the survey, its queued job), minus dedupe and submit."""
    from service.uploads import DEFAULT_OPTIONS, accept_upload, store_upload

    s = runtime.settings
    with path.open("rb") as fh:
        stored = store_upload(fh, path.name, s.uploads_dir, s.max_upload_bytes)
    survey, job = accept_upload(runtime, stored, dict(DEFAULT_OPTIONS))
    return survey.id, job.id


def wait_for(check: Callable[[], Any], timeout: float = 300.0, every: float = 0.2) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s")
