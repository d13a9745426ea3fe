"""Dashboard accounts: scrypt password hashes, roles, create / list / change role / change password / disable.

scrypt (RFC 7914, in the standard library) with n=2**14, r=8, p=1 costs ~16 MiB and tens of milliseconds per
check: slow enough that a stolen table cannot be brute-forced cheaply, fast enough for a sign-in. The stored
string carries its parameters, so they can be raised later without invalidating existing hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from pipelines.errors import Refused
from service.storage.db import Database
from service.storage.tables import User

__all__ = [
    "ROLES",
    "UserInfo",
    "UserRejected",
    "authenticate_user",
    "change_password",
    "check_password",
    "create_user",
    "get_user",
    "hash_password",
    "list_users",
    "set_disabled",
    "set_role",
    "verify_password",
]

ROLES = ("admin", "analyst", "viewer")  # each allows what the ones after it allow
_RANK = {role: i for i, role in enumerate(reversed(ROLES))}
_N, _R, _P = 2**14, 8, 1
MIN_PASSWORD = 10
_EMAIL = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+")
# Compared against when the e-mail is unknown, so a sign-in takes as long whether or not the account exists.
_DUMMY = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        name, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return name == "scrypt" and hmac.compare_digest(got, expected)


@dataclass(frozen=True)
class UserInfo:
    id: int
    email: str
    name: str
    role: str
    created_at: datetime
    disabled: bool
    password_stamp: str  # changes when the password does: sessions signed with an old stamp stop working

    @classmethod
    def of(cls, row: User) -> UserInfo:
        stamp = hashlib.sha256(row.password_hash.encode("utf-8")).hexdigest()[:16]
        return cls(row.id, row.email, row.name, row.role, row.created_at, row.disabled_at is not None, stamp)

    def allows(self, role: str) -> bool:
        """True if this user's role is ``role`` or above it (admin > analyst > viewer)."""
        return _RANK[self.role] >= _RANK[role]


def _check(email: str, role: str, password: str | None) -> str:
    email = email.strip().lower()
    if not _EMAIL.fullmatch(email) or len(email) > 320:
        raise UserRejected(
            "The 'email' of a user must be an e-mail address", "メールアドレスの形式が正しくありません。"
        )
    if role not in ROLES:
        raise UserRejected(
            f"The 'role' of a user must be one of {', '.join(ROLES)}",
            f"権限は {', '.join(ROLES)} のいずれかにしてください。",
        )
    if password is not None:
        check_password(password)
    return email


class UserRejected(Refused):
    """A user's e-mail, role or password that is refused (``japanese``: the dashboard's message)."""


def check_password(password: str) -> None:
    """The password policy, the same for new users and for changed passwords."""
    if len(password) < MIN_PASSWORD:
        raise UserRejected(
            f"The 'password' of a user must be at least {MIN_PASSWORD} characters",
            f"パスワードは{MIN_PASSWORD}文字以上にしてください。",
        )


def create_user(db: Database, email: str, password: str, role: str, name: str = "") -> UserInfo:
    email = _check(email, role, password)
    row = User(
        email=email,
        name=name.strip()[:200],
        password_hash=hash_password(password),
        role=role,
        created_at=datetime.now(UTC),
    )
    try:
        with db.session() as s:
            s.add(row)
            s.flush()
            return UserInfo.of(row)
    except IntegrityError as exc:
        raise UserRejected(
            f"a user with this e-mail address exists already: {email}",
            f"{email} のユーザーは既に登録されています。",
        ) from exc


def authenticate_user(db: Database, email: str, password: str) -> UserInfo | None:
    with db.session() as s:
        row = s.scalar(select(User).where(User.email == email.strip().lower()))
    if row is None:
        verify_password(password, _DUMMY)
        return None
    if not verify_password(password, row.password_hash) or row.disabled_at is not None:
        return None
    return UserInfo.of(row)


def change_password(db: Database, user_id: int, current: str, new: str) -> UserInfo | None:
    """Set a new password if ``current`` is the user's password (None if it is not). The new one follows
    the policy of ``create_user``; every session signed with the old one stops working."""
    check_password(new)
    with db.session() as s:
        row = s.get(User, user_id)
        if row is None or row.disabled_at is not None or not verify_password(current, row.password_hash):
            return None
        if verify_password(new, row.password_hash):
            raise UserRejected(
                "The new 'password' must differ from the current one",
                "新しいパスワードは現在のパスワードと別のものにしてください。",
            )
        row.password_hash = hash_password(new)
        s.flush()
        return UserInfo.of(row)


def get_user(db: Database, user_id: int) -> UserInfo | None:
    with db.session() as s:
        row = s.get(User, user_id)
        return UserInfo.of(row) if row else None


def list_users(db: Database) -> list[UserInfo]:
    with db.session() as s:
        return [UserInfo.of(r) for r in s.scalars(select(User).order_by(User.id))]


def set_role(db: Database, user_id: int, role: str) -> bool:
    if role not in ROLES:
        raise UserRejected(
            f"The 'role' of a user must be one of {', '.join(ROLES)}",
            f"権限は {', '.join(ROLES)} のいずれかにしてください。",
        )
    with db.session() as s:
        return bool(s.execute(update(User).where(User.id == user_id).values(role=role)).rowcount)  # type: ignore[attr-defined]


def set_disabled(db: Database, user_id: int, disabled: bool) -> bool:
    value = datetime.now(UTC) if disabled else None
    with db.session() as s:
        return bool(s.execute(update(User).where(User.id == user_id).values(disabled_at=value)).rowcount)  # type: ignore[attr-defined]
