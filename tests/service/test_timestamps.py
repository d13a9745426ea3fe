"""Stored timestamps are written one way in every answer, whatever the database hands back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from service.storage.db import as_utc, iso


def test_naive_values_are_utc_and_answers_are_iso_to_the_second() -> None:
    naive = datetime(2026, 11, 23, 13, 30, 37, 712247)  # what SQLite hands back
    aware = naive.replace(tzinfo=UTC)  # what PostgreSQL hands back
    assert as_utc(naive) == aware and as_utc(aware) is aware
    assert iso(naive) == iso(aware) == "2026-11-23T13:30:37+00:00"
    tokyo = aware.astimezone(timezone(timedelta(hours=9)))
    assert as_utc(tokyo) == aware  # an aware value keeps its instant
    assert iso(None) is None
