"""The dashboard over TestClient: sign-in, roles, CSRF, escaping, and one upload through to its pages.

The analysis runs for real (the in-process job runner and the embedded encoder), hence ``slow`` on that test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.config import Settings
from service.runtime import Runtime
from service.web.users import authenticate_user, create_user, hash_password, verify_password
from tests.service.conftest import SURVEY_CP932, wait_for

PASSWORD = "correct horse battery"


@pytest.fixture
def web(runtime: Runtime) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from service.main import create_app

    for role in ("admin", "analyst", "viewer"):
        create_user(runtime.db, f"{role}@example.com", PASSWORD, role, name=f"{role}さん")
    with TestClient(create_app(runtime=runtime, preload_models=False), base_url="http://testserver") as c:
        yield c


def _csrf(client: Any, path: str) -> str:
    html = client.get(path).text
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert found, html[:500]
    return found.group(1)


def _login(client: Any, role: str) -> None:
    token = _csrf(client, "/app/login")
    r = client.post(
        "/app/login",
        data={"email": f"{role}@example.com", "password": PASSWORD, "csrf_token": token, "next": "/app"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    cookie = r.headers.get_list("set-cookie")
    session = next(c for c in cookie if c.startswith("koe_session="))
    assert "HttpOnly" in session and "SameSite=lax" in session and "Max-Age=" in session


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
    assert "テーマを追加" not in web.get("/app/taxonomy").text
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


def test_admin_manages_users_and_keys(web: Any, runtime: Runtime) -> None:
    _login(web, "admin")
    token = _csrf(web, "/app/admin")
    r = web.post(
        "/app/admin/users",
        data={"csrf_token": token, "email": "new@example.com", "password": "0123456789ab", "role": "viewer"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and authenticate_user(runtime.db, "new@example.com", "0123456789ab")
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


@pytest.mark.slow
def test_upload_analyse_and_every_page_escapes_comments(web: Any, tmp_path: Path) -> None:
    """A comment with <script> is shown as text on every page; the upload goes through mapping to results."""
    text = SURVEY_CP932.read_bytes().decode("cp932")
    header, *lines = text.split("\r\n") if "\r\n" in text else text.split("\n")
    evil = lines[0].split(",")
    evil[3] = "<script>alert(1)</script>配送が遅い。箱も潰れていた"
    data = "\r\n".join([header, ",".join(evil), *lines[1:]]).encode("cp932")
    _login(web, "analyst")
    token = _csrf(web, "/app/upload")
    files = {"file": ("xss.csv", data, "text/csv")}
    r = web.post("/app/upload/preview", data={"csrf_token": token}, files=files)
    assert (
        r.status_code == 200 and 'data-column="推奨度（0～10）"' in r.text and "<script>alert" not in r.text
    )
    mapping = '{"score": "推奨度（0～10）", "texts": ["理由"], "respondent_id": "回答ID", "date": "回答日時", "segments": ["プラン"]}'
    r = web.post(
        "/app/upload",
        data={"csrf_token": token, "mapping": mapping},
        files={"file": ("xss.csv", data, "text/csv")},
        headers={"Accept": "application/json"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    wait_for(lambda: web.get(f"/app/jobs/{body['job_id']}/status").json()["state"] in ("succeeded", "failed"))
    assert web.get(f"/app/jobs/{body['job_id']}/status").json()["state"] == "succeeded"
    sid = body["survey_id"]
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
