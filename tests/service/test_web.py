"""The dashboard over TestClient: sign-in, roles, CSRF, escaping, and one upload through to its pages.

The analysis runs for real (the in-process job runner and the embedded encoder), hence ``slow`` on that test.
"""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from service.config import Settings
from service.runtime import Runtime
from service.web.users import authenticate_user, hash_password, verify_password
from tests.service.conftest import PASSWORD, SURVEY_CP932, stored_survey, wait_for
from tests.service.conftest import csrf_token as _csrf
from tests.service.conftest import sign_in as _login


class _Form(HTMLParser):
    """The fields a browser would send from one form: inputs, and each select at its selected option."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id, self.inside = form_id, False
        self.select: list[str] | None = None  # [name, value] of the select being read
        self.fields: list[list[str]] = []
        self.action = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("id") == self.form_id
            self.action = a.get("action", "") if self.inside else self.action
        elif self.inside and tag == "input" and a.get("name") and a.get("type") != "file":
            self.fields.append([a["name"], a.get("value", "")])
        elif self.inside and tag == "select":
            self.select = [a.get("name", "")]
            self.fields.append(self.select)
        elif self.select is not None and tag == "option" and (len(self.select) == 1 or "selected" in a):
            self.select[1:] = [a.get("value", "")]  # the first option, unless another one is selected

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self.select = None
        elif tag == "form":
            self.inside = False


def _form(html: str, form_id: str) -> tuple[str, list[list[str]]]:
    parser = _Form(form_id)
    parser.feed(html)
    assert parser.action, f"no form #{form_id}"
    return parser.action, parser.fields


def _as_data(fields: list[list[str]]) -> dict[str, list[str]]:
    data: dict[str, list[str]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    return data


def test_password_hash_is_scrypt_and_salted() -> None:
    a, b = hash_password("秘密のパスワード123"), hash_password("秘密のパスワード123")
    assert a.startswith("scrypt$") and a != b
    assert verify_password("秘密のパスワード123", a) and not verify_password("違う", a)


def test_pages_need_sign_in(web: Any) -> None:
    for path in ("/app", "/app/upload", "/app/taxonomy", "/app/admin", "/app/surveys/x/themes"):
        r = web.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/app/login?next=")
    assert web.get("/", follow_redirects=False).headers["location"] == "/app"


def test_wrong_password_and_open_redirect(web: Any) -> None:
    token = _csrf(web, "/app/login")
    r = web.post("/app/login", data={"email": "admin@example.com", "password": "nope", "csrf_token": token})
    assert r.status_code == 401 and "パスワードが違います" in r.text
    r = web.post(
        "/app/login",
        data={
            "email": "admin@example.com",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "//evil.example/",
        },
        follow_redirects=False,
    )
    assert r.headers["location"] == "/app"


def test_csrf_token_is_required(web: Any) -> None:
    r = web.post("/app/login", data={"email": "admin@example.com", "password": PASSWORD})
    assert r.status_code == 403 and "CSRF" in r.text
    _login(web, "analyst")
    r = web.post("/app/taxonomy", data={"action": "add", "id": "x", "name": "x", "examples": "x"})
    assert r.status_code == 403 and "CSRF" in r.text
    r = web.post("/app/taxonomy", data={"action": "add", "csrf_token": "0" * 64})
    assert r.status_code == 403


def test_viewer_cannot_upload_or_edit_taxonomy(web: Any) -> None:
    _login(web, "viewer")
    assert web.get("/app/upload").status_code == 403
    token = _csrf(web, "/app/taxonomy")
    page = web.get("/app/taxonomy").text
    assert "テーマを追加" not in page
    # the themes that mean one sentiment say so (感謝, 不便, がっかり)
    assert page.count("常にネガティブ") == 2 and page.count("常にポジティブ") == 1 and "コメントごと" in page
    r = web.post(
        "/app/taxonomy",
        data={
            "csrf_token": token,
            "action": "add",
            "step": "apply",
            "id": "ab",
            "name": "x",
            "examples": "y",
        },
    )
    assert r.status_code == 403 and "権限" in r.text
    files = {"file": ("a.csv", b"score,comment\n9,good\n", "text/csv")}
    assert web.post("/app/upload", data={"csrf_token": token}, files=files).status_code == 403
    assert web.get("/app/admin").status_code == 403


def test_analyst_previews_then_applies_a_theme(web: Any, runtime: Runtime) -> None:
    _login(web, "analyst")
    token = _csrf(web, "/app/taxonomy")
    form = {
        "csrf_token": token,
        "action": "add",
        "step": "preview",
        "id": "gift_wrap",
        "name": "ギフト包装",
        "examples": "ギフト包装にしてほしい\nのしを付けたい",
    }
    r = web.post("/app/taxonomy", data=form)
    assert r.status_code == 200 and "変更の確認" in r.text and "ギフト包装" in r.text
    assert all(t.id != "gift_wrap" for t in runtime.taxonomy().themes)  # nothing saved by a preview
    r = web.post("/app/taxonomy", data={**form, "step": "apply", "base_version": "1"}, follow_redirects=False)
    assert r.status_code == 303
    assert any(t.id == "gift_wrap" for t in runtime.taxonomy().themes)
    r = web.post("/app/taxonomy", data={**form, "step": "apply", "base_version": "1"})
    assert r.status_code == 422  # stale base version: a conflict, not a silent overwrite


def _effect_rows(html: str) -> dict[str, tuple[str, str]]:
    """Theme id -> (before, after) as the preview table shows them."""
    found = re.findall(
        r'data-theme="([a-z_]+)">.*?<td class="num before">([^<]*)</td>\s*<td class="num after">([^<]*)</td>',
        html,
        re.S,
    )
    return {tid: (before, after) for tid, before, after in found}


@pytest.mark.slow
def test_taxonomy_preview_reclassifies_a_sample_without_saving(web: Any, runtime: Runtime) -> None:
    """The preview classifies a bounded sample of the newest survey under the proposed taxonomy: counts
    before and after per theme, comments that gain a theme; nothing is saved and nothing is cached."""
    from service.jobs import work

    _, job_id = stored_survey(runtime)
    work.run_all(runtime.job_context(), job_id, runtime.settings.max_upload_bytes)
    _login(web, "analyst")
    token = _csrf(web, "/app/taxonomy")
    merge = {
        "csrf_token": token,
        "action": "merge",
        "step": "preview",
        "theme": "price",
        "into": "product_quality",
    }
    r = web.post("/app/taxonomy", data=merge)
    assert r.status_code == 200 and "分類への影響" in r.text, r.text[-2000:]
    assert re.search(r'id="effect-n">200<', r.text)  # bounded: the survey has more answered rows than that
    rows = _effect_rows(r.text)
    assert rows["price"][1] == "—" and "に統合" in r.text
    before_q, after_q = int(rows["product_quality"][0]), int(rows["product_quality"][1])
    before_p = int(rows["price"][0])
    assert before_p > 0 and after_q >= max(before_q, before_p)  # the merged theme keeps both themes' comments
    assert after_q > before_q and 'class="quotes gained"><q>' in r.text
    untouched = [v for k, v in rows.items() if k not in ("price", "product_quality")]
    assert untouched and all(before == after for before, after in untouched)
    assert runtime.taxonomy().version == 1 and "price" in runtime.taxonomy().ids  # not saved
    assert set(runtime._bundles) == {1}  # the proposed taxonomy's models are not kept

    add = {
        "csrf_token": token,
        "action": "add",
        "step": "preview",
        "id": "late_delivery",
        "name": "<script>alert(1)</script>配送遅延",
        "examples": "配送が遅い\n届くのに時間がかかった\n発送が遅れた",
    }
    r = web.post("/app/taxonomy", data=add)
    assert r.status_code == 200 and "<script>alert(1)</script>" not in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;配送遅延" in r.text
    before, after = _effect_rows(r.text)["late_delivery"]
    assert before == "—" and int(after) > 0
    r = web.post("/app/taxonomy", data={**add, "survey_id": "0" * 32})
    assert r.status_code == 404 and "no survey" in r.text


def test_admin_manages_users_and_keys(web: Any, runtime: Runtime) -> None:
    _login(web, "admin")
    token = _csrf(web, "/app/admin")
    r = web.post(
        "/app/admin/users",
        data={"csrf_token": token, "email": "new@example.com", "password": "0123456789ab", "role": "viewer"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and authenticate_user(runtime.db, "new@example.com", "0123456789ab")
    # refusals come back on the page in Japanese, like the rest of the dashboard
    again = {"csrf_token": token, "email": "New@example.com", "password": "0123456789ab", "role": "viewer"}
    assert "new@example.com のユーザーは既に登録されています" in web.post("/app/admin/users", data=again).text
    short = {**again, "email": "other@example.com", "password": "short"}
    assert "パスワードは10文字以上にしてください" in web.post("/app/admin/users", data=short).text
    assert (
        "権限は" in web.post("/app/admin/users", data={**short, "password": "0123456789ab", "role": "x"}).text
    )
    no_scope = web.post("/app/admin/keys", data={"csrf_token": token, "name": "bi"})
    assert "APIキーの範囲を" in no_scope.text and 'id="new-key"' not in no_scope.text
    assert (
        "APIキーの名前は1〜100文字"
        in web.post("/app/admin/keys", data={"csrf_token": token, "name": " ", "scopes": ["upload"]}).text
    )
    r = web.post("/app/admin/keys", data={"csrf_token": token, "name": "bi", "scopes": ["upload"]})
    key = re.search(r'id="new-key">(koe_[^<]+)<', r.text)
    assert (
        key and web.get("/v1/surveys", headers={"Authorization": f"Bearer {key.group(1)}"}).status_code == 200
    )


def test_disabled_user_loses_the_session(web: Any, runtime: Runtime) -> None:
    from service.web.users import list_users, set_disabled

    _login(web, "viewer")
    assert web.get("/app").status_code == 200
    viewer = next(u for u in list_users(runtime.db) if u.role == "viewer")
    set_disabled(runtime.db, viewer.id, True)
    assert web.get("/app", follow_redirects=False).status_code == 303


def test_secret_key_is_generated_once(tmp_path: Path) -> None:
    from service.web.session import secret_key

    s = Settings(data_dir=tmp_path / "d")
    assert secret_key(s) == secret_key(Settings(data_dir=tmp_path / "d")) and len(secret_key(s)) >= 32
    assert (tmp_path / "d" / "secret_key").stat().st_mode & 0o077 == 0


def test_upload_forms_without_javascript_explain_what_went_wrong(web: Any, runtime: Runtime) -> None:
    _login(web, "analyst")
    page = web.get("/app/upload").text
    assert 'enctype="multipart/form-data"' in page and "JavaScript が必要" not in page
    action, fields = _form(page, "upload-form")
    r = web.post(action, data=_as_data(fields))  # no file chosen
    assert r.status_code == 422 and "ファイルを選んでください" in r.text
    files = {"file": ("broken.xlsx", b"PK\x03\x04 not a workbook", "application/octet-stream")}
    r = web.post(action, data=_as_data(fields), files=files)
    assert r.status_code == 422 and "<!doctype html>" in r.text and 'role="alert"' in r.text
    assert not any((runtime.settings.uploads_dir / "pending").iterdir())  # an unreadable file is not kept
    r = web.post(action, data=_as_data(fields), files=files, headers={"X-Fragment": "1"})
    assert r.status_code == 422 and "<!doctype html>" not in r.text  # koe.js gets the fragment
    files = {"file": ("a.csv", "推奨度,理由\n9,<b>速い</b>\n".encode(), "text/csv")}
    r = web.post(action, data=_as_data(fields), files=files, headers={"X-Fragment": "1"})
    assert r.status_code == 200 and r.text.startswith('<section class="card" id="mapping">')
    assert "&lt;b&gt;速い&lt;/b&gt;" in r.text and "<b>速い" not in r.text
    _, mapping = _form(r.text, "mapping-form")
    r = web.post("/app/upload", data={**_as_data(mapping), "pending": "x" * 32})
    assert r.status_code == 410 and "もう一度選んでください" in r.text
    r = web.post("/app/upload", data={**_as_data(mapping), "pending": "../../etc"})
    assert r.status_code == 410


def _attempt(client: Any, email: str, password: str) -> Any:
    token = _csrf(client, "/app/login")
    data = {"email": email, "password": password, "csrf_token": token, "next": "/app"}
    return client.post("/app/login", data=data, follow_redirects=False)


def test_sign_in_is_locked_after_repeated_failures(web: Any, runtime: Runtime) -> None:
    from sqlalchemy import update

    from service.storage.tables import SignInFailure

    limit = runtime.settings.login_max_failures
    for _ in range(limit - 1):
        assert _attempt(web, "analyst@example.com", "wrong password").status_code == 401
    r = _attempt(web, "analyst@example.com", "wrong password")
    assert r.status_code == 429 and "一時的に止めています" in r.text and int(r.headers["retry-after"]) > 60
    r = _attempt(web, "analyst@example.com", PASSWORD)  # locked: even the right password is not tried
    assert r.status_code == 429 and "koe_session=" not in r.headers.get("set-cookie", "")
    assert _attempt(web, "ANALYST@example.com ", PASSWORD).status_code == 429  # the same address
    assert _attempt(web, "viewer@example.com", PASSWORD).status_code == 303  # other accounts are not
    with runtime.db.session() as s:  # the lock window passes
        minutes = runtime.settings.login_lock_minutes + 1
        s.execute(
            update(SignInFailure).values(failed_at=SignInFailure.failed_at - timedelta(minutes=minutes))
        )
    assert _attempt(web, "analyst@example.com", "wrong password").status_code == 401
    assert _attempt(web, "analyst@example.com", PASSWORD).status_code == 303
    with runtime.db.session() as s:
        assert s.scalars(select(SignInFailure)).all() == []  # success forgets; old failures are swept


def test_password_change_needs_the_current_password(web: Any, runtime: Runtime) -> None:
    from fastapi.testclient import TestClient

    _login(web, "viewer")
    other = TestClient(web.app, base_url="http://testserver")  # a second browser, signed in too
    _login(other, "viewer")
    page = web.get("/app/account").text
    assert "viewer@example.com" in page and "パスワードの変更" in page
    action, fields = _form(page, "account-form")
    base = _as_data(fields)
    new = "新しいとても長いパスワード"

    def change(current: str, password: str, confirm: str | None = None) -> Any:
        data = {
            **base,
            "current_password": current,
            "new_password": password,
            "new_password_confirm": password if confirm is None else confirm,
        }
        return web.post(action, data=data, follow_redirects=False)

    r = change(PASSWORD, new, "違う確認用のパスワード")
    assert r.status_code == 422 and "一致しません" in r.text
    r = change(PASSWORD, "short")
    assert r.status_code == 422 and "10文字以上" in r.text  # the policy of user creation, in Japanese
    r = change(PASSWORD, PASSWORD)
    assert r.status_code == 422 and "現在のパスワードと別のもの" in r.text
    r = change("not my password", new)
    assert r.status_code == 422 and "現在のパスワードが違います" in r.text
    assert authenticate_user(runtime.db, "viewer@example.com", PASSWORD)  # nothing changed so far
    r = change(PASSWORD, new)
    assert r.status_code == 303 and "koe_session=" in r.headers["set-cookie"]
    assert "変更しました" in web.get(r.headers["location"]).text  # this session goes on, renewed
    assert other.get("/app", follow_redirects=False).status_code == 303  # the other one ended
    assert authenticate_user(runtime.db, "viewer@example.com", new)
    assert not authenticate_user(runtime.db, "viewer@example.com", PASSWORD)
    other.close()


def test_password_change_guesses_count_towards_the_lock(web: Any, runtime: Runtime) -> None:
    _login(web, "viewer")
    action, fields = _form(web.get("/app/account").text, "account-form")
    data = {**_as_data(fields), "new_password": "x" * 12, "new_password_confirm": "x" * 12}
    codes = [
        web.post(action, data={**data, "current_password": f"guess {i}"}).status_code
        for i in range(runtime.settings.login_max_failures + 1)
    ]
    assert codes[-2:] == [429, 429] and set(codes[:-2]) == {422}
    r = web.post(action, data={**data, "current_password": PASSWORD})
    assert r.status_code == 429 and authenticate_user(runtime.db, "viewer@example.com", PASSWORD)


@pytest.mark.slow
def test_upload_without_javascript_analyse_and_every_page_escapes_comments(
    web: Any, runtime: Runtime
) -> None:
    """Plain HTML forms (no JavaScript): file -> preview page -> roles fixed -> start -> results. A comment
    with <script> is shown as text on every page."""
    text = SURVEY_CP932.read_bytes().decode("cp932")
    header, *lines = text.split("\r\n") if "\r\n" in text else text.split("\n")
    evil = lines[0].split(",")
    evil[3] = "<script>alert(1)</script>配送が遅い。箱も潰れていた"
    data = "\r\n".join([header, ",".join(evil), *lines[1:]]).encode("cp932")
    _login(web, "analyst")
    action, fields = _form(web.get("/app/upload").text, "upload-form")
    assert action == "/app/upload/preview"
    files = {"file": ("xss.csv", data, "text/csv")}
    r = web.post(action, data=_as_data(fields), files=files)  # a whole page: no X-Fragment header
    assert r.status_code == 200 and r.text.lstrip().startswith("<!doctype html>")
    assert 'data-column="推奨度（0～10）"' in r.text and "<script>alert" not in r.text
    action, fields = _form(r.text, "mapping-form")
    columns = [v for k, v in fields if k == "column"]
    roles = [f for f in fields if f[0] == "role"]
    assert action == "/app/upload" and len(columns) == len(roles) and dict(fields)["pending"]
    assert roles[columns.index("地域")][1] == "segments"  # detected; the analyst does not want it
    roles[columns.index("地域")][1] = "ignore"
    r = web.post(action, data=_as_data(fields), follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/app/jobs/"), r.text[-1500:]
    status_url = r.headers["location"] + "/status"
    wait_for(lambda: web.get(status_url).json()["state"] in ("succeeded", "failed"))
    status = web.get(status_url).json()
    assert status["state"] == "succeeded"
    assert not any((runtime.settings.uploads_dir / "pending").iterdir())  # the kept file went with the start
    sid = status["survey_id"]
    overview = web.get(f"/app/surveys/{sid}").text
    assert "NPS" in overview and "プラン" in overview and "地域" not in overview  # mapping applied
    for path in (
        "comments",
        "comments?text=alert",
        "themes",
        "drivers",
        "drivers?group=passives&segment=プラン:ライト",
    ):
        page = web.get(f"/app/surveys/{sid}/{path}")
        assert page.status_code == 200, path
        assert "<script>alert(1)</script>" not in page.text
    found = web.get(f"/app/surveys/{sid}/comments", params={"text": "alert"}).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in found
    csv = web.get(f"/app/surveys/{sid}/comments.csv", params={"sentiment": "negative"})
    assert csv.status_code == 200 and csv.text.startswith("\ufeff回答ID")
    assert web.get(f"/app/surveys/{sid}/charts/score_distribution.png").headers["content-type"] == "image/png"


def test_a_support_export_reads_without_scores_on_every_page(web: Any, runtime: Runtime) -> None:
    """Support tickets have no score: the pages show themes, sentiment, comments and insights, say why
    there is no NPS, and none of them fails."""
    from service.jobs import work
    from service.uploads import DEFAULT_OPTIONS, accept_upload, store_upload

    path = SURVEY_CP932.parent / "support_tickets.csv"
    s = runtime.settings
    with path.open("rb") as fh:
        stored = store_upload(fh, path.name, s.uploads_dir, s.max_upload_bytes)
    survey, job = accept_upload(runtime, stored, {**DEFAULT_OPTIONS, "kind": "support"})
    work.run_all(runtime.job_context(), job.id, s.max_upload_bytes)
    assert runtime.repo.get_job(job.id).state == "succeeded"  # type: ignore[union-attr]
    _login(web, "viewer")
    for page in ("", "/themes", "/drivers", "/comments", "/comments?sentiment=negative", "/insights"):
        r = web.get(f"/app/surveys/{survey.id}{page}")
        assert r.status_code == 200, (page, r.text[-800:])
    overview = web.get(f"/app/surveys/{survey.id}").text
    assert "スコア列がない" in overview and 'id="count-texts">120<' in overview
    assert (
        "うちスコアあり" not in overview and "/charts/signals.png" in overview
    )  # counts; signals as the trend
    assert f'href="/app/surveys/{survey.id}/drivers"' not in overview  # no drivers tab without a score ...
    assert (
        "スコアがないため、ドライバー分析" in web.get(f"/app/surveys/{survey.id}/drivers").text
    )  # ... and why


def test_upload_form_carries_kind_and_metric_to_the_stored_survey(web: Any, runtime: Runtime) -> None:
    """A CSAT survey (1-5) and a support export go through the dashboard's two forms with the kind and the
    metric chosen on the first one; the preview keeps both, names the metric, and the survey stores them
    (until now the dashboard sent every file as an NPS survey)."""
    _login(web, "analyst")
    csat = "回答ID,満足度,ご意見\r\n" + "".join(
        f"{i},{1 + i % 5},配送がとても丁寧でした{i}\r\n" for i in range(1, 13)
    )
    csat += "13,6,六は CSAT の範囲外\r\n"  # fine for NPS; an issue for CSAT
    action, fields = _form(web.get("/app/upload").text, "upload-form")
    data = {**_as_data(fields), "kind": ["survey"], "metric": ["csat"]}
    r = web.post(action, data=data, files={"file": ("csat.csv", csat.encode("utf-8"), "text/csv")})
    assert r.status_code == 200 and "CSAT の計算から外れます" in r.text and "NPS の計算" not in r.text
    assert "問題のある行: <strong>1</strong>" in r.text  # the score 6, out of CSAT's 1-5
    action, fields = _form(r.text, "mapping-form")
    assert dict(fields)["metric"] == "csat" and dict(fields)["kind"] == "survey"
    r = web.post(action, data=_as_data(fields), follow_redirects=False)
    assert r.status_code == 303, r.text[-1500:]
    surveys = {s.filename: s for s in runtime.repo.list_surveys(10, 0)[1]}
    assert surveys["csat.csv"].options["metric"] == "csat"

    action, fields = _form(web.get("/app/upload").text, "upload-form")
    tickets = (SURVEY_CP932.parent / "support_tickets.csv").read_bytes()
    data = {**_as_data(fields), "kind": ["support"]}
    r = web.post(action, data=data, files={"file": ("tickets.csv", tickets, "text/csv")})
    assert r.status_code == 200 and "の計算から外れます" not in r.text
    action, fields = _form(r.text, "mapping-form")
    assert dict(fields)["kind"] == "support"
    r = web.post(action, data=_as_data(fields), follow_redirects=False)
    assert r.status_code == 303, r.text[-1500:]
    surveys = {s.filename: s for s in runtime.repo.list_surveys(10, 0)[1]}
    assert surveys["tickets.csv"].options["kind"] == "support"
