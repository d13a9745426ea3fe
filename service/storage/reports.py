"""Report subscriptions and the delivery log: every query the scheduler, the CLI and the API make about them.

Sending is made idempotent here, not in the sender: a delivery is one row per (recipient, source, week)
under a unique constraint, and a sender may only send after :func:`claim_delivery` moved that row to
``sending`` with a conditional UPDATE that exactly one process can win. A ``sent`` row is never claimed again.
A process that died while ``sending`` leaves the row to be claimed again after ``lease`` (at that point the
mail may or may not have left: SMTP has no way to ask, so this rare case errs towards sending).
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from service.storage.db import Database, iso
from service.storage.tables import ReportDelivery, Subscription, Survey

__all__ = [
    "SENDING_LEASE",
    "claim_delivery",
    "create_subscription",
    "delete_subscription",
    "delivery_out",
    "get_delivery",
    "get_subscription",
    "list_deliveries",
    "list_subscriptions",
    "mark_failed",
    "mark_sent",
    "newest_stream_survey",
    "normalize_address",
    "remove_recipient",
    "reset_delivery",
    "unsubscribe_signature",
    "update_subscription",
    "waiting_deliveries",
]

SENDING_LEASE = timedelta(minutes=15)
_SUBSCRIPTION_FIELDS = (
    "name",
    "recipients",
    "survey_id",
    "stream",
    "support_survey_id",
    "weekday",
    "send_time",
    "timezone",
    "active",
)


def _now() -> datetime:
    return datetime.now(UTC)


def normalize_address(address: str) -> str:
    """The form addresses are compared and stored in: trimmed, the domain lower-cased."""
    local, _, domain = address.strip().rpartition("@")
    return f"{local}@{domain.lower()}" if local else address.strip()


# --- subscriptions ----------------------------------------------------------------------------------------------


def create_subscription(db: Database, **fields: Any) -> Subscription:
    stamp = _now()
    sub = Subscription(
        **{k: fields[k] for k in _SUBSCRIPTION_FIELDS if k in fields},
        token=secrets.token_hex(16),
        created_at=stamp,
        updated_at=stamp,
    )
    sub.recipients = [normalize_address(a) for a in sub.recipients or []]
    sub.name = sub.name or ""
    sub.active = True if sub.active is None else sub.active
    with db.session() as s:
        s.add(sub)
    return sub


def get_subscription(db: Database, subscription_id: int) -> Subscription | None:
    with db.session() as s:
        return s.get(Subscription, subscription_id)


def list_subscriptions(db: Database, *, active_only: bool = False) -> list[Subscription]:
    query = select(Subscription).order_by(Subscription.id)
    if active_only:
        query = query.where(Subscription.active.is_(True))
    with db.session() as s:
        return list(s.scalars(query))


def update_subscription(db: Database, subscription_id: int, **fields: Any) -> Subscription | None:
    with db.session() as s:
        sub = s.get(Subscription, subscription_id)
        if sub is None:
            return None
        for key in _SUBSCRIPTION_FIELDS:
            if key in fields:
                value = fields[key]
                if key == "recipients":
                    value = [normalize_address(a) for a in value]
                setattr(sub, key, value)
        sub.updated_at = _now()
        return sub


def delete_subscription(db: Database, subscription_id: int) -> bool:
    """Remove the subscription; its delivery log stays (what was sent, and to whom, is history)."""
    with db.session() as s:
        sub = s.get(Subscription, subscription_id)
        if sub is None:
            return False
        s.delete(sub)
        return True


def unsubscribe_signature(sub: Subscription, recipient: str) -> str:
    """The token of a one-click unsubscribe link: only who received the report can make it."""
    message = normalize_address(recipient).encode("utf-8")
    return hmac.new(sub.token.encode("ascii"), message, hashlib.sha256).hexdigest()[:32]


def remove_recipient(db: Database, subscription_id: int, recipient: str) -> bool:
    """Drop one address from a subscription; True when it was on it."""
    address = normalize_address(recipient)
    with db.session() as s:
        sub = s.get(Subscription, subscription_id)
        if sub is None or address not in (sub.recipients or []):
            return False
        sub.recipients = [a for a in sub.recipients if a != address]
        sub.updated_at = _now()
        return True


def newest_stream_survey(db: Database, pattern: str) -> Survey | None:
    """The newest analysed survey whose file name matches ``pattern`` (``fnmatch``: ``nps_*.csv``)."""
    with db.session() as s:
        for survey in s.scalars(
            select(Survey).where(Survey.current_job_id.is_not(None)).order_by(Survey.created_at.desc())
        ):
            if fnmatch.fnmatchcase(survey.filename, pattern):
                return survey
    return None


# --- deliveries -------------------------------------------------------------------------------------------------


def get_delivery(db: Database, recipient: str, source: str, week: str) -> ReportDelivery | None:
    with db.session() as s:
        return s.scalar(
            select(ReportDelivery).where(
                ReportDelivery.recipient == normalize_address(recipient),
                ReportDelivery.source == source,
                ReportDelivery.week == week,
            )
        )


def claim_delivery(
    db: Database,
    recipient: str,
    source: str,
    week: str,
    *,
    subscription_id: int | None = None,
    now: datetime | None = None,
    lease: timedelta = SENDING_LEASE,
) -> ReportDelivery | None:
    """The delivery row, moved to ``sending`` with one more attempt, if this caller may send it now; else None.

    None when it was sent, failed for good, waits for its next retry, or another process is sending it.
    """
    stamp = now or _now()
    recipient = normalize_address(recipient)
    try:
        with db.session() as s:
            s.add(
                ReportDelivery(
                    subscription_id=subscription_id,
                    recipient=recipient,
                    source=source,
                    week=week,
                    state="pending",
                    attempts=0,
                    created_at=stamp,
                    updated_at=stamp,
                )
            )
    except IntegrityError:
        pass  # the row exists: whether it may be sent is decided below, by the one UPDATE that wins
    with db.session() as s:
        res = s.execute(
            update(ReportDelivery)
            .where(
                ReportDelivery.recipient == recipient,
                ReportDelivery.source == source,
                ReportDelivery.week == week,
                or_(
                    ReportDelivery.state == "pending",
                    and_(
                        ReportDelivery.state == "retry",
                        or_(
                            ReportDelivery.next_attempt_at.is_(None), ReportDelivery.next_attempt_at <= stamp
                        ),
                    ),
                    and_(ReportDelivery.state == "sending", ReportDelivery.updated_at < stamp - lease),
                ),
            )
            .values(state="sending", attempts=ReportDelivery.attempts + 1, updated_at=stamp)
        )
        if not res.rowcount:  # type: ignore[attr-defined]
            return None
    return get_delivery(db, recipient, source, week)


def mark_sent(db: Database, delivery_id: int, message_id: str, *, now: datetime | None = None) -> None:
    stamp = now or _now()
    with db.session() as s:
        s.execute(
            update(ReportDelivery)
            .where(ReportDelivery.id == delivery_id)
            .values(
                state="sent",
                message_id=message_id[:255],
                sent_at=stamp,
                updated_at=stamp,
                next_attempt_at=None,
                last_error=None,
                error_code=None,
            )
        )


def mark_failed(
    db: Database,
    delivery_id: int,
    error: str,
    *,
    code: int | None = None,
    retry_at: datetime | None = None,
    now: datetime | None = None,
) -> None:
    """Record a failed attempt: ``retry`` at ``retry_at``, or ``failed`` for good when it is None."""
    with db.session() as s:
        s.execute(
            update(ReportDelivery)
            .where(ReportDelivery.id == delivery_id)
            .values(
                state="retry" if retry_at is not None else "failed",
                last_error=error[:4000],
                error_code=code,
                next_attempt_at=retry_at,
                updated_at=now or _now(),
            )
        )


def reset_delivery(db: Database, delivery_id: int) -> ReportDelivery | None:
    """Make a failed (or sent) delivery sendable again, with its attempts counted from zero."""
    with db.session() as s:
        delivery = s.get(ReportDelivery, delivery_id)
        if delivery is None:
            return None
        delivery.state = "pending"
        delivery.attempts = 0
        delivery.next_attempt_at = None
        delivery.updated_at = _now()
        return delivery


def waiting_deliveries(db: Database, *, now: datetime | None = None) -> list[ReportDelivery]:
    """Deliveries that may be attempted now: pending, due retries, and stale ``sending`` rows."""
    stamp = now or _now()
    with db.session() as s:
        return list(
            s.scalars(
                select(ReportDelivery)
                .where(
                    or_(
                        ReportDelivery.state == "pending",
                        and_(ReportDelivery.state == "retry", ReportDelivery.next_attempt_at <= stamp),
                        and_(
                            ReportDelivery.state == "sending",
                            ReportDelivery.updated_at < stamp - SENDING_LEASE,
                        ),
                    )
                )
                .order_by(ReportDelivery.id)
            )
        )


def list_deliveries(
    db: Database,
    *,
    subscription_id: int | None = None,
    states: Sequence[str] | None = None,
    week: str | None = None,
    limit: int = 100,
) -> list[ReportDelivery]:
    query = select(ReportDelivery).order_by(ReportDelivery.id.desc()).limit(limit)
    if subscription_id is not None:
        query = query.where(ReportDelivery.subscription_id == subscription_id)
    if states:
        query = query.where(ReportDelivery.state.in_(list(states)))
    if week is not None:
        query = query.where(ReportDelivery.week == week)
    with db.session() as s:
        return list(s.scalars(query))


def delivery_out(d: ReportDelivery) -> dict[str, Any]:
    """A delivery as JSON (the API and ``koe report deliveries`` print the same fields)."""

    return {
        "id": d.id,
        "subscription_id": d.subscription_id,
        "recipient": d.recipient,
        "source": d.source,
        "week": d.week,
        "state": d.state,
        "attempts": d.attempts,
        "last_error": d.last_error,
        "error_code": d.error_code,
        "next_attempt_at": iso(d.next_attempt_at),
        "message_id": d.message_id,
        "created_at": iso(d.created_at),
        "updated_at": iso(d.updated_at),
        "sent_at": iso(d.sent_at),
    }
