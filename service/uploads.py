"""Receiving an upload: the bytes go to disk under their SHA-256, the form fields become ingest options.

Raw files are kept (``KOE_DATA_DIR/uploads/<sha256><suffix>``) so any result can be recomputed; the
same bytes uploaded twice are stored once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import IO, TYPE_CHECKING, Any

from pipelines.errors import FileTooLargeError, InputError
from service.storage.repository import new_id

if TYPE_CHECKING:
    from service.runtime import Runtime
    from service.storage.tables import Job, Survey

__all__ = ["DEFAULT_OPTIONS", "StoredUpload", "accept_upload", "parse_mapping", "store_upload"]

DEFAULT_OPTIONS: dict[str, Any] = {"encoding": None, "kind": "survey", "metric": "nps", "mapping": None}

_MAPPING_KEYS = {"score": str, "texts": list, "respondent_id": str, "date": str, "segments": list}
_CHUNK = 1024 * 1024


@dataclass
class StoredUpload:
    path: Path
    filename: str
    sha256: str
    size: int


def _display_name(filename: str | None) -> str:
    name = PurePath((filename or "").replace("\\", "/")).name
    name = "".join(c for c in name if c.isprintable()).strip()  # no NUL or control characters in a name
    return name[:255] or "upload"


def store_upload(stream: IO[bytes], filename: str | None, uploads_dir: Path, max_bytes: int) -> StoredUpload:
    """Copy ``stream`` to ``uploads_dir`` while hashing it; over ``max_bytes`` raises (and keeps nothing)."""
    name = _display_name(filename)
    uploads_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(dir=uploads_dir, prefix=".incoming-")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            while block := stream.read(_CHUNK):
                size += len(block)
                if size > max_bytes:
                    raise FileTooLargeError(
                        f"the file is larger than the upload limit of {max_bytes:,} bytes (KOE_MAX_UPLOAD_BYTES)",
                        file=name,
                    )
                digest.update(block)
                out.write(block)
        sha = digest.hexdigest()
        suffix = PurePath(name).suffix.lower()[:10]
        final = uploads_dir / f"{sha}{suffix if suffix.isascii() else ''}"
        if final.exists():
            tmp.unlink()
        else:
            shutil.move(tmp, final)
        return StoredUpload(final, name, sha, size)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def accept_upload(runtime: Runtime, stored: StoredUpload, options: dict[str, Any]) -> tuple[Survey, Job]:
    """A new survey for a stored upload, with its analysis job queued under the current taxonomy."""
    return runtime.repo.create_survey(
        survey_id=new_id(),
        filename=stored.filename,
        content_hash=stored.sha256,
        size_bytes=stored.size,
        raw_path=str(stored.path),
        options=options,
        taxonomy_version=runtime.taxonomy().version,
        chunk_size=runtime.settings.job_chunk_rows,
    )


def parse_mapping(raw: str | None, *, filename: str) -> dict[str, Any] | None:
    """The optional ``mapping`` form field: a JSON object naming the file's columns per role."""
    if raw is None or not raw.strip():
        return None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"the 'mapping' field is not valid JSON: {exc.msg} at character {exc.pos + 1}",
            file=filename,
            column="mapping",
            value=raw[:200],
        ) from exc
    if not isinstance(data, dict):
        raise InputError(
            "the 'mapping' field must be a JSON object", file=filename, column="mapping", value=raw[:200]
        )
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _MAPPING_KEYS:
            raise InputError(
                f"unknown mapping role '{key}'; roles: {', '.join(_MAPPING_KEYS)}",
                file=filename,
                column="mapping",
            )
        if _MAPPING_KEYS[key] is list:
            value = [value] if isinstance(value, str) else value
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InputError(
                    f"mapping '{key}' must be a column name or a list of column names",
                    file=filename,
                    column="mapping",
                )
        elif value is not None and not isinstance(value, str):
            raise InputError(f"mapping '{key}' must be a column name", file=filename, column="mapping")
        out[key] = value
    return out
