"""The HTTP API with the real app, real models and a real SQLite database (PostgreSQL: test_storage)."""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from service.config import Settings
from tests.service.conftest import SURVEY_CP932, wait_for
from tests.service.test_cli import _hand_nps

pytestmark = pytest.mark.slow
PROBLEM = "application/problem+json"


def _upload(client: Any, headers: dict[str, str], path: Path, **form: str) -> Any:
    with path.open("rb") as fh:
        return client.post(
            "/v1/surveys", files={"file": (path.name, fh, "text/csv")}, data=form, headers=headers
        )


def _finish(client: Any, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        return job if job["state"] in ("succeeded", "failed") else None

    result: dict[str, Any] = wait_for(done)
    return result


def test_keys_and_scopes(client: Any, keys: dict[str, dict[str, str]]) -> None:
    body = {"texts": ["ありがとう"]}
    r = client.post("/v1/classify", json=body)
    assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
    assert r.headers["www-authenticate"] == "Bearer"
    assert (
        client.post("/v1/classify", json=body, headers={"Authorization": "Bearer koe_x_y"}).status_code == 401
    )
    assert client.post("/v1/classify", json=body, headers=keys["upload"]).status_code == 403
    assert client.post("/v1/classify", json=body, headers=keys["admin"]).status_code == 200
    r = client.get("/v1/surveys", headers=keys["classify"])
    assert r.status_code == 403 and "upload" in r.json()["detail"]
    r = client.post(
        "/v1/taxonomy/merge", json={"source": "empathy", "into": "gratitude"}, headers=keys["upload"]
    )
    assert r.status_code == 403


def test_classify_shape_and_limits(client: Any, keys: dict[str, dict[str, str]], settings: Settings) -> None:
    h = keys["classify"]
    texts = ["対応が遅い。でもスタッフは親切でした", "特になし", "解約を考えています"]
    r = client.post("/v1/classify", json={"texts": texts}, headers=h)
    assert r.status_code == 200
    out = r.json()
    assert [x["id"] for x in out["results"]] == [0, 1, 2] and [x["text"] for x in out["results"]] == texts
    first = out["results"][0]
    assert {s["sentiment"] for s in first["sentences"]} == {"negative", "positive"}
    assert abs(sum(first["sentiment"]["scores"].values()) - 1) < 1e-3
    assert out["model"]["encoder"] and out["model"]["taxonomy"]["version"] >= 1
    assert "churn_intent" in [t["id"] for t in out["results"][2]["themes"]]

    too_many = client.post(
        "/v1/classify", json={"texts": ["a"] * (settings.max_texts_per_call + 1)}, headers=h
    )
    assert too_many.status_code == 422 and too_many.json()["field"] == "texts"
    long = "遅い" * settings.max_text_chars
    r = client.post("/v1/classify", json={"texts": ["ok", long]}, headers=h)
    assert r.status_code == 422 and r.json()["field"] == "texts[1]" and "texts[1]" in r.json()["detail"]
    big = client.post(
        "/v1/classify",
        content=json.dumps({"texts": ["あ" * 1000] * 500}),
        headers={**h, "content-type": "application/json"},
    )
    assert big.status_code == 413 and big.headers["content-type"] == PROBLEM
    broken = client.post(
        "/v1/classify", content=b'{"texts": ["a",', headers={**h, "content-type": "application/json"}
    )
    assert broken.status_code == 422 and broken.headers["content-type"] == PROBLEM
    wrong = client.post("/v1/classify", json={"texts": "not a list"}, headers=h)
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "body.texts"


def test_upload_dry_run_job_results_and_exports(
    client: Any, keys: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    h = keys["upload"]
    dry = _upload(client, h, SURVEY_CP932, dry_run="true")
    assert dry.status_code == 200
    found = dry.json()
    assert found["encoding"] == "cp932" and found["mapping"]["texts"] == ["理由", "改善してほしい点"]
    assert len(found["preview"]) == 5 and found["problems"]["rows"] == 320
    assert client.get("/v1/surveys", headers=h).json()["total"] == 0  # a dry run stores nothing

    r = _upload(client, h, SURVEY_CP932)
    assert r.status_code == 202 and r.headers["location"].startswith("/v1/jobs/")
    survey_id, job_id = r.json()["survey"]["id"], r.json()["job"]["id"]
    job = _finish(client, h, job_id)
    assert job["state"] == "succeeded", job
    assert job["rows_done"] == job["rows_total"] == 320 and job["progress"] == 1.0 and job["row_issues"] == 3

    n, promoters, detractors, nps = _hand_nps(SURVEY_CP932)
    summary = client.get(f"/v1/surveys/{survey_id}/summary", headers=h).json()
    assert summary["nps"]["n"] == n and summary["nps"]["score"] == pytest.approx(nps, abs=0.05)
    assert summary["nps"]["promoters"] == promoters and summary["nps"]["detractors"] == detractors
    lo, hi = summary["nps"]["ci95"]
    assert lo < nps < hi and "artifacts" not in summary["model"]

    again = _upload(client, h, SURVEY_CP932)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["survey"]["id"] == survey_id
    other = _upload(client, h, SURVEY_CP932, kind="support")  # same bytes, other options: a new survey
    assert other.status_code == 202 and other.json()["survey"]["id"] != survey_id

    themes = client.get(f"/v1/surveys/{survey_id}/themes", headers=h).json()["themes"]
    price = next(t for t in themes if t["id"] == "price")
    page = client.get(
        f"/v1/surveys/{survey_id}/rows", params={"theme": "price", "limit": 10}, headers=h
    ).json()
    assert page["total"] == price["mentions"] and len(page["items"]) == min(10, price["mentions"])
    assert all(
        any("price" in [t["id"] for t in a["themes"]] for a in item["answers"].values())
        for item in page["items"]
    )
    detractors_page = client.get(
        f"/v1/surveys/{survey_id}/rows", params={"group": "detractors", "score_min": 0, "limit": 1}, headers=h
    ).json()
    assert detractors_page["total"] == detractors
    issues = client.get(f"/v1/surveys/{survey_id}/rows", params={"has_issues": "true"}, headers=h).json()
    assert issues["total"] >= 1 and all(item["issues"] for item in issues["items"])

    seg = client.get(
        f"/v1/surveys/{survey_id}/drivers", params={"segment": "プラン:ライト"}, headers=h
    ).json()
    plan_nps = next(v for v in summary["segments"]["プラン"] if v["value"] == "ライト")["nps"]
    assert seg["nps"] == plan_nps and seg["segment"] == {"column": "プラン", "value": "ライト"}
    bad = client.get(f"/v1/surveys/{survey_id}/drivers", params={"segment": "色:赤"}, headers=h)
    assert bad.status_code == 422 and "プラン" in bad.json()["detail"]
    quotes = client.get(f"/v1/surveys/{survey_id}/quotes", params={"theme": "price"}, headers=h).json()
    assert list(quotes["quotes"]) == ["price"]

    exported = client.get(f"/v1/surveys/{survey_id}/export.csv", params={"theme": "price"}, headers=h)
    assert exported.status_code == 200 and exported.content.startswith("\ufeff".encode())
    table = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert len(table) == 1 + price["mentions"] and table[0][0] == "回答ID"
    xlsx = client.get(f"/v1/surveys/{survey_id}/export.xlsx", headers=h)
    sheet = load_workbook(io.BytesIO(xlsx.content), read_only=True).active
    assert sheet is not None and sum(1 for _ in sheet.iter_rows()) == 321

    assert client.delete(f"/v1/surveys/{survey_id}", headers=h).status_code == 204
    assert client.get(f"/v1/surveys/{survey_id}/summary", headers=h).status_code == 404
    assert client.get(f"/v1/jobs/{job_id}", headers=h).status_code == 404
    assert client.delete(f"/v1/surveys/{survey_id}", headers=h).status_code == 404


def test_formula_cells_are_neutralised_in_exports(
    client: Any, keys: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    h = keys["upload"]
    path = tmp_path / "inject.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(
            [
                ["ID", "推奨度", "理由"],
                ["1", "9", '=HYPERLINK("http://evil","x")'],
                ["2", "3", "+81 3 1234"],
                ["3", "7", "@SUM(A1)"],
                ["4", "10", "-1 とても良い"],
            ]
        )
    job = _finish(client, h, _upload(client, h, path).json()["job"]["id"])
    assert job["state"] == "succeeded"
    survey_id = job["survey_id"]
    rows = list(
        csv.reader(
            io.StringIO(client.get(f"/v1/surveys/{survey_id}/export.csv", headers=h).text.lstrip("\ufeff"))
        )
    )
    answers = [r[2] for r in rows[1:]]
    assert answers == ['\'=HYPERLINK("http://evil","x")', "'+81 3 1234", "'@SUM(A1)", "'-1 とても良い"]
    sheet = load_workbook(
        io.BytesIO(client.get(f"/v1/surveys/{survey_id}/export.xlsx", headers=h).content)
    ).active
    assert sheet is not None
    cells = [sheet.cell(row=i, column=3) for i in range(2, 6)]
    assert [c.data_type for c in cells] == ["s"] * 4 and cells[0].value.startswith("'=")


def test_bad_uploads_answer_problems_that_name_the_place(
    client: Any, keys: dict[str, dict[str, str]], tmp_path: Path, runtime: Any
) -> None:
    h = keys["upload"]
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    r = _upload(client, h, empty)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM and r.json()["file"] == "empty.csv"
    r = _upload(client, h, SURVEY_CP932, mapping='{"score": "推奨度"')
    assert r.status_code == 422 and r.json()["column"] == "mapping" and "JSON" in r.json()["detail"]
    r = _upload(client, h, SURVEY_CP932, mapping='{"score": "存在しない列"}')
    assert r.status_code == 422 and "存在しない列" in r.json()["detail"]
    no_score = tmp_path / "no_score.csv"
    no_score.write_text("ID,コメント\n1,遅い\n", encoding="utf-8")
    r = _upload(client, h, no_score)
    assert r.status_code == 422 and r.json()["file"] == "no_score.csv"
    assert list(runtime.settings.uploads_dir.iterdir()) == []  # rejected uploads are not kept
    score_11 = tmp_path / "score11.csv"
    score_11.write_text("ID,推奨度,理由\n1,11,高い\n2,8,普通\n", encoding="utf-8")
    job = _finish(client, h, _upload(client, h, score_11).json()["job"]["id"])
    assert job["state"] == "succeeded" and job["rows_total"] == 2 and job["row_issues"] == 1
    rows = client.get(f"/v1/surveys/{job['survey_id']}/rows", params={"has_issues": "true"}, headers=h).json()
    issue = rows["items"][0]["issues"][0]
    assert issue["row"] == 2 and issue["column"] == "推奨度" and issue["value"] == "11"


def test_upload_size_limit(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from service.main import create_app
    from service.runtime import Runtime
    from service.storage.keys import create_key
    from tests.service.conftest import make_settings

    rt = Runtime(make_settings(tmp_path, max_upload_bytes=10_000))
    h = {"Authorization": f"Bearer {create_key(rt.db, 'u', 'upload')[1]}"}
    with TestClient(create_app(runtime=rt, preload_models=False)) as client:
        r = _upload(client, h, SURVEY_CP932)
    assert r.status_code == 413 and r.headers["content-type"] == PROBLEM
    assert not any(rt.settings.uploads_dir.iterdir())
    rt.close()


def test_taxonomy_versions_and_reclassify(client: Any, keys: dict[str, dict[str, str]]) -> None:
    a, u = keys["admin"], keys["upload"]
    base = client.get("/v1/taxonomy", headers=keys["classify"]).json()
    assert len(base["themes"]) == 14 and base["version"] >= 1
    new = {
        "id": "parking",
        "name": "駐車場",
        "examples": ["駐車場が狭くて停めにくい", "駐車場が満車で入れなかった", "駐車料金が高い"],
        "base_version": base["version"],
    }
    r = client.post("/v1/taxonomy/themes", json=new, headers=a)
    assert r.status_code == 201 and r.json()["version"] == base["version"] + 1
    stale = client.patch(
        "/v1/taxonomy/themes/price", json={"name": "料金", "base_version": base["version"]}, headers=a
    )
    assert stale.status_code == 409 and stale.json()["current_version"] == base["version"] + 1
    renamed = client.patch("/v1/taxonomy/themes/price", json={"name": "料金"}, headers=a).json()
    assert next(t for t in renamed["themes"] if t["id"] == "price")["name"] == "料金"
    merged = client.post(
        "/v1/taxonomy/merge", json={"source": "empathy", "into": "gratitude"}, headers=a
    ).json()
    assert "empathy" not in [t["id"] for t in merged["themes"]]
    assert "empathy" in next(t for t in merged["themes"] if t["id"] == "gratitude")["aliases"]
    unknown = client.post("/v1/taxonomy/merge", json={"source": "nope", "into": "gratitude"}, headers=a)
    assert unknown.status_code == 422 and unknown.json()["value"] == "nope"
    assert client.get("/v1/taxonomy/versions/999", headers=a).status_code == 404
    versions = client.get("/v1/taxonomy/versions", headers=a).json()["versions"]
    assert [v["version"] for v in versions] == list(range(base["version"], merged["version"] + 1))
    # timestamps as every other answer writes them, on SQLite (naive) and PostgreSQL (aware) alike
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", v["created_at"]) for v in versions)

    out = client.post("/v1/classify", json={"texts": ["駐車場が狭すぎて車を停められない"]}, headers=a).json()
    assert "parking" in [t["id"] for t in out["results"][0]["themes"]]
    assert out["model"]["taxonomy"]["version"] == merged["version"]
    old = client.post(
        "/v1/classify", json={"texts": ["駐車場が狭い"], "taxonomy_version": base["version"]}, headers=a
    )
    assert "parking" not in [t["id"] for t in old.json()["results"][0]["themes"]]

    job = _finish(client, u, _upload(client, u, SURVEY_CP932).json()["job"]["id"])
    assert job["taxonomy_version"] == merged["version"]
    r = client.post(
        f"/v1/surveys/{job['survey_id']}/reclassify", json={"taxonomy_version": base["version"]}, headers=u
    )
    assert r.status_code == 202
    re_job = _finish(client, u, r.json()["id"])
    assert re_job["kind"] == "reclassify" and re_job["state"] == "succeeded" and re_job["rows_done"] == 320
    summary = client.get(f"/v1/surveys/{job['survey_id']}/summary", headers=u).json()
    assert summary["model"]["taxonomy"]["version"] == base["version"]
    assert "empathy" in [t["id"] for t in summary["themes"]]


def test_health_metrics_and_logs_without_text(
    client: Any, keys: dict[str, dict[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    wait_for(lambda: client.get("/readyz").status_code == 200, timeout=120)
    assert client.get("/readyz").json()["checks"] == {"database": True, "models": True}
    secret = "山田様の注文番号12345について苦情"
    with caplog.at_level(logging.INFO, logger="koe"):
        client.post("/v1/classify", json={"texts": [secret]}, headers=keys["classify"])
    assert any(getattr(r, "route", None) == "/v1/classify" for r in caplog.records)
    assert all("山田" not in r.getMessage() and "山田" not in str(r.__dict__) for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="koe"):  # switched on deliberately: now the text is there
        client.post("/v1/classify", json={"texts": [secret]}, headers=keys["classify"])
    assert any("山田" in str(r.__dict__) for r in caplog.records)
    metrics = client.get("/metrics").text
    assert 'koe_http_requests_total{method="POST",route="/v1/classify",status="200"}' in metrics
    assert "koe_classified_texts_total 2.0" in metrics
    assert client.get("/docs").status_code == 200 and client.get("/openapi.json").status_code == 200
    unknown = client.get("/v1/nothing-here")
    assert unknown.status_code == 404 and unknown.headers["content-type"] == PROBLEM


def test_row_limit_fails_the_job_with_413(tmp_path: Path) -> None:
    from service.jobs import work
    from service.runtime import Runtime
    from tests.service.conftest import make_settings, stored_survey

    rt = Runtime(make_settings(tmp_path, max_upload_rows=100))
    _, job_id = stored_survey(rt)
    work.run_all(rt.job_context(), job_id, rt.settings.max_upload_bytes)
    failed = rt.repo.get_job(job_id)
    assert failed is not None and failed.state == "failed" and failed.error is not None
    assert failed.error["status"] == 413 and "100" in failed.error["message"] and failed.error["row"] == 102
    assert failed.finished_at is not None
    rt.close()

    # the limit raised, the same file again: not answered as a duplicate of the failure, analysed again
    from fastapi.testclient import TestClient

    from service.main import create_app
    from service.storage.keys import create_key

    rt = Runtime(make_settings(tmp_path))
    h = {"Authorization": f"Bearer {create_key(rt.db, 'u', 'upload')[1]}"}
    with TestClient(create_app(runtime=rt)) as client:
        again = _upload(client, h, SURVEY_CP932)
        assert again.status_code == 202 and again.json()["duplicate"] is True
        done = _finish(client, h, again.json()["job"]["id"])
    assert done["state"] == "succeeded" and done["rows_done"] == 320 and done["survey_id"] == failed.survey_id
    rt.close()


def test_unfinished_jobs_resume_when_the_service_starts(tmp_path: Path) -> None:
    """A job accepted by a process that stopped before running it is run by the next process."""
    from fastapi.testclient import TestClient

    from service.main import create_app
    from service.runtime import Runtime
    from service.storage.keys import create_key
    from tests.service.conftest import make_settings, stored_survey

    settings = make_settings(tmp_path)
    first = Runtime(settings)
    _, job_id = stored_survey(first)
    ctx = first.job_context()
    from service.jobs import work

    assert work.plan(ctx, job_id, settings.max_upload_bytes)
    assert work.process_chunk(ctx, job_id, 0)  # the first chunk is done, then the process "stops"
    first.close()

    second = Runtime(settings)
    h = {"Authorization": f"Bearer {create_key(second.db, 'u', 'upload')[1]}"}
    with TestClient(create_app(runtime=second)) as client:
        done = _finish(client, h, job_id)
    assert done["state"] == "succeeded" and done["rows_done"] == 320 and done["chunks_done"] == 5
    second.close()


def test_a_job_left_planning_by_a_dead_process_is_taken_over_after_the_lease(tmp_path: Path) -> None:
    """A process died while planning (the job says planning, its heartbeat is recent): the next process does
    not plan it at once (the planner might be another live instance) but looks again after the lease."""
    from fastapi.testclient import TestClient

    from service.main import create_app
    from service.runtime import Runtime
    from service.storage.keys import create_key
    from tests.service.conftest import make_settings, stored_survey

    settings = make_settings(tmp_path, job_plan_lease=1)
    first = Runtime(settings)
    _, job_id = stored_survey(first)
    assert first.repo.start_planning(job_id, settings.job_plan_lease)  # ... and the process "dies"
    first.close()

    second = Runtime(settings)
    h = {"Authorization": f"Bearer {create_key(second.db, 'u', 'upload')[1]}"}
    with TestClient(create_app(runtime=second)) as client:
        assert client.get(f"/v1/jobs/{job_id}", headers=h).json()["state"] == "planning"
        done = _finish(client, h, job_id)
    assert done["state"] == "succeeded" and done["rows_done"] == 320
    second.close()
