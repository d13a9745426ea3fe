"""Taxonomy versions in the database. Version numbers only grow; the newest is the current one.

The first read seeds the store with the shipped taxonomy (or ``KOE_TAXONOMY_PATH``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from models.taxonomy import Taxonomy
from pipelines.errors import ConfigError
from service.storage.db import Database, iso
from service.storage.tables import TaxonomyVersion

__all__ = ["VersionConflict", "current_taxonomy", "get_taxonomy", "list_versions", "save_taxonomy"]


class VersionConflict(ConfigError):
    """Someone else saved a taxonomy version first; re-read and try again."""


def _row_to_taxonomy(row: TaxonomyVersion) -> Taxonomy:
    return Taxonomy.from_dict({**row.document, "version": row.version}, source=f"taxonomy v{row.version}")


def current_taxonomy(db: Database, seed: Taxonomy) -> Taxonomy:
    with db.session() as s:
        row = s.scalar(select(TaxonomyVersion).order_by(TaxonomyVersion.version.desc()).limit(1))
        if row is not None:
            return _row_to_taxonomy(row)
    try:
        return save_taxonomy(db, seed, note="shipped taxonomy", expected_version=seed.version)
    except VersionConflict:  # another process seeded it at the same moment
        return current_taxonomy(db, seed)


def get_taxonomy(db: Database, version: int) -> Taxonomy | None:
    with db.session() as s:
        row = s.get(TaxonomyVersion, version)
        return _row_to_taxonomy(row) if row else None


def list_versions(db: Database) -> list[dict[str, object]]:
    with db.session() as s:
        rows = s.scalars(select(TaxonomyVersion).order_by(TaxonomyVersion.version))
        return [
            {
                "version": r.version,
                "name": r.name,
                "note": r.note,
                "themes": len(r.document.get("themes", [])),
                "created_at": iso(r.created_at),
            }
            for r in rows
        ]


def save_taxonomy(db: Database, taxonomy: Taxonomy, *, note: str, expected_version: int) -> Taxonomy:
    """Store ``taxonomy`` as ``expected_version``; a version that exists already raises ``VersionConflict``."""
    try:
        with db.session() as s:
            newest = s.scalar(select(func.max(TaxonomyVersion.version)))
            if newest is not None and expected_version <= newest:
                raise VersionConflict(
                    f"taxonomy version {expected_version} already exists (newest is {newest}); reload and retry",
                    value=str(expected_version),
                )
            doc = taxonomy.to_dict()
            doc.pop("version", None)
            s.add(
                TaxonomyVersion(
                    version=expected_version,
                    name=taxonomy.name,
                    document=doc,
                    note=note[:500],
                    created_at=datetime.now(UTC),
                )
            )
    except IntegrityError as exc:
        raise VersionConflict(
            f"taxonomy version {expected_version} already exists", value=str(expected_version)
        ) from exc
    return Taxonomy.from_dict({**doc, "version": expected_version})
