"""Uploads between the dashboard's preview and its confirmation.

The preview (columns, roles, problems) and the start of the analysis are two form posts. A browser cannot
attach the same file to the second form, so the preview keeps the file under a random token and the
confirmation names the token: the file is sent once, with or without JavaScript. A pending file that is
never confirmed is removed after ``MAX_AGE``.
"""

from __future__ import annotations

import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from service.uploads import store_upload

__all__ = ["MAX_AGE", "PendingUpload", "discard", "find", "keep"]

MAX_AGE = 24 * 3600  # seconds
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")
_NAME = "filename.txt"


@dataclass(frozen=True)
class PendingUpload:
    token: str
    path: Path
    filename: str  # as the user's file was called (display name)


def _root(uploads_dir: Path) -> Path:
    return uploads_dir / "pending"


def _sweep(root: Path) -> None:
    cutoff = time.time() - MAX_AGE
    for entry in root.iterdir() if root.is_dir() else ():
        if entry.is_dir() and entry.stat().st_mtime < cutoff:
            shutil.rmtree(entry, ignore_errors=True)


def keep(stream: IO[bytes], filename: str | None, uploads_dir: Path, max_bytes: int) -> PendingUpload:
    """Store the file under a new token (the same size limit as any upload applies)."""
    root = _root(uploads_dir)
    _sweep(root)
    token = secrets.token_urlsafe(24)  # 32 characters of [A-Za-z0-9_-]
    folder = root / token
    stored = store_upload(stream, filename, folder, max_bytes)
    (folder / _NAME).write_text(stored.filename, encoding="utf-8")
    return PendingUpload(token, stored.path, stored.filename)


def find(uploads_dir: Path, token: str) -> PendingUpload | None:
    """The pending upload of ``token``; None for an unknown, expired or malformed token."""
    if not _TOKEN.fullmatch(token):
        return None
    folder = _root(uploads_dir) / token
    try:
        filename = (folder / _NAME).read_text(encoding="utf-8")
        path = next(p for p in folder.iterdir() if p.name != _NAME and not p.name.startswith("."))
    except (OSError, StopIteration):
        return None
    return PendingUpload(token, path, filename)


def discard(uploads_dir: Path, token: str) -> None:
    if _TOKEN.fullmatch(token):
        shutil.rmtree(_root(uploads_dir) / token, ignore_errors=True)
