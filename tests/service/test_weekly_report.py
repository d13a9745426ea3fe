"""Weekly report e-mail: a real SMTP server on loopback (aiosmtpd), real databases, messages parsed with ``email``.

Fast tests store hand-made analysed rows (tests/pipelines/test_weekly.py: W46 and W47 with hand-worked numbers,
one answer holding an e-mail address and a phone number) as a finished survey, so no model is loaded.
The slow test runs ``koe report weekly`` on examples/survey_cp932.csv with the shipped models.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import update

from pipelines.nps import group_of
from pipelines.records import SurveyRow
from service.config import Settings, get_settings
from service.jobs.work import _row_result
from service.runtime import Runtime
from service.scheduler import due_week, tick
from service.storage import reports as store
from service.storage.keys import create_key
from service.storage.repository import new_id
from service.storage.tables import Subscription
from tests.pipelines.test_weekly import INFO, _rows
from tests.service.conftest import ROOT, SURVEY_CP932, make_settings

JST = ZoneInfo("Asia/Tokyo")
MONDAY_0905 = datetime(2026, 11, 23, 9, 5, tzinfo=JST)  # the Monday after 2026-W47
SENDER = "koe レポート <koe@example.com>"
SUBJECT_RANGE = "2026年11月16日（月）〜22日（日）"


# --- a real SMTP server on loopback -------------------------------------------------------------------------------


class Inbox:
    """aiosmtpd handler: keeps every accepted message; ``data_replies`` / ``rcpt_replies`` answer first."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.data_replies: list[str] = []
        self.rcpt_replies: dict[str, str] = {}
        self.attempts = 0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.attempts += 1
        if self.data_replies:
            return self.data_replies.pop(0)
        msg = message_from_bytes(envelope.content, policy=default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        return "250 OK queued"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def _settings(tmp_path: Path, port: int, db_url: str | None = None, **extra: Any) -> Settings:
    return make_settings(
        tmp_path,
        db_url,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="none",
        smtp_sender=SENDER,
        smtp_timeout=5,
        public_url="https://koe.example.com",
        dashboard_url="https://dash.example.com/surveys/{survey_id}?week={week}",
        **extra,
    )


def _stored_survey(runtime: Runtime, filename: str = "nps_2026-11.csv") -> str:
    """The hand-made rows as a finished analysis (what an upload and its job would have stored)."""
    repo = runtime.repo
    survey_id = new_id()
    _, job = repo.create_survey(
        survey_id=survey_id,
        filename=filename,
        content_hash="0" * 64,
        size_bytes=1,
        raw_path=str(Path("/nonexistent") / survey_id),
        options={},
        taxonomy_version=runtime.taxonomy().version,
        chunk_size=1000,
    )
    info = {**INFO.__dict__, "mapping": INFO.mapping.to_dict()}
    rows = _rows()
    repo.set_survey_info(survey_id, info, len(rows))
    stored = []
    for seq, r in enumerate(rows):
        texts = {q: a.text for q, a in r.answers.items()}
        row = SurveyRow(row=r.row, original={}, score=r.score, texts=texts, date=r.date, segments={})
        stored.append((seq, row, group_of(r.score) if r.score is not None else None))
    repo.add_rows(survey_id, stored)
    repo.plan_chunks(job.id, len(rows), 1000)
    results = [_row_result(job.id, seq, r.row, r.answers) for seq, r in enumerate(rows)]
    assert repo.commit_chunk(job.id, 0, results, "test")
    assert repo.finish_job(job.id, survey_id, {"model": {"encoder": "test"}})
    return survey_id


def _subscribe(runtime: Runtime, survey_id: str, recipients: list[str], **fields: Any) -> Subscription:
    sub = store.create_subscription(
        runtime.db,
        name="CX 週次",
        recipients=recipients,
        survey_id=survey_id,
        weekday=0,
        send_time="09:00",
        timezone="Asia/Tokyo",
        **fields,
    )
    with runtime.db.session() as s:  # as if created a month ago, so this Monday's moment counts
        s.execute(
            update(Subscription)
            .where(Subscription.id == sub.id)
            .values(created_at=datetime(2026, 10, 1, tzinfo=UTC))
        )
    found = store.get_subscription(runtime.db, sub.id)
    assert found is not None
    return found


# --- what arrives ----------------------------------------------------------------------------------------------


def _check_message(msg: Any, to: str) -> str:
    """Structure, headers, CID images and masking of one received report; returns the HTML."""
    assert msg.get_content_type() == "multipart/alternative"
    plain, related = msg.get_payload()
    assert plain.get_content_type() == "text/plain" and related.get_content_type() == "multipart/related"
    html_part, *images = related.get_payload()
    assert html_part.get_content_type() == "text/html" and len(images) == 3
    html = html_part.get_content()
    for image in images:
        assert image.get_content_type() == "image/png" and image.get_content().startswith(b"\x89PNG")
        cid = image["Content-ID"].strip("<>")
        assert f'src="cid:{cid}"' in html
        assert image.get_content_disposition() == "inline"
    assert "<script" not in html.lower() and 'src="http' not in html  # no remote images, no scripts

    raw_subject = msg.as_string().split("Subject:", 1)[1].split("\n", 1)[0]
    assert "=?utf-8?" in raw_subject.lower()  # encoded on the wire, decoded by the parser below
    assert msg["Subject"].startswith("【週次レポート】") and SUBJECT_RANGE in msg["Subject"]
    assert "2026-W47" in msg["Subject"]
    assert msg["From"].addresses[0].display_name == "koe レポート"
    assert msg["To"].addresses[0].addr_spec == to
    unsubscribe = msg["List-Unsubscribe"]
    assert "<mailto:koe@example.com?subject=unsubscribe" in unsubscribe
    assert "<https://koe.example.com/v1/unsubscribe?s=" in unsubscribe
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    text = plain.get_content()
    for body in (text, html):
        assert "NPS +40.0" in body and "対応が遅い" in body  # Japanese survives both parts
        assert "taro@example.com" not in body and "090-1234-5678" not in body
        assert "[メール]" in body and "[電話番号]" in body
    assert "https://dash.example.com/surveys/" in html and "week=2026-W47" in html
    return str(html)


# --- tests -------------------------------------------------------------------------------------------------------


def test_due_week_follows_the_subscription_zone_and_creation() -> None:
    created = datetime(2026, 10, 1, tzinfo=UTC)

    def key(sub: Subscription, now: datetime) -> str | None:
        week = due_week(sub, now)
        return week.key if week else None

    sub = Subscription(weekday=0, send_time="09:00", timezone="Asia/Tokyo", created_at=created)
    assert key(sub, MONDAY_0905) == "2026-W47"
    before = datetime(2026, 11, 23, 8, 59, tzinfo=JST)  # Monday, a minute early: still last week's moment
    assert key(sub, before) == "2026-W46"
    ny = Subscription(weekday=0, send_time="09:00", timezone="America/New_York", created_at=created)
    assert key(ny, MONDAY_0905) == "2026-W46"  # Sunday evening in New York: its Monday has not come yet
    fresh = Subscription(weekday=0, send_time="09:00", timezone="Asia/Tokyo", created_at=MONDAY_0905)
    assert due_week(fresh, MONDAY_0905 + timedelta(hours=1)) is None  # no report of a week before it existed


def test_the_scheduler_sends_each_week_once(tmp_path: Path, db_url: str, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    runtime = Runtime(_settings(tmp_path, port, db_url))
    try:
        survey_id = _stored_survey(runtime)
        sub = _subscribe(runtime, survey_id, ["manager@example.com", "Lead@Example.COM"])
        outcomes = tick(runtime, now=MONDAY_0905.astimezone(UTC))
        assert sorted((o.recipient, o.state, o.week) for o in outcomes) == [
            ("Lead@example.com", "sent", "2026-W47"),
            ("manager@example.com", "sent", "2026-W47"),
        ]
        assert len(inbox.messages) == 2
        by_to = {m["To"].addresses[0].addr_spec: m for m in inbox.messages}
        _check_message(by_to["manager@example.com"], "manager@example.com")

        # the same week again, later that day and from a second scheduler: nothing is sent
        again = tick(runtime, now=(MONDAY_0905 + timedelta(hours=3)).astimezone(UTC))
        assert {o.state for o in again} == {"skipped"} and len(inbox.messages) == 2
        logged = store.list_deliveries(runtime.db, subscription_id=sub.id)
        assert [(d.state, d.attempts, d.week) for d in logged] == [("sent", 1, "2026-W47")] * 2

        # one-click unsubscribe: the link in the header removes exactly that recipient
        link = by_to["manager@example.com"]["List-Unsubscribe"].split("<", 1)[1].split(">", 1)[0]
        assert "t=" in link and store.unsubscribe_signature(sub, "manager@example.com") in link
        assert store.remove_recipient(runtime.db, sub.id, "manager@example.com")

        # the next Monday: W48, only to who is still subscribed
        next_week = tick(runtime, now=(MONDAY_0905 + timedelta(days=7)).astimezone(UTC))
        assert [(o.recipient, o.state, o.week) for o in next_week] == [
            ("Lead@example.com", "sent", "2026-W48")
        ]
        assert "2026-W48" in inbox.messages[-1]["Subject"]
    finally:
        runtime.close()


def test_failures_are_retried_with_backoff_and_visible(
    tmp_path: Path,
    smtp: tuple[Inbox, int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox, port = smtp
    settings = _settings(tmp_path, port, report_retry_seconds=60, report_max_attempts=4)
    runtime = Runtime(settings)
    try:
        survey_id = _stored_survey(runtime)
        sub = _subscribe(runtime, survey_id, ["manager@example.com", "nobody@example.com"])
        inbox.data_replies = ["451 4.3.0 try again later", "451 4.3.0 try again later"]
        inbox.rcpt_replies = {"nobody@example.com": "550 5.1.1 no such user"}
        t0 = MONDAY_0905.astimezone(UTC)

        first = {o.recipient: o for o in tick(runtime, now=t0)}
        assert first["manager@example.com"].state == "retry"
        assert first["manager@example.com"].next_attempt_at == t0 + timedelta(seconds=60)
        assert first["nobody@example.com"].state == "failed"  # 5xx: permanent, not retried
        assert "550" in (first["nobody@example.com"].error or "")

        early = tick(runtime, now=t0 + timedelta(seconds=30))  # before the backoff has passed
        assert {o.state for o in early} == {"skipped"}
        second = {o.recipient: o for o in tick(runtime, now=t0 + timedelta(seconds=61))}
        assert second["manager@example.com"].state == "retry" and second["manager@example.com"].attempts == 2
        assert second["manager@example.com"].next_attempt_at == t0 + timedelta(seconds=61 + 120)  # doubled
        assert tick(runtime, now=t0 + timedelta(seconds=61 + 119))[0].state == "skipped"
        third = {o.recipient: o for o in tick(runtime, now=t0 + timedelta(seconds=61 + 121))}
        assert third["manager@example.com"].state == "sent" and third["manager@example.com"].attempts == 3
        assert third["nobody@example.com"].state == "skipped"  # failed for good stays failed
        assert len(inbox.messages) == 1 and inbox.attempts == 3

        # visible: in the delivery log, the API and the CLI
        failed = store.list_deliveries(runtime.db, states=["failed"])
        assert [(d.recipient, d.error_code, d.attempts) for d in failed] == [("nobody@example.com", 550, 1)]
        from fastapi.testclient import TestClient

        from service.main import create_app

        admin = {"Authorization": f"Bearer {create_key(runtime.db, 'ops', 'admin')[1]}"}
        with TestClient(create_app(runtime=runtime, preload_models=False)) as client:
            body = client.get(f"/v1/subscriptions/{sub.id}/deliveries?state=failed", headers=admin).json()
            (item,) = body["items"]
            assert item["recipient"] == "nobody@example.com" and item["error_code"] == 550
            assert "no such user" in item["last_error"]
            sent = client.get(f"/v1/subscriptions/{sub.id}/deliveries?state=sent", headers=admin).json()
            assert sent["items"][0]["attempts"] == 3 and sent["items"][0]["sent_at"]
            r = client.post(f"/v1/subscriptions/{sub.id}/deliveries/{item['id']}/retry", headers=admin)
            assert r.status_code == 200 and r.json()["state"] == "pending"

        monkeypatch.setenv("KOE_DATA_DIR", str(settings.data_dir))
        get_settings.cache_clear()
        try:
            from service.cli import main

            assert main(["report", "deliveries", "--state", "pending,failed"]) == 0
        finally:
            get_settings.cache_clear()
        listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [(d["recipient"], d["state"]) for d in listed] == [("nobody@example.com", "pending")]
    finally:
        runtime.close()


def test_a_closed_port_is_a_transient_failure(tmp_path: Path) -> None:
    runtime = Runtime(_settings(tmp_path, _free_port(), report_max_attempts=2))  # nothing listens there
    try:
        sub = _subscribe(runtime, _stored_survey(runtime), ["manager@example.com"])
        t0 = MONDAY_0905.astimezone(UTC)
        (o,) = tick(runtime, now=t0)
        assert o.state == "retry" and "cannot deliver through 127.0.0.1" in (o.error or "")
        (o,) = tick(runtime, now=t0 + timedelta(minutes=5))
        assert o.state == "failed" and o.attempts == 2  # attempts used up
        (d,) = store.list_deliveries(runtime.db, subscription_id=sub.id)
        assert d.state == "failed" and d.error_code is None and "refused" in (d.last_error or "").lower()
    finally:
        runtime.close()


def test_api_report_page_subscriptions_and_unsubscribe(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from service.main import create_app

    runtime = Runtime(_settings(tmp_path, 25))
    try:
        survey_id = _stored_survey(runtime)
        admin = {"Authorization": f"Bearer {create_key(runtime.db, 'ops', 'admin')[1]}"}
        upload = {"Authorization": f"Bearer {create_key(runtime.db, 'cx', 'upload')[1]}"}
        with TestClient(create_app(runtime=runtime, preload_models=False)) as client:
            r = client.get(
                f"/v1/surveys/{survey_id}/reports/weekly?week=2026-W47&download=true", headers=upload
            )
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
            assert r.headers["content-disposition"] == 'attachment; filename="koe-weekly-2026-W47.html"'
            assert r.text.count('src="data:image/png;base64,') == 3 and "<script" not in r.text
            assert "NPS" in r.text and "+40.0" in r.text and "taro@example.com" not in r.text
            assert (
                client.get(
                    f"/v1/surveys/{survey_id}/reports/weekly?week=2026-W99", headers=upload
                ).status_code
                == 422
            )
            assert client.get("/v1/surveys/nope/reports/weekly", headers=upload).status_code == 404

            body = {
                "recipients": ["a@example.com"],
                "survey_id": survey_id,
                "weekday": 0,
                "send_time": "09:00",
            }
            assert client.post("/v1/subscriptions", json=body, headers=upload).status_code == 403
            created = client.post("/v1/subscriptions", json=body, headers=admin)
            assert created.status_code == 201
            sub = created.json()
            assert sub["timezone"] == "Asia/Tokyo" and sub["recipients"] == ["a@example.com"]
            for bad in (
                {**body, "recipients": ["not an address"]},
                {**body, "stream": "nps_*.csv"},  # both a survey and a stream
                {**body, "timezone": "Mars/Olympus"},
                {**body, "send_time": "25:00"},
            ):
                r = client.post("/v1/subscriptions", json=bad, headers=admin)
                assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
            assert (
                client.post(
                    "/v1/subscriptions", json={**body, "survey_id": "nope"}, headers=admin
                ).status_code
                == 422
            )
            patched = client.patch(
                f"/v1/subscriptions/{sub['id']}",
                json={"recipients": ["a@example.com", "b@example.com"]},
                headers=admin,
            ).json()
            assert patched["recipients"] == ["a@example.com", "b@example.com"]
            assert [s["id"] for s in client.get("/v1/subscriptions", headers=admin).json()] == [sub["id"]]

            stored = store.get_subscription(runtime.db, sub["id"])
            assert stored is not None
            sig = store.unsubscribe_signature(stored, "b@example.com")
            page = client.get(f"/v1/unsubscribe?s={sub['id']}&r=b@example.com&t={sig}")
            assert page.status_code == 200 and "配信を停止" in page.text
            assert (
                client.post(f"/v1/unsubscribe?s={sub['id']}&r=b@example.com&t={'0' * 32}").status_code == 404
            )
            assert client.post(f"/v1/unsubscribe?s={sub['id']}&r=b@example.com&t={sig}").status_code == 200
            assert client.get(f"/v1/subscriptions/{sub['id']}", headers=admin).json()["recipients"] == [
                "a@example.com"
            ]

            assert client.delete(f"/v1/subscriptions/{sub['id']}", headers=admin).status_code == 204
            assert client.get(f"/v1/subscriptions/{sub['id']}", headers=admin).status_code == 404
    finally:
        runtime.close()


def test_a_stream_subscription_reports_the_newest_matching_upload(
    tmp_path: Path, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    runtime = Runtime(_settings(tmp_path, port))
    try:
        _stored_survey(runtime, "other.csv")
        _stored_survey(runtime, "nps_2026-11-22.csv")
        sub = store.create_subscription(
            runtime.db,
            recipients=["m@example.com"],
            stream="nps_*.csv",
            weekday=0,
            send_time="09:00",
            timezone="Asia/Tokyo",
        )
        with runtime.db.session() as s:
            s.execute(
                update(Subscription)
                .where(Subscription.id == sub.id)
                .values(created_at=datetime(2026, 10, 1, tzinfo=UTC))
            )
        (o,) = tick(runtime, now=MONDAY_0905.astimezone(UTC))
        assert o.state == "sent" and o.source == "stream:nps_*.csv"
        assert "nps_2026-11-22.csv" in inbox.messages[0]["Subject"]
    finally:
        runtime.close()


def test_celery_beat_runs_the_scheduler_tick(tmp_path: Path) -> None:
    from service.jobs.celery_app import REPORT_TICK_TASK, make_celery

    app = make_celery(
        make_settings(tmp_path, broker_url="redis://127.0.0.1:6379/15", scheduler_interval_seconds=30)
    )
    assert app.conf.beat_schedule["weekly-reports"] == {
        "task": REPORT_TICK_TASK,
        "schedule": 30,
        "options": {"expires": 30},
    }
    assert REPORT_TICK_TASK in app.tasks


@pytest.mark.slow
def test_koe_report_weekly_from_an_export_file(
    tmp_path: Path,
    smtp: tuple[Inbox, int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """End to end on examples/survey_cp932.csv (+ support tickets) with the shipped models."""
    from service.cli import main

    inbox, port = smtp
    # one more W47 answer, with contact details the masking must catch wherever the text shows up
    survey = tmp_path / "survey.csv"
    extra = (
        "99999,2026/11/20 10:00,2,配送が遅いです。折り返しは taro@example.com か 090-1234-5678 まで,"
        "対応を早くしてください,スタンダード,Web,関東,30代,\r\n"
    )
    survey.write_bytes(SURVEY_CP932.read_bytes() + extra.encode("cp932"))
    env = {
        "KOE_DATA_DIR": str(tmp_path / "data"),
        "KOE_SMTP_HOST": "127.0.0.1",
        "KOE_SMTP_PORT": str(port),
        "KOE_SMTP_SECURITY": "none",
        "KOE_SMTP_SENDER": SENDER,
        "KOE_BOOTSTRAP_SAMPLES": "200",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    args = ["report", "weekly", "--input", str(survey), "--week", "2026-W47"]
    args += ["--support", str(ROOT / "examples" / "support_tickets.csv")]
    try:
        assert main([*args, "--to", "a@example.com", "--to", "b@example.com"]) == 0
        assert len(inbox.messages) == 2
        out = capsys.readouterr().out
        assert "sent 2026-W47 to a@example.com" in out and "sent 2026-W47 to b@example.com" in out
        msg = inbox.messages[0]
        assert SUBJECT_RANGE in msg["Subject"] and "survey.csv" in msg["Subject"]
        assert "List-Unsubscribe" in msg and "X-Koe-Report-Week" in msg
        raw = msg.as_string() + "".join(
            p.get_content() for p in msg.walk() if p.get_content_maintype() == "text"
        )
        assert "taro@example.com" not in raw and "090-1234-5678" not in raw
        html = next(p for p in msg.walk() if p.get_content_type() == "text/html").get_content()
        for section in (
            "今週のNPS",
            "増えたテーマ・減ったテーマ",
            "批判者",
            "中立者",
            "推奨者",
            "エンゲージメントシグナル",
            "質問ごとの結果",
            "「理由」",
            "「改善してほしい点」",
            "サポートへの問い合わせ",
        ):
            assert section in html, section

        # the same week again: nothing is sent
        assert main([*args, "--to", "a@example.com"]) == 0
        assert len(inbox.messages) == 2 and "skipped a@example.com" in capsys.readouterr().out

        # dry run: the .eml and the standalone page, nothing sent
        dry = ["report", "weekly", "--input", str(survey), "--week", "2026-W47", "--to", "c@example.com"]
        assert main([*dry, "--dry-run", "--out", str(tmp_path / "eml")]) == 0
        eml = tmp_path / "eml" / "koe-weekly-2026-W47-c@example.com.eml"
        parsed = message_from_bytes(eml.read_bytes(), policy=default)
        assert SUBJECT_RANGE in parsed["Subject"] and parsed.get_content_type() == "multipart/alternative"
        assert (tmp_path / "eml" / "koe-weekly-2026-W47.html").is_file() and len(inbox.messages) == 2
    finally:
        get_settings.cache_clear()


def test_koe_report_weekly_retries_in_process_and_exits_1_on_failure(
    tmp_path: Path,
    smtp: tuple[Inbox, int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from service.cli import main

    inbox, port = smtp
    settings = _settings(tmp_path, port)
    runtime = Runtime(settings)
    survey_id = _stored_survey(runtime)
    runtime.close()
    env = {
        "KOE_DATA_DIR": str(settings.data_dir),
        "KOE_SMTP_HOST": "127.0.0.1",
        "KOE_SMTP_PORT": str(port),
        "KOE_SMTP_SECURITY": "none",
        "KOE_SMTP_SENDER": SENDER,
        "KOE_REPORT_RETRY_SECONDS": "0.05",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    args = ["report", "weekly", "--survey", survey_id, "--week", "2026-W47"]
    try:
        inbox.data_replies = ["421 4.7.0 too busy", "451 4.3.0 try again later"]
        inbox.rcpt_replies = {"gone@example.com": "550 5.1.1 no such user"}
        assert main([*args, "--to", "a@example.com", "--to", "gone@example.com"]) == 1
        captured = capsys.readouterr()
        assert "sent 2026-W47 to a@example.com (attempt 3)" in captured.out
        assert "FAILED 2026-W47 to gone@example.com after 1 attempt(s)" in captured.err
        assert "retrying in" in captured.err and len(inbox.messages) == 1
        assert main([*args, "--to", "a@example.com"]) == 0  # sent already: nothing goes out
        assert "skipped a@example.com" in capsys.readouterr().out and len(inbox.messages) == 1
        assert main([*args, "--to", "a@example.com", "--force"]) == 0  # explicitly again
        assert len(inbox.messages) == 2
        monkeypatch.delenv("KOE_SMTP_HOST")
        get_settings.cache_clear()
        assert main([*args, "--to", "a@example.com"]) == 2
        assert "KOE_SMTP_HOST" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()
