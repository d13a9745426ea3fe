"""``koe apikey`` and ``koe db``: the commands an operator runs before ``koe serve``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.cli import main
from service.config import Settings, get_settings
from service.storage.db import Database
from service.storage.keys import authenticate


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pg_url: str) -> Settings:
    monkeypatch.setenv("KOE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("KOE_DATABASE_URL", pg_url)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def test_db_upgrade_and_apikey_lifecycle(env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade"]) == 0
    assert main(["apikey", "create", "--name", "helpdesk", "--scopes", "classify,upload"]) == 0
    out = capsys.readouterr()
    key = out.out.strip()
    assert key.startswith("koe_") and "only time" in out.err
    db = Database(env.database)
    info = authenticate(db, key)
    assert info is not None and sorted(info.scopes) == ["classify", "upload"]
    assert main(["apikey", "list"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [k["name"] for k in listed] == ["helpdesk"] and key not in json.dumps(listed)
    assert main(["apikey", "revoke", str(listed[0]["id"])]) == 0
    assert authenticate(db, key) is None
    assert main(["apikey", "revoke", str(listed[0]["id"])]) == 2  # already revoked: a clear error, exit 2
    assert "no active API key" in capsys.readouterr().err
    assert main(["apikey", "create", "--name", "x", "--scopes", "everything"]) == 2
    db.dispose()


def test_worker_needs_a_broker(env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worker"]) == 2
    assert "KOE_BROKER_URL" in capsys.readouterr().err
