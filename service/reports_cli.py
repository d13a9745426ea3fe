"""``koe report weekly``, ``koe report deliveries`` and ``koe scheduler`` (wired into ``service.cli``)."""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.errors import ConfigError
from pipelines.report.weekly import WeeklyReport, last_complete_week, parse_week
from service.config import Settings
from service.runtime import Runtime

__all__ = ["deliveries", "scheduler", "weekly"]

DRY_RUN_RECIPIENT = "recipient@example.invalid"


def _read_options(args: argparse.Namespace) -> dict[str, Any]:
    from service.cli import _mapping

    return {"encoding": args.encoding, "mapping": _mapping(args)}


def _safe(name: str) -> str:
    return re.sub(r"[^\w.@+-]", "_", name)


def weekly(args: argparse.Namespace, settings: Settings, runtime: Runtime) -> int:
    """Build one week's report from a file or a stored survey and send it once per recipient."""
    from service.mailer import SmtpConfig
    from service.scheduler import deliver, pending_retry, report_for_file, report_for_survey, zone

    if args.support and not args.input:
        raise ConfigError("--support goes with --input (use --support-survey with --survey)")
    if args.support_survey and not args.survey:
        raise ConfigError("--support-survey goes with --survey (use --support with --input)")
    if not args.to and not args.dry_run:
        raise ConfigError("give at least one recipient with --to ADDR (or use --dry-run)")
    week = (
        parse_week(args.week)
        if args.week
        else last_complete_week(datetime.now(zone(settings.report_timezone)).date())
    )
    smtp = None if args.dry_run else SmtpConfig.from_settings(settings)

    def build() -> WeeklyReport:
        if args.survey:
            return report_for_survey(runtime, args.survey, week, support_survey_id=args.support_survey)
        from service.runtime import base_bundle

        return report_for_file(
            args.input,
            week,
            base_bundle(settings),
            settings,
            support_path=args.support,
            **_read_options(args),
        )

    source = f"survey:{args.survey}" if args.survey else f"file:{Path(args.input).name}"
    recipients = args.to or [DRY_RUN_RECIPIENT]
    if args.dry_run:
        return _dry_run(args, runtime, build, source, week.key, recipients)
    from service.storage import reports as store

    if args.force:
        for r in recipients:
            found = store.get_delivery(runtime.db, r, source, week.key)
            if found is not None:
                store.reset_delivery(runtime.db, found.id)
    cached: list[WeeklyReport] = []

    def build_once() -> WeeklyReport:  # a retry round must not classify the file again
        if not cached:
            cached.append(build())
        return cached[0]

    outcomes = deliver(
        runtime,
        build_once,
        source=source,
        week=week.key,
        recipients=[(r, None) for r in recipients],
        smtp=smtp,
    )
    finished = []
    while (retry_at := pending_retry(outcomes)) is not None:
        wait = max((retry_at - datetime.now(UTC)).total_seconds(), 0.0)
        finished += [o for o in outcomes if o.state != "retry"]
        _print_outcomes([o for o in outcomes if o.state != "retry"])
        for o in outcomes:
            if o.state == "retry":
                print(
                    f"koe: not sent to {o.recipient} ({o.error}); retrying in {wait:.0f} s", file=sys.stderr
                )
        time.sleep(wait)
        waiting = [(o.recipient, None) for o in outcomes if o.state == "retry"]
        outcomes = deliver(runtime, build_once, source=source, week=week.key, recipients=waiting, smtp=smtp)
    _print_outcomes(outcomes)
    return 1 if any(o.state == "failed" for o in [*finished, *outcomes]) else 0


def _dry_run(
    args: argparse.Namespace, runtime: Runtime, build: Any, source: str, week: str, recipients: list[str]
) -> int:
    """Write one .eml per recipient and the standalone .html; nothing is sent or recorded."""
    from pipelines.report.weekly_render import render_weekly_standalone
    from service.mailer import build_message, prepare_report, write_eml

    prepared = prepare_report(build())
    sender = runtime.settings.smtp_sender or "koe@example.invalid"
    out: Path = args.out
    for recipient in recipients:
        msg = build_message(prepared, sender=sender, to=recipient)
        path = write_eml(msg, out / f"koe-weekly-{week}-{_safe(recipient)}.eml")
        print(f"wrote {path} ({len(msg.as_bytes()):,} bytes; subject: {prepared.subject})")
    html = out / f"koe-weekly-{week}.html"
    html.write_text(render_weekly_standalone(prepared.report, prepared.charts), encoding="utf-8")
    print(f"wrote {html}")
    return 0


def _print_outcomes(outcomes: list[Any]) -> None:
    for o in outcomes:
        if o.state == "sent":
            print(f"sent {o.week} to {o.recipient} (attempt {o.attempts})")
        elif o.state == "skipped":
            print(
                f"skipped {o.recipient}: {o.week} was {(o.error or 'already handled').removeprefix('already ')} before; --force sends it again"
            )
        else:
            print(
                f"FAILED {o.week} to {o.recipient} after {o.attempts} attempt(s): {o.error}", file=sys.stderr
            )


def deliveries(args: argparse.Namespace, runtime: Runtime) -> int:
    """One JSON line per delivery, newest first: state, attempts, last error, next attempt."""
    from service.storage import reports as store

    states = [s.strip() for s in args.state.split(",")] if args.state else None
    for d in store.list_deliveries(
        runtime.db, subscription_id=args.subscription, states=states, week=args.week, limit=args.limit
    ):
        print(json.dumps(store.delivery_out(d), ensure_ascii=False))
    return 0


def scheduler(args: argparse.Namespace, settings: Settings) -> int:
    """Send due reports every interval (or once); with --beat, Celery beat hands each pass to a worker."""
    from service.logs import configure_logging
    from service.mailer import SmtpConfig
    from service.scheduler import run_scheduler, tick

    configure_logging(settings.log_level, json_lines=settings.log_json)
    if args.beat:
        from service.jobs.celery_app import make_celery

        if not settings.broker_url:
            raise ConfigError("koe scheduler --beat needs KOE_BROKER_URL (e.g. redis://127.0.0.1:6379/0)")
        make_celery(settings).Beat(loglevel=settings.log_level).run()
        return 0
    smtp = SmtpConfig.from_settings(settings)  # a missing SMTP setting fails now, not at the first report
    runtime = Runtime(settings)
    try:
        if args.once:
            outcomes = tick(runtime, smtp=smtp)
            _print_outcomes([o for o in outcomes if o.state != "skipped"])
            return 1 if any(o.state == "failed" for o in outcomes) else 0
        run_scheduler(
            runtime,
            interval=args.interval or settings.scheduler_interval_seconds,
            stop=_stop_on_signal(),
            smtp=smtp,
        )
        return 0
    finally:
        runtime.close()


def _stop_on_signal() -> threading.Event:
    import signal

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop
