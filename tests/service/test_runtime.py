"""Runtime: the taxonomy file named by KOE_TAXONOMY_PATH only seeds an empty store, and says so when it drifts."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from models.taxonomy import default_taxonomy, load_taxonomy
from service.runtime import Runtime
from service.storage.taxonomies import save_taxonomy
from tests.service.conftest import make_settings


def test_seed_drift_only_when_the_file_changed_after_seeding(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = default_taxonomy().save(tmp_path / "themes.yaml")
    settings = make_settings(tmp_path, taxonomy_path=path)

    first = Runtime(settings)
    assert first.seed_drift() is None  # seeds the store from the file: nothing to report
    # an edit through the API makes a new version; the file is still what seeded version 1
    edited = first.taxonomy().rename("price", "料金")
    save_taxonomy(first.db, edited, note="rename", expected_version=edited.version)
    assert first.seed_drift() is None
    first.close()

    changed = load_taxonomy(path).rename("delivery", "配送")
    changed.save(path)
    again = Runtime(settings)
    drift = again.seed_drift()
    assert drift is not None and str(path) in drift
    assert "version 1" in drift and f"version {edited.version}" in drift  # what it seeded, what is used
    assert again.taxonomy().get("delivery").name == default_taxonomy().get("delivery").name  # not applied
    with caplog.at_level(logging.WARNING, logger="service.runtime"):
        again.warn_seed_drift()
    assert any(str(path) in r.getMessage() for r in caplog.records)
    again.close()


def test_no_drift_check_without_a_taxonomy_path(tmp_path: Path) -> None:
    rt = Runtime(make_settings(tmp_path))
    assert rt.seed_drift() is None
    rt.close()
