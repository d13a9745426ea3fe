"""Weekly reports: where their rows come from, and delivery — once per recipient and week, retried with backoff.

    source    a stored survey (``survey:<id>``), the newest upload matching a file pattern (``stream:<pattern>``),
              or an export file analysed on the spot (``file:<name>``, ``koe report weekly --input``)
    build     the source's analysed rows -> ``pipelines.report.weekly`` -> a WeeklyReport (charts drawn once)
    deliver   per recipient: claim the (recipient, source, week) row, send, record sent / retry / failed
    tick      every active subscription whose weekday and time (in its own time zone) have come: the last
              complete week before that moment; plus any delivery whose retry is due

``koe scheduler`` calls :func:`tick` every ``KOE_SCHEDULER_INTERVAL_SECONDS``; Celery beat calls it through
the ``koe.report_tick`` task. Both may run at once: the delivery log decides who sends (see
``service.storage.reports``). Failures are logged, stored on the delivery (error, SMTP code, attempts, next
attempt) and listed by ``koe report deliveries`` and ``GET /v1/subscriptions/{id}/deliveries``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipelines.errors import ConfigError, KoeError
from pipelines.nps import Period
from pipelines.records import AnalyzedRow, IngestInfo
from pipelines.report.weekly import WeeklyReport, last_complete_week, weekly_report_from_rows
from service.config import Settings
from service.mailer import MailError, PreparedReport, SmtpConfig, build_message, prepare_report, send_message
from service.storage import reports as store
from service.storage.tables import ReportDelivery, Subscription

if TYPE_CHECKING:
    from models.bundle import ModelBundle
    from service.runtime import Runtime

__all__ = [
    "Outcome",
    "backoff",
    "deliver",
    "due_week",
    "file_rows",
    "report_for_file",
    "report_for_survey",
    "run_scheduler",
    "subscription_source",
    "tick",
    "zone",
]

log = logging.getLogger("koe.reports")
BuildFn = Callable[[], WeeklyReport]


@dataclass(frozen=True)
class Outcome:
    """What happened to one recipient's report: sent, retry (a later attempt is scheduled), failed, or skipped."""

    recipient: str
    week: str
    source: str
    state: str
    delivery_id: int | None = None
    attempts: int = 0
    error: str | None = None
    next_attempt_at: datetime | None = None
    message: Any = field(default=None, repr=False, compare=False)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown time zone {name!r}; use an IANA name such as Asia/Tokyo", value=name
        ) from None


def backoff(settings: Settings, attempts: int) -> timedelta:
    """Wait before the next attempt after ``attempts`` failed ones: base, 2×base, 4×base …, capped."""
    seconds = settings.report_retry_seconds * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.report_retry_max_seconds))


# --- sources ----------------------------------------------------------------------------------------------------


def _analysed_survey(runtime: Runtime, survey_id: str) -> tuple[list[AnalyzedRow], IngestInfo, Any, Any]:
    from service.jobs.work import ingest_info

    repo = runtime.repo
    survey = repo.get_survey(survey_id)
    if survey is None:
        raise ConfigError(f"no survey with id '{survey_id}' (deleted, or never uploaded)", value=survey_id)
    job = repo.get_job(survey.current_job_id) if survey.current_job_id else None
    if job is None or job.summary is None or survey.info is None:
        raise ConfigError(f"survey '{survey_id}' has no finished analysis yet", value=survey_id)
    rows = [AnalyzedRow.of(row, answers) for row, answers in repo.iter_analyzed(survey.id, job.id)]
    return rows, ingest_info(survey.info), survey, job


def report_for_survey(
    runtime: Runtime, survey_id: str, week: Period, *, support_survey_id: str | None = None
) -> WeeklyReport:
    """The weekly report of a stored survey (its current analysis); no model is loaded."""
    rows, info, survey, job = _analysed_survey(runtime, survey_id)
    support = None
    if support_survey_id:
        s_rows, s_info, _, _ = _analysed_survey(runtime, support_survey_id)
        support = (s_rows, s_info)
    s = runtime.settings
    return weekly_report_from_rows(
        rows,
        info,
        [t.to_dict() for t in runtime.taxonomy(job.taxonomy_version).themes],
        week,
        model_info=dict((job.summary or {}).get("model") or {}),
        support=support,
        min_count=s.min_count,
        seed=s.seed,
        bootstrap=s.bootstrap_samples,
        source=survey.filename,
        survey_id=survey.id,
        dashboard_url=s.dashboard_url,
    )


def file_rows(
    path: str | Path, bundle: ModelBundle, settings: Settings, **read_options: Any
) -> tuple[list[AnalyzedRow], IngestInfo]:
    """Read and classify an export file (the stages of ``koe analyze``, kept in memory, nothing written)."""
    from itertools import islice

    from pipelines.ingest import read_survey
    from pipelines.run import classify_rows

    info, rows = read_survey(path, max_bytes=settings.max_upload_bytes, **read_options)
    out: list[AnalyzedRow] = []
    it = iter(rows)
    while chunk := list(islice(it, settings.classify_batch_size)):
        for row, answers in zip(chunk, classify_rows(chunk, bundle), strict=True):
            out.append(AnalyzedRow.of(row, answers))
    return out, info


