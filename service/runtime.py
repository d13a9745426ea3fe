"""What one koe process holds once: the database, the models (per taxonomy version) and the job runner.

The CLI, the API and Celery workers each build one ``Runtime`` from ``Settings``; models load lazily
on first use and are shared by every request and job of the process.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING

from models.taxonomy import Taxonomy, default_taxonomy, load_taxonomy
from pipelines.errors import ConfigError
from service.config import Settings
from service.storage.db import Database
from service.storage.repository import Repository
from service.storage.taxonomies import current_taxonomy, get_taxonomy

if TYPE_CHECKING:
    from models.bundle import ModelBundle
    from service.jobs.work import JobContext

__all__ = ["Runtime", "base_bundle"]


def base_bundle(settings: Settings) -> ModelBundle:
    """The process-wide models for these settings (loaded once)."""
    from models.bundle import get_bundle

    return get_bundle(
        str(settings.artifacts_dir) if settings.artifacts_dir else None,
        settings.encoder,
        str(settings.taxonomy_path) if settings.taxonomy_path else None,
        settings.num_threads,
        str(settings.cache_dir),
    )


class Runtime:
    def __init__(self, settings: Settings, *, migrate: bool | None = None) -> None:
        self.settings = settings
        self.db = Database(settings.database)
        if settings.auto_migrate if migrate is None else migrate:
            self.db.upgrade()
        self.repo = Repository(self.db)
        self._bundles: dict[int, ModelBundle] = {}
        self._lock = threading.Lock()

    @cached_property
    def seed_taxonomy(self) -> Taxonomy:
        return (
            load_taxonomy(self.settings.taxonomy_path) if self.settings.taxonomy_path else default_taxonomy()
        )

    def taxonomy(self, version: int | None = None) -> Taxonomy:
        if version is None:
            return current_taxonomy(self.db, self.seed_taxonomy)
        found = get_taxonomy(self.db, version)
        if found is None and current_taxonomy(self.db, self.seed_taxonomy).version == version:
            found = get_taxonomy(self.db, version)  # the store was empty and has just been seeded
        if found is None:
            raise ConfigError("unknown taxonomy version", value=str(version))
        return found

    def models_loaded(self) -> bool:
        return bool(self._bundles)

    def bundle(self, taxonomy_version: int | None = None) -> ModelBundle:
        """Models under a stored taxonomy version (the current one by default); cached per version."""
        taxonomy = self.taxonomy(taxonomy_version)
        with self._lock:
            if taxonomy.version not in self._bundles:
                self._bundles[taxonomy.version] = base_bundle(self.settings).with_taxonomy(taxonomy)
            return self._bundles[taxonomy.version]

    def job_context(self) -> JobContext:
        from service.insights import insight_options, new_assistant
        from service.jobs.work import JobContext

        s = self.settings
        return JobContext(
            repo=self.repo,
            bundle_for=self.bundle,
            max_rows=s.max_upload_rows,
            plan_lease=s.job_plan_lease,
            min_count=s.min_count,
            bootstrap=s.bootstrap_samples,
            seed=s.seed,
            insights=insight_options(s) if s.analysis_insights else None,
            new_assistant=new_assistant(s),
        )

    def close(self) -> None:
        self.db.dispose()
