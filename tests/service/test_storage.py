"""The storage layer on both databases it supports: SQLite (file) and PostgreSQL (real server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select

from models.taxonomy import default_taxonomy
from pipelines.errors import ConfigError
from pipelines.records import SurveyRow, TextResult, ThemeHit
from service.storage.db import Database
from service.storage.keys import authenticate, create_key, list_keys, revoke_key
from service.storage.repository import Repository, RowFilter
from service.storage.tables import Base, RowResult
from service.storage.taxonomies import VersionConflict, current_taxonomy, get_taxonomy, save_taxonomy


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    database.upgrade()
    yield database
    database.dispose()


def test_migrations_build_exactly_the_models(db: Database) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []
    db.upgrade()  # a second upgrade is a no-op


def test_api_keys_are_hashed_scoped_and_revocable(db: Database) -> None:
    info, key = create_key(db, "support tool", "classify,upload")
    assert key.startswith(f"koe_{info.prefix}_") and len(key) > 40
    with db.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT key_hash, scopes FROM api_keys").one()
    assert key not in stored[0] and stored[1] == "classify,upload"
    found = authenticate(db, key)
    assert found is not None and found.allows("classify") and not found.allows("admin")
    assert authenticate(db, key + "x") is None and authenticate(db, "Bearer nonsense") is None
    assert [k.name for k in list_keys(db)] == ["support tool"]
    assert revoke_key(db, info.id) and not revoke_key(db, info.id)
    assert authenticate(db, key) is None
    admin = authenticate(db, create_key(db, "ops", ["admin"])[1])
    assert admin is not None and admin.allows("upload")
    with pytest.raises(ConfigError, match="scopes"):
        create_key(db, "bad", "classify,delete")


def test_taxonomy_versions_only_grow(db: Database) -> None:
    seed = default_taxonomy()
    first = current_taxonomy(db, seed)
    assert first.version == seed.version and first.ids == seed.ids
    second = first.add_theme("parking", "駐車場", examples=["駐車場が狭くて停めにくい"])
    save_taxonomy(db, second, note="add parking", expected_version=second.version)
    assert current_taxonomy(db, seed).version == second.version
    with pytest.raises(VersionConflict):  # a concurrent editor who started from the first version
        save_taxonomy(db, first.rename("price", "料金"), note="rename", expected_version=second.version)
    old = get_taxonomy(db, first.version)
    assert old is not None and "parking" not in old.ids


def _row(n: int, score: int, text: str, segment: str) -> SurveyRow:
    return SurveyRow(
        row=n + 2,
        original={"点数": str(score), "理由": text, "プラン": segment},
        score=score,
        texts={"理由": text},
        segments={"プラン": segment},
    )


def _result(job_id: str, seq: int, row: int, theme: str, sentiment: str) -> RowResult:
    res = TextResult(f"text {seq}", sentiment, {sentiment: 1.0}, [ThemeHit(theme, theme, 0.9, sentiment)])
    return RowResult(
        job_id=job_id,
        seq=seq,
        row=row,
        theme_ids=f"|{theme}|",
        sentiments=f"|{sentiment}|",
        needs_review=False,
        search_text=f"text {seq} 100%_off",
        results={"理由": res.to_dict()},
    )


def _survey_with_job(repo: Repository, tmp_path: Path, n_rows: int = 10, chunk: int = 4) -> tuple[str, str]:
    survey, job = repo.create_survey(
        survey_id="s1",
        filename="s.csv",
        content_hash="ab" * 32,
        size_bytes=1,
        raw_path=str(tmp_path / "s.csv"),
        options={"kind": "survey"},
        taxonomy_version=1,
        chunk_size=chunk,
    )
    repo.add_rows(
        survey.id, [(i, _row(i, i % 11, f"回答{i}", "A" if i % 2 else "B"), None) for i in range(n_rows)]
    )
    return survey.id, job.id


def test_a_chunk_is_committed_once(db: Database, tmp_path: Path) -> None:
    repo = Repository(db)
    survey_id, job_id = _survey_with_job(repo, tmp_path)
    assert repo.plan_chunks(job_id, 10, 4) == 3
    assert repo.pending_chunks(job_id) == [0, 1, 2]
    rows = repo.rows_range(survey_id, 4, 4)
    assert [r.row for r in rows] == [6, 7, 8, 9] and rows[0].texts == {"理由": "回答4"}
    first = [_result(job_id, 4 + i, r.row, "price", "negative") for i, r in enumerate(rows)]
    assert repo.commit_chunk(job_id, 1, first, "w1")
    again = [_result(job_id, 4 + i, r.row, "price", "negative") for i, r in enumerate(rows)]
    assert not repo.commit_chunk(job_id, 1, again, "w2")  # a redelivered chunk writes nothing
    assert repo.progress(job_id) == (4, 1)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(RowResult)) == 4
    assert repo.pending_chunks(job_id) == [0, 2]


def test_planning_is_claimed_once_until_its_lease_runs_out(db: Database, tmp_path: Path) -> None:
    """Two API instances resuming the same job: one claims the planning; the other gets it only when the
    first stops making progress for the lease's length (its heartbeats, ``set_job``, keep it)."""
    from datetime import timedelta

    from service.storage.repository import now

    repo = Repository(db)
    _, job_id = _survey_with_job(repo, tmp_path)
    assert repo.start_planning(job_id, lease_seconds=60)
    assert not repo.start_planning(job_id, lease_seconds=60)  # the second instance backs off
    repo.set_job(job_id, updated_at=now() - timedelta(seconds=30))
    assert not repo.start_planning(job_id, lease_seconds=60)  # a planner 30 s quiet may still be alive
    repo.set_job(job_id, updated_at=now() - timedelta(seconds=61))
    assert repo.start_planning(job_id, lease_seconds=60)  # it died: take over
    repo.plan_chunks(job_id, 10, 4)
    repo.set_job(job_id, updated_at=now() - timedelta(days=1))
    assert not repo.start_planning(job_id, lease_seconds=60)  # planned jobs are never planned again


