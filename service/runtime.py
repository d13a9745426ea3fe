"""What one koe process holds once: the database, the models (per taxonomy version) and the job runner.

The CLI, the API and Celery workers each build one ``Runtime`` from ``Settings``; models load lazily
on first use and are shared by every request and job of the process.
"""

from __future__ import annotations

import logging
import threading
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from models.taxonomy import Taxonomy, default_taxonomy, load_taxonomy
from pipelines.errors import ConfigError
from service.config import Settings
from service.storage.db import Database
from service.storage.repository import Repository
from service.storage.taxonomies import current_taxonomy, get_taxonomy, list_versions

if TYPE_CHECKING:
    from models.bundle import ModelBundle
    from service.jobs.work import JobContext

__all__ = ["Runtime", "base_bundle"]

log = logging.getLogger(__name__)


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

    def seed_drift(self) -> str | None:
        """Why ``KOE_TAXONOMY_PATH`` is not what the service uses, when its file changed after it seeded the store.

        The file only seeds an empty database (the first stored version); later edits go through the API or
        the dashboard and make new versions. An operator who edits the file afterwards would otherwise see
        nothing change and no reason why. Edits made through the API are not drift: the file is compared with
        the version it seeded, not with the current one."""
        path = self.settings.taxonomy_path
        if not path:
            return None
        current = self.taxonomy()  # seeds an empty store first
        first = min(int(v["version"]) for v in list_versions(self.db))  # type: ignore[call-overload]
        seeded = get_taxonomy(self.db, first)
        if seeded is not None and [t.to_dict() for t in seeded.themes] == [
            t.to_dict() for t in self.seed_taxonomy.themes
        ]:
            return None
        return (
            f"KOE_TAXONOMY_PATH={path} differs from the taxonomy the database was seeded with (version {first}); "
            f"the file only seeds an empty database, so its changes are not used. The service uses stored "
            f"version {current.version}; change themes through /v1/taxonomy or the dashboard's taxonomy page."
        )

    def warn_seed_drift(self) -> None:
        """Log ``seed_drift`` at start-up; a database that cannot be read yet is reported by /readyz instead."""
        try:
            drift = self.seed_drift()
        except SQLAlchemyError as exc:
            log.warning("taxonomy seed not compared: the database cannot be read (%s)", type(exc).__name__)
            return
        if drift:
            log.warning(drift)

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
