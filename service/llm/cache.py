"""Validated LLM answers on disk, keyed by the SHA-256 of the request (model, messages, schema, options).

Only answers that passed the schema and the caller's check are written, so a hit never replays a broken
answer. One small JSON file per answer under ``<KOE_CACHE_DIR>/llm/<2 hex>/<64 hex>.json``; a write goes to
a temporary file first and is renamed into place, so concurrent workers never read half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["ResponseCache", "request_key"]


def request_key(request: dict[str, Any]) -> str:
    """SHA-256 of the request as canonical JSON (sorted keys, no whitespace)."""
    canonical = json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ResponseCache:
    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            entry = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # missing or unreadable: ask again
        data = entry.get("data") if isinstance(entry, dict) else None
        return data if isinstance(data, dict) else None

    def put(self, key: str, data: dict[str, Any], *, model: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"model": model, "created_at": datetime.now(UTC).isoformat(timespec="seconds"), "data": data}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(entry, f, ensure_ascii=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
