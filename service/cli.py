"""The ``koe`` command line: analyze, classify, train, serve, worker, apikey, user, db, report, scheduler.

Errors a user can fix (``KoeError``) are printed as one line naming the file, row and column, and
exit with status 2; nothing else is caught, so a bug still shows its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from pipelines.errors import ConfigError, InputError, KoeError
from service.config import Settings, get_settings

__all__ = ["main"]


def _bundle(settings: Settings) -> Any:
    from service.runtime import base_bundle

    return base_bundle(settings)


def _mapping(args: argparse.Namespace) -> dict[str, Any] | None:
    mapping: dict[str, Any] = {}
    if args.score_column:
        mapping["score"] = args.score_column
    if args.text_column:
        mapping["texts"] = args.text_column
    if args.id_column:
        mapping["respondent_id"] = args.id_column
    if args.date_column:
        mapping["date"] = args.date_column
    if args.segment_column:
        mapping["segments"] = args.segment_column
    return mapping or None


def cmd_analyze(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from pipelines.run import AnalyzeOptions, analyze_file

    if args.dry_run:
        from pipelines.ingest import sniff

        found = sniff(
            args.input,
            encoding=args.encoding,
            kind=args.kind,
            metric=args.metric,
            mapping=_mapping(args),
            max_bytes=settings.max_upload_bytes,
        )
        print(json.dumps(found, ensure_ascii=False, indent=2, default=str))
        return 0

    from service.insights import insight_options, new_assistant

    options = AnalyzeOptions(
        encoding=args.encoding,
        kind=args.kind,
        metric=args.metric,
        mapping=_mapping(args),
        max_bytes=settings.max_upload_bytes,
        chunk_size=settings.classify_batch_size,
        min_count=settings.min_count,
        bootstrap=settings.bootstrap_samples,
        seed=settings.seed,
        report=not args.no_report,
        insights=insight_options(settings) if settings.analysis_insights and not args.no_insights else None,
    )
    bundle = _bundle(settings)
    with tqdm(desc="koe analyze", unit="row", disable=args.quiet, file=sys.stderr) as bar:
        summary = analyze_file(
            args.input, args.out, bundle, options, progress=bar.update, new_assistant=new_assistant(settings)
        )
    if not args.quiet:
        _print_headline(summary, Path(args.out))
    return 0


def _print_headline(summary: dict[str, Any], out: Path) -> None:
    nps = summary.get("nps") or {}
    lines = []
    if nps.get("score") is not None:
        lo, hi = nps["ci95"]
        lines.append(
            f"NPS {nps['score']:+.1f} (95% CI {lo:+.1f} .. {hi:+.1f}, n={nps['n']}: "
            f"promoters {nps['promoters']}, passives {nps['passives']}, detractors {nps['detractors']})"
        )
    top = [f"{t['label']} {t['mentions']}" for t in (summary.get("themes") or [])[:5] if t["mentions"]]
    lines.append("top themes: " + (", ".join(top) if top else "(no theme found in any answer)"))
    issues = (summary.get("issues") or {}).get("count", 0)
    lines.append(f"rows: {summary['input']['rows']}, rows with issues: {issues} (see errors.csv)")
    lines.append(
        f"wrote {out / 'summary.json'}, {out / 'rows.csv'}, {out / 'errors.csv'}, {out / 'report.html'}"
    )
    print("\n".join(lines))


def _read_classify_input(stream: IO[str], source: str) -> Iterator[tuple[Any, str]]:
    """JSONL objects with ``text`` (and optional ``id``), or plain lines; ids default to the line number."""
    for lineno, line in enumerate(stream, start=1):
        raw = line.rstrip("\n")
        if not raw.strip():
            continue
        if raw.lstrip().startswith("{"):
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise InputError(f"line is not valid JSON: {exc.msg}", file=source, row=lineno) from exc
            if not isinstance(obj.get("text"), str):
                raise InputError(
                    "JSON object has no string field 'text'", file=source, row=lineno, column="text"
                )
            yield obj.get("id", lineno), obj["text"]
        else:
            yield lineno, raw


def cmd_classify(args: argparse.Namespace, settings: Settings) -> int:
    from pipelines.classify import classify_texts

    bundle = _bundle(settings)
    source = "<stdin>" if args.file in (None, "-") else args.file
    stream = sys.stdin if source == "<stdin>" else open(source, encoding="utf-8-sig")  # noqa: SIM115
    try:
        batch: list[tuple[Any, str]] = []
        for item in _read_classify_input(stream, source):
            batch.append(item)
            if len(batch) >= settings.classify_batch_size:
                _emit(batch, classify_texts([t for _, t in batch], bundle))
                batch = []
        if batch:
            _emit(batch, classify_texts([t for _, t in batch], bundle))
    finally:
        if stream is not sys.stdin:
            stream.close()
    return 0


def _emit(batch: Sequence[tuple[Any, str]], results: Sequence[Any]) -> None:
    for (item_id, text), res in zip(batch, results, strict=True):
        result = res.to_dict()
        out = {"id": item_id, "text": text, "normalized_text": result.pop("text"), **result}
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from models.encoders import load_encoder
    from models.taxonomy import load_taxonomy
    from pipelines.train.train_models import train_models

    taxonomy_path = args.taxonomy or settings.taxonomy_path
    result = train_models(
        args.out or (settings.artifacts_dir or Path(__file__).resolve().parents[1] / "models" / "artifacts"),
        encoder=load_encoder(
            settings.encoder, num_threads=settings.num_threads, cache_dir=settings.cache_dir
        ),
        corpus_dir=args.corpus,
        taxonomy=load_taxonomy(taxonomy_path) if taxonomy_path else None,
        use_chabsa=not args.no_chabsa,
        cache_dir=args.cache_dir,
        progress=not args.quiet,
    )
    print(json.dumps(result["metrics"], ensure_ascii=False, indent=2))
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from service.logs import configure_logging
    from service.main import create_app

    configure_logging(settings.log_level, json_lines=settings.log_json)
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level=settings.log_level.lower(),
        access_log=False,  # koe logs each request itself, as JSON
        log_config=None,  # keep the handlers configure_logging set
        proxy_headers=True,
    )
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from service.jobs.celery_app import make_celery
    from service.logs import configure_logging

    configure_logging(settings.log_level, json_lines=settings.log_json)
    if not settings.broker_url:
        raise ConfigError("koe worker needs KOE_BROKER_URL (e.g. redis://127.0.0.1:6379/0)")
    app = make_celery(settings)
    argv = [
        "worker",
        "--loglevel",
        settings.log_level,
        "--concurrency",
        str(args.concurrency),
        "--pool",
        args.pool,
    ]
    if args.hostname:
        argv += ["--hostname", args.hostname]
    app.worker_main(argv)
    return 0


def _runtime(settings: Settings) -> Any:
    from service.runtime import Runtime

    return Runtime(settings)


def cmd_apikey(args: argparse.Namespace, settings: Settings) -> int:
    runtime = _runtime(settings)
    try:
        return _apikey(args, runtime.db)
    finally:
        runtime.close()


def _apikey(args: argparse.Namespace, db: Any) -> int:
    from service.storage.keys import create_key, list_keys, revoke_key

    if args.action == "create":
        info, key = create_key(db, args.name, args.scopes)
        print(key)
        print(
            f"created API key {info.id} '{info.name}' (scopes: {', '.join(sorted(info.scopes))}); "
            "this is the only time the key is shown",
            file=sys.stderr,
        )
    elif args.action == "list":
        for k in list_keys(db):
            print(json.dumps(k.to_dict(), ensure_ascii=False))
    else:
        if not revoke_key(db, args.id):
            raise ConfigError("no active API key with this id", value=str(args.id))
        print(f"revoked API key {args.id}", file=sys.stderr)
    return 0


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    from service.storage.db import Database

    db = Database(settings.database)
    try:
        db.upgrade()
    finally:
        db.dispose()
    print(f"database is at the newest schema: {settings.database.split('@')[-1]}", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from service.reports_cli import deliveries, weekly

    runtime = _runtime(settings)
    try:
        return weekly(args, settings, runtime) if args.action == "weekly" else deliveries(args, runtime)
    finally:
        runtime.close()


def cmd_scheduler(args: argparse.Namespace, settings: Settings) -> int:
    from service.reports_cli import scheduler

    return scheduler(args, settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="koe", description="Japanese customer-voice analysis")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("analyze", help="analyse a survey export (CSV/TSV/XLSX) and write a report")
    p.add_argument("input")
    p.add_argument("--out", help="output directory (required unless --dry-run)")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="only show the detected encoding, columns, first rows and problems, as JSON; analyse nothing",
    )
    p.add_argument("--encoding", help="force the file encoding (utf-8, utf-8-sig, cp932, euc-jp …)")
    p.add_argument("--kind", choices=["survey", "support"], default="survey")
    p.add_argument("--metric", choices=["nps", "csat", "ces"], default="nps")
    p.add_argument("--score-column")
    p.add_argument("--text-column", action="append", help="free-text column (repeat for several questions)")
    p.add_argument("--id-column")
    p.add_argument("--date-column")
    p.add_argument("--segment-column", action="append")
    p.add_argument("--no-report", action="store_true", help="skip report.html")
    p.add_argument(
        "--no-insights",
        action="store_true",
        help="skip emerging themes and theme summaries (KOE_ANALYSIS_INSIGHTS=false for every run)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary (for scripts)")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("classify", help="classify texts: JSONL with 'text' (and 'id') or plain lines")
    p.add_argument("file", nargs="?", default="-")
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("train", help="retrain the sentiment and theme heads from the project corpus")
    p.add_argument("--out", type=Path)
    p.add_argument("--no-chabsa", action="store_true")
    p.add_argument(
        "--corpus",
        type=Path,
        help="directory of labelled *.jsonl (default: the shipped corpus; see its WRITING_GUIDE)",
    )
    p.add_argument(
        "--taxonomy",
        type=Path,
        help="taxonomy YAML whose themes the corpus labels (default: KOE_TAXONOMY_PATH)",
    )
    p.add_argument("--cache-dir", default=".koe-cache")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("serve", help="run the HTTP API (OpenAPI docs at /docs)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("worker", help="run a Celery worker for upload chunks (needs KOE_BROKER_URL)")
    p.add_argument("--concurrency", type=int, default=1, help="worker processes (each loads the models)")
    p.add_argument("--pool", choices=["prefork", "solo", "threads"], default="prefork")
    p.add_argument("--hostname", help="Celery node name (default: celery@<host>)")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("apikey", help="manage API keys")
    keys = p.add_subparsers(dest="action", required=True)
    k = keys.add_parser("create", help="create a key and print it once")
    k.add_argument("--name", required=True)
    k.add_argument("--scopes", default="classify", help="comma-separated: classify, upload, admin")
    keys.add_parser("list", help="list keys (never the keys themselves)")
    k = keys.add_parser("revoke", help="revoke a key by id")
    k.add_argument("id", type=int)
    p.set_defaults(func=cmd_apikey)

    p = sub.add_parser("db", help="database schema")
    p.add_argument("action", choices=["upgrade"])
    p.set_defaults(func=cmd_db)

    p = sub.add_parser("report", help="the weekly theme report by e-mail (docs/weekly-report.md)")
    reports = p.add_subparsers(dest="action", required=True)
    r = reports.add_parser("weekly", help="build one week's report and send it (or write .eml: --dry-run)")
    source = r.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", help="survey export file (CSV/TSV/XLSX), analysed on the spot")
    source.add_argument("--survey", help="id of a stored, analysed survey")
    r.add_argument("--week", help="ISO week, e.g. 2026-W47 (default: the last complete week)")
    r.add_argument("--to", action="append", default=[], metavar="ADDR", help="recipient (repeat)")
    r.add_argument("--support", help="support-comment export to show alongside (with --input)")
    r.add_argument("--support-survey", help="stored support survey to show alongside (with --survey)")
    r.add_argument("--dry-run", action="store_true", help="write the .eml (and .html) instead of sending")
    r.add_argument("--out", type=Path, default=Path("."), help="where --dry-run writes (default: .)")
    r.add_argument("--force", action="store_true", help="send even if this week already went to a recipient")
    r.add_argument("--encoding")
    r.add_argument("--score-column")
    r.add_argument("--text-column", action="append")
    r.add_argument("--id-column")
    r.add_argument("--date-column")
    r.add_argument("--segment-column", action="append")
    r = reports.add_parser("deliveries", help="list deliveries (failures first with --state failed,retry)")
    r.add_argument("--state", help="comma-separated: pending, sending, retry, sent, failed")
    r.add_argument("--subscription", type=int)
    r.add_argument("--week")
    r.add_argument("--limit", type=int, default=100)
    p.set_defaults(func=cmd_report)

    from service.users_cli import add_parser as add_user_parser

    add_user_parser(sub)  # koe user create|list|disable|enable|role (the dashboard's accounts)

    from service.insights_cli import add_parser as add_insights_parser

    add_insights_parser(sub)  # koe insights discover|summaries|adopt|label (docs/llm.md)

    p = sub.add_parser("scheduler", help="send due weekly reports (subscriptions in the database), forever")
    p.add_argument("--once", action="store_true", help="one pass, then exit (for cron or a test)")
    p.add_argument("--interval", type=float, help="seconds between passes (KOE_SCHEDULER_INTERVAL_SECONDS)")
    p.add_argument("--beat", action="store_true", help="run Celery beat: workers send (needs KOE_BROKER_URL)")
    p.set_defaults(func=cmd_scheduler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "analyze" and not args.out and not args.dry_run:
        parser.error("analyze: --out DIR is required (or use --dry-run to only inspect the file)")
    try:
        settings = get_settings()
    except ValidationError as err:
        problems = "; ".join(f"KOE_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in err.errors())
        print(f"koe: error: invalid setting: {problems}", file=sys.stderr)
        return 2
    try:
        return int(args.func(args, settings))
    except KoeError as err:
        print(f"koe: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
