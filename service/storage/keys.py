"""API keys: ``koe_<prefix>_<secret>``, shown once, stored as a SHA-256 digest, with scopes.

The secret has 256 bits of entropy, so a plain SHA-256 (not a slow password hash) is the right
digest: nobody can guess a key, and a lookup by digest costs one index probe per request.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from pipelines.errors import Refused
from service.storage.db import Database, as_utc, iso
from service.storage.tables import ApiKey

__all__ = ["SCOPES", "KeyInfo", "authenticate", "create_key", "list_keys", "revoke_key"]

SCOPES = ("classify", "upload", "admin")  # admin may do everything
_TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per key


class KeyInfo:
    def __init__(self, row: ApiKey) -> None:
        self.id = row.id
        self.name = row.name
        self.prefix = row.prefix
        self.scopes = frozenset(s for s in row.scopes.split(",") if s)
        self.created_at = row.created_at
        self.last_used_at = row.last_used_at
        self.revoked = row.revoked_at is not None

    def allows(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "scopes": sorted(self.scopes),
            "created_at": iso(self.created_at),
            "last_used_at": iso(self.last_used_at),
            "revoked": self.revoked,
        }


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_scopes(scopes: str | list[str]) -> list[str]:
    items = [s.strip() for s in (scopes.split(",") if isinstance(scopes, str) else scopes) if s.strip()]
    unknown = [s for s in items if s not in SCOPES]
    if unknown or not items:
        raise Refused(
            f"The 'scopes' of an API key must be some of {', '.join(SCOPES)}",
            f"APIキーの範囲を {', '.join(SCOPES)} から1つ以上選んでください。",
            value=",".join(items),
        )
    return sorted(set(items))


def create_key(db: Database, name: str, scopes: str | list[str]) -> tuple[KeyInfo, str]:
    """A new key and its plaintext (the only time it exists outside the caller's hands)."""
    if not name.strip() or len(name) > 100:
        raise Refused(
            "The 'name' of an API key must be 1-100 characters",
            "APIキーの名前は1〜100文字で入力してください。",
            value=name,
        )
    allowed = parse_scopes(scopes)
    prefix = secrets.token_hex(4)
    key = f"koe_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        name=name.strip(),
        prefix=prefix,
        key_hash=_digest(key),
        scopes=",".join(allowed),
        created_at=datetime.now(UTC),
    )
    with db.session() as s:
        s.add(row)
        s.flush()
        info = KeyInfo(row)
    return info, key


def authenticate(db: Database, key: str) -> KeyInfo | None:
    """The key's record if it exists and is not revoked."""
    if not key.startswith("koe_"):
        return None
    now = datetime.now(UTC)
    with db.session() as s:
        row = s.scalar(select(ApiKey).where(ApiKey.key_hash == _digest(key)))
        if row is None or row.revoked_at is not None:
            return None
        last = row.last_used_at
        if last is None or now - as_utc(last) > _TOUCH_EVERY:
            s.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
        return KeyInfo(row)


def list_keys(db: Database) -> list[KeyInfo]:
    with db.session() as s:
        return [KeyInfo(r) for r in s.scalars(select(ApiKey).order_by(ApiKey.id))]


def revoke_key(db: Database, key_id: int) -> bool:
    with db.session() as s:
        res = s.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
        return bool(res.rowcount)  # type: ignore[attr-defined]
