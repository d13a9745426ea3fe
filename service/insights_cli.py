"""``koe insights``: discovery, theme summaries and labelling help (wired into ``service.cli``).

    koe insights discover  (--survey ID | --input FILE) [--out DIR] [--refresh]
    koe insights summaries (--survey ID | --input FILE) [--theme T] [--group G] [--segment COL:VAL] [--out DIR]
    koe insights adopt     --survey ID --cluster c1 [--id ID] [--name NAME] [--polarity P] [--reclassify]
    koe insights label propose|list|decide|retrain --survey ID --theme T …

``--survey`` works on a stored, analysed survey (results kept in the database, as the API does); ``--input``
analyses a file on the spot, no server needed. ``--out DIR`` writes ``DIR/discovery.json`` or
``DIR/summaries.json``; when ``DIR`` holds a ``koe analyze`` output, the ``discovery`` / ``summaries`` keys
of its ``summary.json`` (docs/summary-schema.md; ``koe analyze`` writes both unless ``--no-insights``) are
replaced by the new ones and ``report.html`` is rendered again.
With ``KOE_LLM_BASE_URL`` set, names and summaries come from the LLM; without, they are extractive.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pipelines.errors import ConfigError
from service.config import Settings

__all__ = ["add_parser", "cmd_insights"]


def _source(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--survey", help="id of a stored, analysed survey")
    src.add_argument("--input", type=Path, help="survey export (CSV/TSV/XLSX), analysed on the spot")
    p.add_argument("--out", type=Path, help="write the result here (and extend a koe analyze output)")
    p.add_argument("--kind", choices=["survey", "support"], default="survey")
    p.add_argument("--metric", choices=["nps", "csat", "ces"], default="nps")
    p.add_argument("--encoding")
    p.add_argument("--score-column")
    p.add_argument("--text-column", action="append")
    p.add_argument("--id-column")
    p.add_argument("--date-column")
    p.add_argument("--segment-column", action="append")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("insights", help="emerging themes, theme summaries, labelling help (docs/llm.md)")
    actions = p.add_subparsers(dest="action", required=True)

    d = actions.add_parser("discover", help="clusters of sentences no theme covers, named")
    _source(d)
    d.add_argument("--refresh", action="store_true", help="compute again (--survey)")

    s = actions.add_parser("summaries", help="per theme and group: LLM summary citing quotes, or extractive")
    _source(s)
    s.add_argument("--theme")
    s.add_argument("--group", choices=["all", "detractors", "passives", "promoters"])
    s.add_argument("--segment", help="COLUMN:VALUE")
    s.add_argument("--refresh", action="store_true", help="compute again (--survey)")

    a = actions.add_parser("adopt", help="add a discovered cluster to the taxonomy (a new version)")
    a.add_argument("--survey", required=True)
    a.add_argument("--cluster", required=True, help="cluster id, e.g. c1")
    a.add_argument("--id", help="theme id (default: the suggested one)")
    a.add_argument("--name")
    a.add_argument("--polarity", choices=["positive_signal", "negative_signal", "topic"])
    a.add_argument("--reclassify", action="store_true", help="re-classify the survey under the new version")

    lab = actions.add_parser("label", help="labelling help for a custom theme (active learning)")
    steps = lab.add_subparsers(dest="step", required=True)
    for name, text in (
        ("propose", "propose labels for a sample of sentences (LLM, or the classifier)"),
        ("list", "the theme's labels on the survey"),
        ("decide", "accept or correct proposals"),
        ("retrain", "add the accepted sentences that help as examples (a new taxonomy version)"),
    ):
        q = steps.add_parser(name, help=text)
        q.add_argument("--survey", required=True)
        q.add_argument("--theme", required=True)
        if name == "propose":
            q.add_argument("--size", type=int, default=30)
            q.add_argument("--seed", type=int)
        if name == "list":
            q.add_argument("--state", choices=["proposed", "accepted", "corrected"])
        if name == "decide":
            q.add_argument("--accept", default="", help="label ids whose proposal is right: 1,2,5")
            q.add_argument("--correct", default="", help="label ids whose proposal is wrong: 3,4")
            q.add_argument("--accept-all", action="store_true", help="accept every undecided proposal")
        if name == "retrain":
            q.add_argument("--max-new", type=int, default=20)
            q.add_argument("--reclassify", action="store_true")
    p.set_defaults(func=cmd_insights)


def _print(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _ids(text: str) -> list[int]:
    try:
        return [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError as exc:
        raise ConfigError("label ids are integers separated by commas, e.g. 1,2,5", value=text) from exc


def _segment(value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    from pipelines.aggregate import split_segment

    try:
        return split_segment(value)
    except ValueError as exc:
        raise ConfigError(f"--segment: {exc}", value=value) from exc


def _write(out: Path, name: str, key: str, data: dict[str, Any]) -> None:
    """``out/<name>.json``; and into ``out/summary.json`` (re-rendering report.html) when koe analyze wrote there."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    summary_path = out / "summary.json"
    if summary_path.exists():
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        summary[key] = data
        summary_path.write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
        if (out / "report.html").exists():
            from pipelines.report import render_report

            render_report(summary, out / "report.html")
    print(f"wrote {out / f'{name}.json'}", file=sys.stderr)


