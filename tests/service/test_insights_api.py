"""Discovery, adoption, summaries and labelling through the HTTP API, with the real models and SQLite.

Without an LLM (names from keywords, extractive summaries) and with a scripted OpenAI-compatible server on
loopback that answers each task the way a good model would, so the LLM path runs end to end.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.main import create_app
from service.runtime import Runtime
from service.storage.keys import create_key
from service.storage.tables import SurveyInsight, ThemeLabel
from tests.service.conftest import SURVEY_CP932, make_settings, wait_for
from tests.service.llm_server import Step, answer, scripted_server

pytestmark = pytest.mark.slow
PROBLEM = "application/problem+json"


def _analysed(client: Any, headers: dict[str, str]) -> str:
    with SURVEY_CP932.open("rb") as fh:
        r = client.post("/v1/surveys", files={"file": (SURVEY_CP932.name, fh, "text/csv")}, headers=headers)
    assert r.status_code == 202, r.text
    job_id = r.json()["job"]["id"]
    job = wait_for(
        lambda: (
            (j := client.get(f"/v1/jobs/{job_id}", headers=headers).json())["state"]
            in ("succeeded", "failed")
            and j
        )
    )
    assert job["state"] == "succeeded", job
    return str(r.json()["survey"]["id"])


def _count(runtime: Runtime, table: Any) -> int:
    with runtime.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def test_discover_adopt_summarise_label_retrain_without_llm(
    client: Any, keys: dict[str, dict[str, str]], runtime: Runtime
) -> None:
    up, admin = keys["upload"], keys["admin"]
    sid = _analysed(client, up)

    # the analysis itself found the emerging themes and wrote the summaries (extractive without an LLM)
    summary = client.get(f"/v1/surveys/{sid}/summary", headers=up).json()
    assert summary["discovery"]["clusters"] and summary["discovery"]["llm"] is None
    assert summary["summaries"]["items"] and summary["summaries"]["llm"] is None
    assert {i["group"] for i in summary["summaries"]["items"]} == {
        "all",
        "detractors",
        "passives",
        "promoters",
    }

    r = client.get(f"/v1/surveys/{sid}/discovery", headers=up)
    assert r.status_code == 200, r.text
    found = r.json()
    assert found["survey_id"] == sid and found["taxonomy_version"] == 1 and found["llm"] is None
    assert found["clusters"] == summary["discovery"]["clusters"]  # the analysis's, not computed again
    assert found["method"]["candidates"] > 0 and found["clusters"]
    for c in found["clusters"]:
        assert re.fullmatch(r"c\d+", c["id"]) and c["keywords"] and c["named_by"] == "keywords"
        assert c["size"]["sentences"] >= found["method"]["min_size"] and 1 <= len(c["representatives"]) <= 3
        assert re.fullmatch(r"[a-z][a-z0-9_]{1,47}", c["suggested_id"])
        assert c["trend"] is not None  # the example survey has dates
    sizes = [c["size"]["sentences"] for c in found["clusters"]]
    assert sizes == sorted(sizes, reverse=True)
    assert client.get(f"/v1/surveys/{sid}/discovery", headers=up).json() == found  # kept, not recomputed
    assert client.get(f"/v1/surveys/{sid}/discovery", headers=keys["classify"]).status_code == 403

    # adopt the largest cluster: a new taxonomy version with a custom theme
    c1 = found["clusters"][0]
    assert client.post(f"/v1/surveys/{sid}/discovery/c1/adopt", json={}, headers=up).status_code == 403
    r = client.post(f"/v1/surveys/{sid}/discovery/c99/adopt", json={}, headers=admin)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    r = client.post(f"/v1/surveys/{sid}/discovery/c1/adopt", json={"base_version": 7}, headers=admin)
    assert r.status_code == 409
    r = client.post(f"/v1/surveys/{sid}/discovery/c1/adopt", json={"id": "emerging_topic"}, headers=admin)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["theme"] == "emerging_topic" and out["taxonomy"]["version"] == 2 and out["job"] is None
    theme = out["taxonomy"]["themes"][-1]
    assert theme["custom"] and theme["examples"] == c1["examples"] and theme["name"] == c1["name"]
    assert r.headers["location"] == "/v1/taxonomy/versions/2"

    # summaries: extractive, each sentence a quote citing itself
    r = client.get(f"/v1/surveys/{sid}/summaries", headers=up)
    assert r.status_code == 200, r.text
    summaries = r.json()
    assert summaries["items"] == summary["summaries"]["items"] and summaries["llm"] is None
    for item in summaries["items"]:
        ids = {q["id"] for q in item["quotes"]}
        assert item["method"] == "extractive" and item["fallback"] == "no_llm" and item["n"] >= 5
        assert all(len(s["quote_ids"]) == 1 and set(s["quote_ids"]) <= ids for s in item["sentences"])
    theme_id = summaries["items"][0]["theme"]
    r = client.get(
        f"/v1/surveys/{sid}/summaries", params={"theme": theme_id, "group": "detractors"}, headers=up
    )
    assert r.status_code == 200 and {(i["theme"], i["group"]) for i in r.json()["items"]} <= {
        (theme_id, "detractors")
    }
    assert client.get(f"/v1/surveys/{sid}/summaries?theme=nope", headers=up).status_code == 422
    assert client.get(f"/v1/surveys/{sid}/summaries?segment=nocolon", headers=up).status_code == 422
    r = client.get(f"/v1/surveys/{sid}/summaries?segment=プラン:ベーシック", headers=up)
    assert r.status_code == 200 and all(i["segment"] == "プラン:ベーシック" for i in r.json()["items"])

    # labelling the adopted theme: proposals (the classifier's, without an LLM), decisions, retraining
    r = client.post(f"/v1/surveys/{sid}/labels/price/proposals", json={"size": 4}, headers=up)
    assert r.status_code == 422 and "trained theme head" in r.json()["detail"]  # a trained theme
    r = client.post(f"/v1/surveys/{sid}/labels/emerging_topic/proposals", json={"size": 12}, headers=up)
    assert r.status_code == 201, r.text
    proposed = r.json()["proposed"]
    assert len(proposed) == 12 and {p["proposed_by"] for p in proposed} == {"classifier"}
    assert all(p["state"] == "proposed" and p["label"] is None for p in proposed)
    again = client.post(
        f"/v1/surveys/{sid}/labels/emerging_topic/proposals", json={"size": 12}, headers=up
    ).json()
    assert not {p["text"] for p in again["proposed"]} & {p["text"] for p in proposed}  # never twice

    # the analyst agrees with the first half and corrects the rest
    decisions = [
        {"id": p["id"], "label": p["proposed"] if k < 6 else not p["proposed"]}
        for k, p in enumerate(proposed)
    ]
    r = client.post(
        f"/v1/surveys/{sid}/labels/emerging_topic/decisions", json={"decisions": decisions}, headers=up
    )
    assert r.status_code == 200 and r.json()["counts"] == {"proposed": 12, "accepted": 6, "corrected": 6}
    bad = {"decisions": [{"id": 999999, "label": True}]}
    assert (
        client.post(f"/v1/surveys/{sid}/labels/emerging_topic/decisions", json=bad, headers=up).status_code
        == 404
    )
    listed = client.get(f"/v1/surveys/{sid}/labels/emerging_topic?state=corrected", headers=up).json()
    assert len(listed["items"]) == 6 and all(i["label"] != i["proposed"] for i in listed["items"])

    assert (
        client.post(f"/v1/surveys/{sid}/labels/emerging_topic/retrain", json={}, headers=up).status_code
        == 403
    )
    r = client.post(
        f"/v1/surveys/{sid}/labels/emerging_topic/retrain", json={"base_version": 1}, headers=admin
    )
    assert r.status_code == 409
    r = client.post(f"/v1/surveys/{sid}/labels/emerging_topic/retrain", json={}, headers=admin)
    assert r.status_code == 200, r.text
    retrained = r.json()
    assert retrained["positives"] + retrained["negatives"] == 12
    assert set(retrained["metrics"]) == {"before", "after", "cross_validated"}
    assert retrained["metrics"]["after"]["f1"] >= retrained["metrics"]["before"]["f1"]
    assert retrained["changed"] == bool(retrained["added"] or retrained["counter_examples"])
    if retrained["changed"]:
        r = client.get("/v1/taxonomy", headers=keys["classify"])
        assert r.status_code == 200, r.text
        tax = r.json()
        assert tax["version"] == retrained["taxonomy_version"] == 3
        assert set(retrained["added"]) <= set(tax["themes"][-1]["examples"])
        assert set(retrained["counter_examples"]) == set(tax["themes"][-1]["counter_examples"])

    # deleting the survey purges its labels and stored insights
    assert _count(runtime, ThemeLabel) == 24 and _count(runtime, SurveyInsight) >= 3
    assert client.delete(f"/v1/surveys/{sid}", headers=up).status_code == 204
    assert _count(runtime, ThemeLabel) == 0 and _count(runtime, SurveyInsight) == 0


def _smart_llm(body: dict[str, Any]) -> Step:
    """Answers like a good model: names from the keywords, summaries quoting the first two quotes."""
    prompt = body["messages"][-1]["content"]
    task = body["response_format"]["json_schema"]["name"]
    if task == "name_cluster":
        keywords = re.search(r"特徴語: (.*)", prompt)
        first = keywords.group(1).split("、")[0] if keywords else "話題"
        return answer(
            {
                "name": f"{first}について",
                "description": f"{first}に関する声",
                "id": "topic_x",
                "polarity": "topic",
            }
        )
    if task == "summarize":
        quotes = re.findall(r"^\[(q\d+)\] (.*)$", prompt, flags=re.M)
        sentences = [{"text": text[:40], "quote_ids": [qid]} for qid, text in quotes[:2]]
        return answer({"sentences": sentences}, usage=300)
    return Step(status=400, raw=json.dumps({"error": f"unexpected task {task}"}))


@pytest.fixture
def llm_client(tmp_path: Path) -> Iterator[tuple[Any, dict[str, str], Any]]:
    with scripted_server([], respond=_smart_llm) as server:
        settings = make_settings(
            tmp_path, llm_base_url=server.base_url, llm_model="scripted", cache_dir=tmp_path / "cache"
        )
        runtime = Runtime(settings)
        headers = {"Authorization": f"Bearer {create_key(runtime.db, 'a', 'admin')[1]}"}
        try:
            with TestClient(create_app(runtime=runtime)) as client:
                yield client, headers, server
        finally:
            runtime.close()


def test_llm_names_and_grounded_summaries(llm_client: tuple[Any, dict[str, str], Any]) -> None:
    client, headers, server = llm_client
    sid = _analysed(client, headers)
    summary = client.get(f"/v1/surveys/{sid}/summary", headers=headers).json()
    analysed = summary["summaries"]
    assert analysed["llm"]["model"] == "scripted" and analysed["items"]
    assert all(i["method"] == "llm" for i in analysed["items"])
    assert analysed["llm"]["tokens_used"] >= 300 * len(analysed["items"])
    found = client.get(f"/v1/surveys/{sid}/discovery", headers=headers).json()
    assert found["clusters"] == summary["discovery"]["clusters"]
    assert found["llm"]["model"] == "scripted" and found["llm"]["outcomes"].get("answered", 0) >= 1
    named = [c for c in found["clusters"] if c["named_by"] == "llm:scripted"]
    assert named and all(c["name"] == f"{c['keywords'][0]}について" for c in named)
    ids = [c["suggested_id"] for c in found["clusters"]]
    assert len(ids) == len(set(ids))  # topic_x, topic_x_2, …

    before = len(server.requests)
    r = client.get(f"/v1/surveys/{sid}/summaries", params={"group": "all"}, headers=headers)
    body = r.json()
    assert r.status_code == 200 and body["items"]
    for item in body["items"]:
        assert item["method"] == "llm" and item["model"] == "scripted"
        quote_ids = {q["id"] for q in item["quotes"]}
        assert all(s["quote_ids"] and set(s["quote_ids"]) <= quote_ids for s in item["sentences"])
    # the analysis asked for these cells already: the same prompts come from the response cache
    assert len(server.requests) == before and body["llm"]["outcomes"] == {"cached": len(body["items"])}
    # every request's text was masked: no e-mail address or phone number of the example survey left the process
    sent = server.sent_text()
    assert not re.search(r"[\w.]+@[\w.]+\.\w+", sent) and not re.search(r"0\d{1,4}-\d{1,4}-\d{4}", sent)
    before = len(server.requests)
    r = client.get(
        f"/v1/surveys/{sid}/summaries", params={"group": "all", "refresh": "true"}, headers=headers
    )
    assert r.status_code == 200 and len(server.requests) == before  # recomputed from the response cache
