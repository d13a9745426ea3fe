"""The dashboard's insights page: emerging themes with a one-step 「テーマに追加」, theme summaries with the quotes
they cite; roles, CSRF and escaping.

The survey's analysis is the report fixture's summary (tests/fixtures/summary_example.json, which carries a
``discovery`` and a ``summaries`` section with HTML in its user text) stored as a finished job: the page only
shows what the analysis wrote, so no model has to run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from service.runtime import Runtime
from tests.service.conftest import csrf_token, sign_in, stored_survey

FIXTURE = Path(__file__).parents[1] / "fixtures" / "summary_example.json"


@pytest.fixture
def survey_id(web: Any, runtime: Runtime) -> str:
    """A survey whose analysis finished with the fixture's summary (the job is never run: no models)."""
    summary = json.loads(FIXTURE.read_text(encoding="utf-8"))
    summary["discovery"]["clusters"][0]["name"] = "置き配<script>alert(1)</script>の不安"
    sid, job_id = stored_survey(runtime)
    runtime.repo.set_job(job_id, state="running")
    assert runtime.repo.finish_job(job_id, sid, summary)
    return sid


def _page(web: Any, sid: str) -> str:
    r = web.get(f"/app/surveys/{sid}/insights")
    assert r.status_code == 200, r.text[:500]
    return str(r.text)


def test_emerging_themes_and_cited_summaries_are_shown_escaped(web: Any, survey_id: str) -> None:
    sign_in(web, "viewer")
    html = _page(web, survey_id)
    assert 'aria-current="page">新しいテーマ・要約</a>' in html
    emerging = html[html.index('<section id="emerging">') : html.index('<section id="summaries">')]
    assert "置き配&lt;script&gt;alert(1)&lt;/script&gt;の不安" in emerging  # an LLM's name is user text
    assert "特徴語: 置き配・玄関・&lt;b&gt;箱&lt;/b&gt;" in emerging
    assert "<strong>26件</strong>の回答（28文、回答のある 308件の 8.4%）" in emerging
    assert "+8.0pt（95%区間 +1.0pt〜+15.0pt）: <strong>増加</strong>" in emerging
    assert "2026-W47 19.4%（14件/72）" in emerging  # the weekly shares
    assert (
        "置き配の箱が&lt;script&gt;alert(2)&lt;/script&gt;雨で濡れていた" in emerging and "行 77" in emerging
    )
    assert "テーマに追加" not in html and "/adopt" not in html  # a viewer cannot change the taxonomy
    summaries = html[html.index('<section id="summaries">') :]
    assert "スタッフ・サポート対応" in summaries and "LLMによる要約（gpt-4o-mini）" in summaries
    assert (
        'たらい回しや同じ説明の繰り返しへの不満が多い。 <a href="#sum1-q1">[q1]</a> <a href="#sum1-q2">[q2]</a>'
        in summaries
    )
    assert 'id="sum1-q1"' in summaries and 'id="sum1-q2"' in summaries and "alert(3)" not in summaries
    assert (
        "&lt;i&gt;とても&lt;/i&gt;" in summaries
        and "抽出（LLMの要約が引用に基づかなかったため）" in summaries
    )
    assert "<script>" not in html.split("</head>", 1)[1]


def test_an_analyst_adds_an_emerging_theme_in_one_step(web: Any, runtime: Runtime, survey_id: str) -> None:
    sign_in(web, "analyst")
    html = _page(web, survey_id)
    form = re.search(
        rf'<form method="post" action="(/app/surveys/{survey_id}/insights/c1/adopt)">(.*?)</form>', html, re.S
    )
    assert form and "テーマに追加" in form.group(2)
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', form.group(2)))
    assert set(fields) == {"csrf_token", "base_version"} and fields["base_version"] == "1"
    r = web.post(form.group(1), data=fields, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("/insights?added=unattended_delivery")
    taxonomy = runtime.taxonomy()
    theme = taxonomy.get("unattended_delivery")
    assert taxonomy.version == 2 and theme.custom and theme.polarity == "negative_signal"
    assert theme.name == "置き配<script>alert(1)</script>の不安"  # kept as written; escaped where shown
    assert theme.examples == ("置き配の箱が雨で濡れていた", "玄関前に置かれたままで盗まれないか不安")
    after = web.get(r.headers["location"]).text
    assert (
        "をテーマ分類に追加しました（バージョン 2）" in after
        and "テーマ分類に追加済みです（ID unattended_delivery）" in after
    )
    assert "<script>alert(1)" not in after
    assert after.count("テーマに追加</button>") == 1  # only c2 is left to add

    # the form of a page loaded before that change is stale: a conflict, nothing saved
    r = web.post(f"/app/surveys/{survey_id}/insights/c2/adopt", data=fields)
    assert r.status_code == 409 and "バージョン 2 に更新しました" in r.text
    assert runtime.taxonomy().version == 2


def test_adding_needs_an_analyst_a_csrf_token_and_a_known_cluster(
    web: Any, runtime: Runtime, survey_id: str
) -> None:
    path = f"/app/surveys/{survey_id}/insights/c1/adopt"
    sign_in(web, "viewer")
    token = csrf_token(web, f"/app/surveys/{survey_id}/insights")
    r = web.post(path, data={"csrf_token": token})
    assert r.status_code == 403 and "権限" in r.text
    sign_in(web, "analyst")
    r = web.post(path, data={})
    assert r.status_code == 403 and "CSRF" in r.text
    token = csrf_token(web, f"/app/surveys/{survey_id}/insights")
    r = web.post(f"/app/surveys/{survey_id}/insights/c9/adopt", data={"csrf_token": token})
    assert r.status_code == 404 and "no cluster &#39;c9&#39;" in r.text
    assert runtime.taxonomy().version == 1
    assert web.get("/app/surveys/nope/insights").status_code == 404


def test_only_an_existing_theme_is_announced(web: Any, survey_id: str) -> None:
    sign_in(web, "viewer")
    html = web.get(f"/app/surveys/{survey_id}/insights", params={"added": "<b>偽のお知らせ</b>"}).text
    assert "偽のお知らせ" not in html and "追加しました" not in html