def _file_results(args: argparse.Namespace, settings: Settings) -> tuple[Any, Any, list[Any], Any, list[Any]]:
    """Analyse ``--input`` in this process: (bundle, info, analysed rows, groups, answers with sentences)."""
    from pipelines.discovery import AnswerSentences
    from pipelines.insights import nps_groups
    from service.cli import _mapping
    from service.runtime import base_bundle
    from service.scheduler import file_rows

    bundle = base_bundle(settings)
    rows, info = file_rows(
        args.input,
        bundle,
        settings,
        encoding=args.encoding,
        kind=args.kind,
        metric=args.metric,
        mapping=_mapping(args),
    )
    answers = [
        AnswerSentences.from_result(r.row, q, r.date, res) for r in rows for q, res in r.answers.items()
    ]
    return bundle, info, rows, nps_groups(rows, info), answers


def _stored(settings: Settings, survey_id: str) -> tuple[Any, Any, Any]:
    from service.runtime import Runtime

    runtime = Runtime(settings)
    survey = runtime.repo.get_survey(survey_id)
    if survey is None:
        runtime.close()
        raise ConfigError("no survey with this id (deleted, or never uploaded)", value=survey_id)
    job = runtime.repo.get_job(survey.current_job_id) if survey.current_job_id else None
    if job is None or job.summary is None:
        runtime.close()
        raise ConfigError("the survey has no finished analysis yet (see `koe` job state)", value=survey_id)
    return runtime, survey, job


def _discover_file(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    from service.insights import run_discovery

    bundle, _, rows, _, answers = _file_results(args, settings)
    return run_discovery(bundle, settings, answers, rows, taken_ids=bundle.taxonomy.ids)


def _summaries_file(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    from service.insights import run_summaries

    segment = _segment(args.segment)  # a mistyped --segment fails before the file is classified
    bundle, _, rows, groups, _ = _file_results(args, settings)
    return run_summaries(bundle, settings, rows, groups, theme=args.theme, group=args.group, segment=segment)


def _label(args: argparse.Namespace, runtime: Any, survey: Any, job: Any) -> int:
    from service import insights
    from service.storage import insights as store

    if args.step == "propose":
        _print(insights.propose(runtime, survey, job, args.theme, size=args.size, seed=args.seed))
    elif args.step == "list":
        rows = store.list_labels(runtime.db, survey.id, args.theme, state=args.state)
        _print(
            {
                "counts": store.label_counts(runtime.db, survey.id, args.theme),
                "items": [store.label_out(r) for r in rows],
            }
        )
    elif args.step == "decide":
        pairs: dict[int, bool] = {}
        labels = {r.id: r for r in store.list_labels(runtime.db, survey.id, args.theme)}
        if args.accept_all:
            pairs.update({i: r.proposed for i, r in labels.items() if r.label is None})
        for i in _ids(args.accept):
            pairs[i] = labels[i].proposed if i in labels else True
        for i in _ids(args.correct):
            pairs[i] = (not labels[i].proposed) if i in labels else False
        unknown = sorted(i for i in pairs if i not in labels)
        if unknown:
            raise ConfigError("label ids not of this survey and theme", value=",".join(map(str, unknown)))
        updated, _ = store.decide_labels(runtime.db, survey.id, args.theme, sorted(pairs.items()))
        _print({"decided": len(updated), "counts": store.label_counts(runtime.db, survey.id, args.theme)})
    else:
        out = insights.retrain(runtime, survey, args.theme, max_new=args.max_new)
        if args.reclassify and out["changed"]:
            out["job"] = _reclassify(runtime, survey.id, out["taxonomy_version"])
        _print(out)
    return 0


def _reclassify(runtime: Any, survey_id: str, version: int) -> str:
    """Run the re-classification in this process (as `koe serve`'s runner would) and return its job id."""
    from service.jobs.work import run_all

    job = runtime.repo.create_job(survey_id, "reclassify", version, runtime.settings.job_chunk_rows)
    run_all(runtime.job_context(), job.id, runtime.settings.max_upload_bytes)
    return str(job.id)


def cmd_insights(args: argparse.Namespace, settings: Settings) -> int:
    if args.action in ("discover", "summaries") and args.input is not None:
        build = _discover_file if args.action == "discover" else _summaries_file
        doc = build(args, settings)
        if args.out:
            _write(args.out, args.action, "discovery" if args.action == "discover" else "summaries", doc)
        else:
            _print(doc)
        return 0
    from service import insights

    runtime, survey, job = _stored(settings, args.survey)
    try:
        if args.action == "discover":
            doc = insights.survey_discovery(runtime, survey, job, refresh=args.refresh)
        elif args.action == "summaries":
            doc = insights.survey_summaries(
                runtime,
                survey,
                job,
                theme=args.theme,
                group=args.group,
                segment=_segment(args.segment),
                refresh=args.refresh,
            )
        elif args.action == "adopt":
            try:
                taxonomy, _ = insights.adopt_cluster(
                    runtime,
                    survey,
                    job,
                    args.cluster,
                    theme_id=args.id,
                    name=args.name,
                    polarity=args.polarity,
                )
            except LookupError as exc:
                raise ConfigError(str(exc), value=args.cluster) from exc
            doc = {"theme": taxonomy.themes[-1].id, "taxonomy_version": taxonomy.version}
            if args.reclassify:
                doc["job"] = _reclassify(runtime, survey.id, taxonomy.version)
        else:
            return _label(args, runtime, survey, job)
        if getattr(args, "out", None):
            _write(args.out, args.action, "discovery" if args.action == "discover" else "summaries", doc)
        else:
            _print(doc)
        return 0
    finally:
        runtime.close()