def report_for_file(
    path: str | Path,
    week: Period,
    bundle: ModelBundle,
    settings: Settings,
    *,
    support_path: str | Path | None = None,
    **read_options: Any,
) -> WeeklyReport:
    rows, info = file_rows(path, bundle, settings, **read_options)
    support = None
    if support_path is not None:
        support = file_rows(
            support_path, bundle, settings, kind="support", encoding=read_options.get("encoding")
        )
    return weekly_report_from_rows(
        rows,
        info,
        [t.to_dict() for t in bundle.taxonomy.themes],
        week,
        model_info=bundle.info(),
        support=support,
        min_count=settings.min_count,
        seed=settings.seed,
        bootstrap=settings.bootstrap_samples,
        source=Path(path).name,
        dashboard_url=settings.dashboard_url,
    )


def subscription_source(sub: Subscription) -> str:
    return f"survey:{sub.survey_id}" if sub.survey_id else f"stream:{sub.stream}"


def _subscription_builder(runtime: Runtime, sub: Subscription, week: Period) -> BuildFn:
    def build() -> WeeklyReport:
        survey_id = sub.survey_id
        if survey_id is None:
            found = store.newest_stream_survey(runtime.db, sub.stream or "")
            if found is None:
                raise ConfigError(f"no analysed upload matches the stream pattern {sub.stream!r} yet")
            survey_id = found.id
        return report_for_survey(runtime, survey_id, week, support_survey_id=sub.support_survey_id)

    return build


# --- delivery ---------------------------------------------------------------------------------------------------


def unsubscribe_url(settings: Settings, sub: Subscription | None, recipient: str) -> str | None:
    if sub is None or not settings.public_url:
        return None
    base = settings.public_url.rstrip("/")
    signature = store.unsubscribe_signature(sub, recipient)
    return f"{base}/v1/unsubscribe?s={sub.id}&r={quote(store.normalize_address(recipient))}&t={signature}"


def deliver(
    runtime: Runtime,
    build: BuildFn,
    *,
    source: str,
    week: str,
    recipients: Iterable[tuple[str, Subscription | None]],
    smtp: SmtpConfig | None,
    now: datetime | None = None,
    send: Callable[[Any, SmtpConfig], str] = send_message,
) -> list[Outcome]:
    """Send the report of ``week`` from ``source`` to every recipient that may have it now.

    The report is built (and its charts drawn) at most once, and only when some recipient is claimed.
    ``smtp=None``: nothing is sent; the built messages are returned in the outcomes (``state="built"``).
    """
    settings = runtime.settings
    stamp = now or datetime.now(UTC)
    prepared: PreparedReport | None = None
    build_error: KoeError | None = None
    outcomes: list[Outcome] = []
    for recipient, sub in recipients:
        delivery = store.claim_delivery(
            runtime.db, recipient, source, week, subscription_id=sub.id if sub else None, now=stamp
        )
        if delivery is None:
            existing = store.get_delivery(runtime.db, recipient, source, week)
            outcomes.append(_skipped(recipient, week, source, existing))
            continue
        if prepared is None and build_error is None:
            try:
                prepared = prepare_report(build())
            except KoeError as err:
                build_error = err
                log.warning(
                    "weekly report cannot be built", extra={"source": source, "week": week, "error": str(err)}
                )
        if prepared is None:
            assert build_error is not None
            outcomes.append(_failed(runtime, delivery, str(build_error), None, transient=True, now=stamp))
            continue
        sender = smtp.sender if smtp else "koe@example.invalid"
        msg = build_message(
            prepared,
            sender=sender,
            to=recipient,
            unsubscribe_url=unsubscribe_url(settings, sub, recipient),
            now=stamp,
        )
        if smtp is None:
            outcomes.append(
                Outcome(
                    delivery.recipient, week, source, "built", delivery.id, delivery.attempts, message=msg
                )
            )
            continue
        try:
            message_id = send(msg, smtp)
        except MailError as err:
            outcomes.append(
                _failed(runtime, delivery, str(err), err.code, transient=err.transient, now=stamp)
            )
            continue
        store.mark_sent(runtime.db, delivery.id, message_id, now=stamp)
        log.info(
            "weekly report sent",
            extra={"delivery_id": delivery.id, "week": week, "source": source, "attempt": delivery.attempts},
        )
        outcomes.append(
            Outcome(delivery.recipient, week, source, "sent", delivery.id, delivery.attempts, message=msg)
        )
    return outcomes


def _skipped(recipient: str, week: str, source: str, existing: ReportDelivery | None) -> Outcome:
    if existing is None:
        return Outcome(recipient, week, source, "skipped")
    return Outcome(
        existing.recipient,
        week,
        source,
        "skipped",
        existing.id,
        existing.attempts,
        error=f"already {existing.state}",
        next_attempt_at=existing.next_attempt_at,
    )


