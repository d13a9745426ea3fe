"""Property-based run over the OpenAPI schema (schemathesis) against the real app, with a short budget.

The schema is loaded from the app itself (``/openapi.json``), so the test checks that what the API
answers is what it documents. Two passes, each one operation per subtest:

* every operation with generated (mostly unknown) ids: 404s, validation and auth answers, uploads of
  generated multipart bodies, taxonomy edits, classify;
* the read operations of one analysed survey (a small export, analysed by the real job runner), so the
  filters, segments and exports are fuzzed against real rows instead of answering 404.

Checks (on every response): no 5xx; the status code, content type, headers and body are the documented
ones (errors included: ``application/problem+json`` with the ``Problem`` schema); a request that violates
the schema is rejected (4xx); a request without its key is refused (401); a method the path does not
declare answers 405.

Not checked: ``positive_data_acceptance`` (a schema-valid request must succeed). The API rejects valid
requests on purpose for what a schema cannot express: an unknown taxonomy version or theme id, a segment
without ``COLUMN:``, a file that is not a survey export (all 422). ``max_response_time`` would make CI
flaky on a shared machine; ``use_after_free``/``ensure_resource_availability`` need the stateful phase
(OpenAPI links), which this API does not declare.

Budget: MAX_EXAMPLES per operation in the fuzzing phase, plus the examples and coverage phases (a
deterministic set of boundary and invalid values per parameter). A fixed seed and derandomized Hypothesis
(no example database) make CI runs the same every time; the config is built here, so a local
schemathesis.toml cannot change the run.

After the fuzzing: regressions for bugs it led to that a generated request does not reliably reach
(codecs that read no text, NUL characters on PostgreSQL).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.config import HealthCheck
from schemathesis.python.asgi import get_client, shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from service.errors import PROBLEM_JSON
from service.main import create_app
from service.runtime import Runtime
from service.storage.keys import create_key
from tests.service.conftest import SURVEY_CP932, make_settings

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 15
SEED = 20240601
SURVEY_ROWS = 40  # rows of the example export analysed for the second pass (a few seconds)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    ignored_auth,
    unsupported_method,
]


def _schema(app: Any, key: str) -> Any:
    # generating a case may be slow on a busy CI machine: that is no failure of the API
    config = schemathesis.Config(seed=SEED, suppress_health_check=[HealthCheck.too_slow])
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    schema.config.update(headers={"Authorization": f"Bearer {key}"})
    schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True, database="none")
    schema.config.phases.update(phases=["examples", "coverage", "fuzzing"])
    return schema


@pytest.fixture
def app_and_key(runtime: Runtime) -> Iterator[tuple[Any, str]]:
    """The app on a temporary SQLite runtime, an admin key, the models loaded (so /readyz is ready)."""
    _, key = create_key(runtime.db, "fuzz", "admin")
    runtime.bundle()
    app = create_app(runtime=runtime, preload_models=False)
    try:
        yield app, key
    finally:
        shutdown_lifespans()  # schemathesis keeps an app's lifespan (its job runner) running until then


@pytest.fixture
def api_schema(app_and_key: tuple[Any, str]) -> Any:
    return _schema(*app_and_key)


def _small_export() -> bytes:
    """The header and the first SURVEY_ROWS rows of the example CP932 export, still CP932."""
    rows = list(csv.reader(io.StringIO(SURVEY_CP932.read_bytes().decode("cp932"))))
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows[: SURVEY_ROWS + 1])
    return out.getvalue().encode("cp932")


@pytest.fixture
def analysed_schema(app_and_key: tuple[Any, str]) -> Any:
    """The read operations of one analysed survey (and its job), with their ids fixed to it."""
    app, key = app_and_key
    auth = {"Authorization": f"Bearer {key}"}
    with get_client(app) as client:  # the same lifespan (and job runner) the fuzzed requests use
        files = {"file": ("survey.csv", _small_export(), "text/csv")}
        r = client.post("/v1/surveys", files=files, headers=auth)
        assert r.status_code == 202, r.text
        survey_id, job_id = r.json()["survey"]["id"], r.json()["job"]["id"]
        deadline = time.monotonic() + 120
        while (job := client.get(f"/v1/jobs/{job_id}", headers=auth).json())["state"] not in (
            "succeeded",
            "failed",
        ):
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        assert job["state"] == "succeeded", job
    schema = _schema(app, key)
    schema.config.update(parameters={"path.survey_id": survey_id, "path.job_id": job_id})
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")
# reading only: DELETE and reclassify would change the survey under the other operations
analysed = schemathesis.pytest.from_fixture("analysed_schema").include(
    method="GET", path_regex=r"^/v1/(surveys/\{survey_id\}|jobs/\{job_id\})"
)


@schema.parametrize()
def test_every_operation_answers_as_documented(case: Any) -> None:
    case.call_and_validate(checks=CHECKS)


@analysed.parametrize()
def test_analysed_survey_reads_answer_as_documented(case: Any) -> None:
    case.call_and_validate(checks=CHECKS)


# -- regressions the fuzzing led to, beyond what a generated request reaches ---------------------------------------


@pytest.mark.parametrize(
    "encoding", ["base64", "rot13", "idna", "undefined", "utf-16", "punycode", "utf\x008"]
)
def test_an_encoding_that_reads_no_text_is_a_422(
    client: Any, keys: dict[str, dict[str, str]], encoding: str
) -> None:
    """Codecs Python has but that decode no text (or not these bytes) name the field instead of a 500."""
    files = {"file": ("survey.csv", _small_export(), "text/csv")}
    r = client.post("/v1/surveys", files=files, data={"encoding": encoding}, headers=keys["upload"])
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM_JSON, r.text
    assert r.json()["column"] == "encoding"


def test_a_nul_character_is_a_422_before_postgresql_sees_it(pg_url: str, tmp_path: Path) -> None:
    """PostgreSQL text cannot hold NUL: ids, filters and notes with one answer 422, not a 500."""
    from fastapi.testclient import TestClient

    runtime = Runtime(make_settings(tmp_path, pg_url))
    try:
        auth = {"Authorization": f"Bearer {create_key(runtime.db, 'nul', 'admin')[1]}"}
        with TestClient(create_app(runtime=runtime, preload_models=False)) as client:
            for url in ("/v1/surveys/a%00b", "/v1/jobs/a%00b", "/v1/surveys?limit=1&x=%00"):
                r = client.get(url, headers=auth)
                assert r.status_code == 422 and r.headers["content-type"] == PROBLEM_JSON, (url, r.text)
            assert client.delete("/v1/surveys/a%00b", headers=auth).status_code == 422
            theme = {"id": "nul_note", "name": "x", "examples": ["x"], "note": "a\x00b"}
            r = client.post("/v1/taxonomy/themes", json=theme, headers=auth)
            assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.note", r.text
    finally:
        runtime.close()