def test_row_filters_and_purge(db: Database, tmp_path: Path) -> None:
    repo = Repository(db)
    survey_id, job_id = _survey_with_job(repo, tmp_path)
    repo.plan_chunks(job_id, 10, 10)
    results = [
        _result(job_id, i, i + 2, "price" if i < 3 else "delivery", "negative" if i % 2 else "positive")
        for i in range(10)
    ]
    assert repo.commit_chunk(job_id, 0, results, "w")
    total, page = repo.query_rows(survey_id, job_id, RowFilter(theme="price"), limit=2)
    assert total == 3 and [r.row for r, _, _ in page] == [2, 3]
    assert repo.query_rows(survey_id, job_id, RowFilter(theme="pri"), limit=None)[0] == 0
    assert repo.query_rows(survey_id, job_id, RowFilter(sentiment="negative"), limit=None)[0] == 5
    assert repo.query_rows(survey_id, job_id, RowFilter(segment=("プラン", "A")), limit=None)[0] == 5
    assert repo.query_rows(survey_id, job_id, RowFilter(score_min=5, score_max=7), limit=None)[0] == 3
    # LIKE wildcards in user text are taken literally
    assert repo.query_rows(survey_id, job_id, RowFilter(text="100%_off"), limit=None)[0] == 10
    assert repo.query_rows(survey_id, job_id, RowFilter(text="100%_of_"), limit=None)[0] == 0
    analysed = list(repo.iter_analyzed(survey_id, job_id, batch=3))
    assert len(analysed) == 10 and analysed[0][1]["理由"].themes[0].id == "price"
    assert repo.delete_survey(survey_id) is not None
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(RowResult)) == 0
    assert repo.get_job(job_id) is None and repo.get_survey(survey_id) is None


def test_answered_sample_is_spread_evenly_and_bounded(db: Database, tmp_path: Path) -> None:
    repo = Repository(db)
    survey_id, job_id = _survey_with_job(repo, tmp_path, n_rows=30)
    repo.plan_chunks(job_id, 30, 30)
    results = [_result(job_id, i, i + 2, "price", "negative") for i in range(30)]
    for r in results[10:15]:
        r.search_text = ""  # rows without an answer are never sampled
    assert repo.commit_chunk(job_id, 0, results, "w")
    answered, rows = repo.answered_sample(survey_id, job_id, 7)
    assert answered == 25 and len(rows) == 7
    seqs = [r.row - 2 for r in rows]
    assert seqs == [0, 4, 8, 17, 21, 25, 29]  # every 4th answered row, across the whole file
    assert repo.answered_sample(survey_id, job_id, 100)[1][-1].texts == {"理由": "回答29"}
    assert len(repo.answered_sample(survey_id, job_id, 100)[1]) == 25


def test_nul_characters_are_stored(db: Database, tmp_path: Path) -> None:
    """PostgreSQL text cannot hold NUL: the filter columns get U+FFFD, the row's data keeps the original."""
    from service.jobs.work import _row_result

    repo = Repository(db)
    survey_id, job_id = _survey_with_job(repo, tmp_path, n_rows=0)
    row = _row(0, 9, "良い\x00です", "A\x00B")
    repo.add_rows(survey_id, [(0, row, "promoters")])
    repo.plan_chunks(job_id, 1, 1)
    answer = TextResult("良い\x00です", "positive", {"positive": 1.0})
    assert repo.commit_chunk(job_id, 0, [_row_result(job_id, 0, row.row, {"理由": answer})], "w")
    total, page = repo.query_rows(survey_id, job_id, RowFilter(segment=("プラン", "A\ufffdB")), limit=None)
    assert (
        total == 1
        and page[0][0].texts == {"理由": "良い\x00です"}
        and page[0][2]["理由"]["text"] == "良い\x00です"
    )