def _failed(
    runtime: Runtime,
    delivery: ReportDelivery,
    error: str,
    code: int | None,
    *,
    transient: bool,
    now: datetime,
) -> Outcome:
    settings = runtime.settings
    retry_at = None
    if transient and delivery.attempts < settings.report_max_attempts:
        retry_at = now + backoff(settings, delivery.attempts)
    store.mark_failed(runtime.db, delivery.id, error, code=code, retry_at=retry_at, now=now)
    state = "retry" if retry_at else "failed"
    extra = {"delivery_id": delivery.id, "week": delivery.week, "attempt": delivery.attempts, "error": error}
    if retry_at:
        log.warning("weekly report not sent; will retry", extra={**extra, "retry_at": retry_at.isoformat()})
    else:
        log.error("weekly report failed for good", extra=extra)
    return Outcome(
        delivery.recipient,
        delivery.week,
        delivery.source,
        state,
        delivery.id,
        delivery.attempts,
        error,
        retry_at,
    )


# --- schedule ---------------------------------------------------------------------------------------------------


def _send_time(text: str) -> time:
    hours, _, minutes = text.partition(":")
    return time(int(hours), int(minutes or 0))


def due_week(sub: Subscription, now: datetime) -> Period | None:
    """The week a subscription's latest scheduled moment (at or before ``now``) reports on, or None.

    The moment is the subscription's weekday and time in its own time zone; the week is the last complete
    Monday-to-Sunday week before it. Moments before the subscription existed do not count, so a new
    subscription does not send last week's report at once.
    """
    tz = zone(sub.timezone)
    local = now.astimezone(tz)
    day = local.date() - timedelta(days=(local.weekday() - sub.weekday) % 7)
    moment = datetime.combine(day, _send_time(sub.send_time), tzinfo=tz)
    if moment > local:
        moment -= timedelta(days=7)
    created = sub.created_at if sub.created_at.tzinfo else sub.created_at.replace(tzinfo=UTC)
    if moment < created:
        return None
    return last_complete_week(moment.date())


def tick(
    runtime: Runtime,
    *,
    now: datetime | None = None,
    smtp: SmtpConfig | None = None,
    send: Callable[[Any, SmtpConfig], str] = send_message,
) -> list[Outcome]:
    """One pass: every due subscription week and every due retry, each report built once."""
    from pipelines.report.weekly import parse_week

    stamp = now or datetime.now(UTC)
    smtp = smtp or SmtpConfig.from_settings(runtime.settings)
    subs = {s.id: s for s in store.list_subscriptions(runtime.db, active_only=True)}
    work: dict[tuple[str, str], tuple[BuildFn, list[tuple[str, Subscription]]]] = {}

    def add(sub: Subscription, week: Period, recipient: str) -> None:
        key = (subscription_source(sub), week.key)
        if key not in work:
            work[key] = (_subscription_builder(runtime, sub, week), [])
        if all(r != recipient for r, _ in work[key][1]):
            work[key][1].append((recipient, sub))

    for sub in subs.values():
        try:
            week = due_week(sub, stamp)
        except (ConfigError, ValueError) as err:  # a bad zone or time stored by hand: say so, keep going
            log.error(
                "subscription cannot be scheduled", extra={"subscription_id": sub.id, "error": str(err)}
            )
            continue
        if week is not None:
            for recipient in sub.recipients or []:
                add(sub, week, recipient)
    for d in store.waiting_deliveries(runtime.db, now=stamp):  # retries of earlier weeks
        owner = subs.get(d.subscription_id or -1)
        if owner and d.recipient in (owner.recipients or []) and d.source == subscription_source(owner):
            add(owner, parse_week(d.week), d.recipient)

    outcomes: list[Outcome] = []
    for (source, week_key), (build, recipients) in work.items():
        outcomes += deliver(
            runtime,
            build,
            source=source,
            week=week_key,
            recipients=recipients,
            smtp=smtp,
            now=stamp,
            send=send,
        )
    return outcomes


def run_scheduler(
    runtime: Runtime, *, interval: float, stop: threading.Event | None = None, smtp: SmtpConfig | None = None
) -> None:
    """Tick every ``interval`` seconds until ``stop`` is set; an error in one tick is logged, not fatal."""
    stop = stop or threading.Event()
    smtp = smtp or SmtpConfig.from_settings(runtime.settings)
    log.info("scheduler started", extra={"interval": interval})
    while not stop.is_set():
        try:
            for o in tick(runtime, smtp=smtp):
                if o.state != "skipped":
                    log.info("delivery", extra={"recipient": o.recipient, "week": o.week, "state": o.state})
        except Exception:  # the database was away, a bug: log it and try again next time
            log.exception("scheduler tick failed")
        stop.wait(interval)


def pending_retry(outcomes: Sequence[Outcome]) -> datetime | None:
    """The earliest retry time among the outcomes, or None when none is waiting."""
    times = [o.next_attempt_at for o in outcomes if o.state == "retry" and o.next_attempt_at]
    return min(times) if times else None


def parse_day(text: str) -> date:
    return date.fromisoformat(text)
