"""Discovery, theme summaries and labelling for a stored survey: what the routes and ``koe insights`` call.

Every figure comes from ``pipelines`` (discovery, summaries, labelling); this module loads a survey's stored
results, gives the stages the models and an assistant (one per computation: its own token budget), and keeps
what they return with the job (``survey_insights``) or the survey (``theme_labels``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from models.bundle import ModelBundle
from models.taxonomy import Taxonomy
from pipelines.discovery import AnswerSentences, lemmatizer
from pipelines.errors import ConfigError
from pipelines.insights import AssistantFactory, InsightOptions, discovery_section, summaries_section
from pipelines.labelling import (
    LabelItem,
    check_custom,
    propose_labels,
    retrain_examples,
    sample_for_labelling,
    theme_scores,
)
from pipelines.records import AnalyzedRow, TextResult
from service.config import Settings
from service.jobs.work import ingest_info
from service.llm import assistant_from_settings
from service.runtime import Runtime
from service.storage.insights import (
    NewLabel,
    add_labels,
    delete_insight,
    get_insight,
    label_out,
    labelled_hashes,
    list_labels,
    put_insight,
    text_hash,
)
from service.storage.repository import RowFilter
from service.storage.tables import Job, Survey
from service.storage.taxonomies import save_taxonomy

__all__ = [
    "AnalysedSurvey",
    "adopt_cluster",
    "insight_options",
    "kept_discovery",
    "load_results",
    "new_assistant",
    "propose",
    "retrain",
    "run_discovery",
    "run_summaries",
    "survey_discovery",
    "survey_summaries",
]

log = logging.getLogger("koe.insights")
_PAGE = 2000
LABEL_POOL = 800  # sentences scored when proposing labels (a fixed sample above it)


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


@dataclass
class AnalysedSurvey:
    rows: list[AnalyzedRow]
    groups: list[str | None] | None  # NPS group per row; None for support data
    answers: list[AnswerSentences]


def _pages(runtime: Runtime, survey: Survey, job: Job) -> Iterator[tuple[Any, str | None, dict[str, Any]]]:
    offset = 0
    while True:
        _, page = runtime.repo.query_rows(survey.id, job.id, RowFilter(), limit=_PAGE, offset=offset)
        if not page:
            return
        yield from page
        offset += len(page)


def load_results(runtime: Runtime, survey: Survey, job: Job) -> AnalysedSurvey:
    """The job's results as the stages read them: rows with answers, NPS groups, answers' sentences."""
    info = ingest_info(survey.info or {})
    rows: list[AnalyzedRow] = []
    groups: list[str | None] = []
    answers: list[AnswerSentences] = []
    for row, group, stored in _pages(runtime, survey, job):
        results = {q: TextResult.from_dict(v) for q, v in stored.items()}
        rows.append(AnalyzedRow.of(row, results))
        groups.append(group)
        answers.extend(AnswerSentences.from_stored(row.row, q, row.date, v) for q, v in stored.items())
    return AnalysedSurvey(rows, groups if info.kind == "survey" else None, answers)


def _header(survey: Survey, job: Job) -> dict[str, Any]:
    return {"survey_id": survey.id, "job_id": job.id, "taxonomy_version": job.taxonomy_version}


def insight_options(settings: Settings) -> InsightOptions:
    """Discovery's and the summaries' limits from the settings (the analysis and on-request alike)."""
    return InsightOptions(
        max_sentences=settings.discovery_max_sentences,
        min_mentions=settings.min_count,
        seed=settings.seed,
        workers=settings.llm_concurrency,
    )


def new_assistant(settings: Settings) -> AssistantFactory:
    """A new LLM assistant per computation (its own token budget); it gives None without KOE_LLM_BASE_URL."""
    return partial(assistant_from_settings, settings)


# -- discovery -----------------------------------------------------------------------------------------
def run_discovery(
    bundle: ModelBundle, settings: Settings, answers: Any, rows: Sequence[Any], *, taken_ids: Sequence[str]
) -> dict[str, Any]:
    """The ``discovery`` section with the settings' limits and LLM (if any); shared by the API (stored
    surveys) and ``koe insights`` (files)."""
    return discovery_section(
        bundle,
        answers,
        rows,
        options=insight_options(settings),
        new_assistant=new_assistant(settings),
        taken_ids=taken_ids,
    )


def kept_discovery(runtime: Runtime, survey: Survey, job: Job) -> dict[str, Any] | None:
    """The discovery kept for the job: the last one computed on request, else the analysis's own (kept from
    then on, so that adopting a cluster finds it); None when there is neither."""
    if (stored := get_insight(runtime.db, job.id, "discovery")) is not None:
        return stored
    analysed = (job.summary or {}).get("discovery")
    if analysed is None:
        return None
    generated = (job.summary or {}).get("generated_at") or _now()
    doc = {**_header(survey, job), "generated_at": generated, **analysed}
    return put_insight(runtime.db, job.id, "discovery", "", doc)


def survey_discovery(runtime: Runtime, survey: Survey, job: Job, *, refresh: bool = False) -> dict[str, Any]:
    """Emerging themes among the sentences the job's taxonomy does not cover (the analysis's, or computed
    once per job when it has none; ``refresh`` computes them again)."""
    if not refresh and (kept := kept_discovery(runtime, survey, job)) is not None:
        return kept
    data = load_results(runtime, survey, job)
    bundle = runtime.bundle(job.taxonomy_version)
    doc = run_discovery(
        bundle,
        runtime.settings,
        data.answers,
        data.rows,
        taken_ids=[*runtime.taxonomy().ids, *bundle.taxonomy.ids],
    )
    doc = {**_header(survey, job), "generated_at": _now(), **doc}
    if refresh:
        delete_insight(runtime.db, job.id, "discovery", "")
    return put_insight(runtime.db, job.id, "discovery", "", doc)


def _unique_id(wanted: str, taken: Sequence[str]) -> str:
    candidate, n = wanted, 2
    while candidate in taken:
        candidate, n = f"{wanted[:44]}_{n}", n + 1
    return candidate


def adopt_cluster(
    runtime: Runtime,
    survey: Survey,
    job: Job,
    cluster_id: str,
    *,
    theme_id: str | None = None,
    name: str | None = None,
    name_en: str = "",
    description: str | None = None,
    polarity: str | None = None,
    examples: list[str] | None = None,
    base_version: int | None = None,
) -> tuple[Taxonomy, dict[str, Any]]:
    """Add a discovered cluster to the taxonomy as a custom theme (its examples: the cluster's sentences
    nearest its centre, unless given): a new taxonomy version. Raises ``LookupError`` for an unknown
    cluster, ``VersionConflict`` when ``base_version`` is not the current one."""
    doc = kept_discovery(runtime, survey, job)
    if doc is None:
        raise LookupError(f"no discovery for survey '{survey.id}' yet: GET /v1/surveys/{survey.id}/discovery")
    cluster = next((c for c in doc["clusters"] if c["id"] == cluster_id), None)
    if cluster is None:
        known = ", ".join(c["id"] for c in doc["clusters"]) or "(none)"
        raise LookupError(f"no cluster '{cluster_id}' in this survey's discovery; clusters: {known}")
    current = runtime.taxonomy()
    if base_version is not None and base_version != current.version:
        from service.storage.taxonomies import VersionConflict

        raise VersionConflict(
            f"base_version: the taxonomy is at version {current.version}, not {base_version}; reload and retry",
            value=str(base_version),
        )
    new_id = theme_id or _unique_id(cluster["suggested_id"], current.ids)
    new = current.add_theme(
        new_id,
        name or cluster["name"],
        examples=examples or cluster["examples"],
        description=cluster["description"] if description is None else description,
        name_en=name_en,
        polarity=polarity or cluster["polarity"],
    )
    saved = save_taxonomy(
        runtime.db,
        new,
        note=f"adopt discovery cluster {cluster_id} of survey {survey.id}",
        expected_version=new.version,
    )
    return saved, cluster


# -- summaries -----------------------------------------------------------------------------------------
def _summary_key(theme: str | None, group: str | None, segment: tuple[str, str] | None) -> str:
    seg = f"{segment[0]}:{segment[1]}" if segment else ""
    key = f"theme={theme or '*'}|group={group or '*'}|segment={seg}"
    return key if len(key) <= 300 else "sha256=" + hashlib.sha256(key.encode()).hexdigest()


def run_summaries(
    bundle: ModelBundle,
    settings: Settings,
    rows: Sequence[AnalyzedRow],
    groups: Sequence[str | None] | None,
    *,
    theme: str | None = None,
    group: str | None = None,
    segment: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The ``summaries`` section with the settings' limits and LLM (if any); shared by the API (stored
    surveys) and ``koe insights`` (files)."""
    return summaries_section(
        bundle,
        rows,
        groups,
        options=insight_options(settings),
        new_assistant=new_assistant(settings),
        theme=theme,
        group=group,
        segment=segment,
    )


def survey_summaries(
    runtime: Runtime,
    survey: Survey,
    job: Job,
    *,
    theme: str | None = None,
    group: str | None = None,
    segment: tuple[str, str] | None = None,
    refresh: bool = False,
) -> dict[str, Any]:
    """Grounded summaries per theme x group (x segment), LLM or extractive; kept per job and filter. Without
    a filter, the analysis's own summaries serve (unless ``refresh``)."""
    key = _summary_key(theme, group, segment)
    if not refresh and (stored := get_insight(runtime.db, job.id, "summaries", key)) is not None:
        return stored
    unfiltered = theme is None and group is None and segment is None
    analysed = (job.summary or {}).get("summaries") if unfiltered and not refresh else None
    if analysed is not None:
        section, generated = analysed, (job.summary or {}).get("generated_at") or _now()
    else:
        data = load_results(runtime, survey, job)
        bundle = runtime.bundle(job.taxonomy_version)
        section = run_summaries(
            bundle, runtime.settings, data.rows, data.groups, theme=theme, group=group, segment=segment
        )
        generated = _now()
    doc = {
        **_header(survey, job),
        "generated_at": generated,
        "filter": {
            "theme": theme,
            "group": group,
            "segment": f"{segment[0]}:{segment[1]}" if segment else None,
        },
        **section,
    }
    if refresh:
        delete_insight(runtime.db, job.id, "summaries", key)
    return put_insight(runtime.db, job.id, "summaries", key, doc)


# -- labelling -----------------------------------------------------------------------------------------
def _pool(
    runtime: Runtime, survey: Survey, job: Job, bundle: ModelBundle, skip: set[str], limit: int
) -> list[LabelItem]:
    lemmas = lemmatizer(bundle.tokenizer)
    seen: set[str] = set()
    items = []
    for row, _, stored in _pages(runtime, survey, job):
        for question, result in stored.items():
            for sentence in result.get("sentences") or []:
                text = str(sentence["text"])
                digest = text_hash(text)
                if text in seen or digest in skip or len(set(lemmas(text))) < 2:
                    continue
                seen.add(text)
                items.append(LabelItem(row.row, question, text))
    if len(items) > limit:
        keep = sorted(items, key=lambda it: hashlib.sha256(it.text.encode()).hexdigest())[:limit]
        chosen = {id(it) for it in keep}
        items = [it for it in items if id(it) in chosen]
    return items


def propose(
    runtime: Runtime,
    survey: Survey,
    job: Job,
    theme_id: str,
    *,
    size: int = 30,
    seed: int | None = None,
    pool: int = LABEL_POOL,
) -> dict[str, Any]:
    """Propose labels for ``size`` more sentences of the survey (the current taxonomy's custom theme)."""
    bundle = runtime.bundle()
    theme = check_custom(bundle, theme_id)
    items = _pool(runtime, survey, job, bundle, labelled_hashes(runtime.db, survey.id, theme.id), pool)
    if not items:
        return {"theme": theme.id, "proposed": [], "note": "every informative sentence is labelled already"}
    scores = theme_scores(bundle, theme.id, bundle.encoder.encode([it.text for it in items]))
    picked = sample_for_labelling(
        items, scores, size=size, seed=runtime.settings.seed if seed is None else seed
    )
    assistant = new_assistant(runtime.settings)()
    try:
        proposals = propose_labels([items[i] for i in picked], scores[picked], theme, assistant)
        report = assistant.report() if assistant else None
    finally:
        if assistant:
            assistant.close()
    stored = add_labels(
        runtime.db,
        survey.id,
        theme.id,
        runtime.taxonomy().version,
        [
            NewLabel(p.item.row, p.item.question, p.item.text, p.score, p.proposed, p.proposed_by, p.reason)
            for p in proposals
        ],
    )
    return {"theme": theme.id, "llm": report, "proposed": [label_out(r) for r in stored]}


def retrain(
    runtime: Runtime,
    survey: Survey,
    theme_id: str,
    *,
    base_version: int | None = None,
    max_new: int = 20,
) -> dict[str, Any]:
    """Choose new examples and counter-examples (rejected sentences it still flags) for the custom theme
    from the survey's decided labels; a new taxonomy version when any is added. The figures (before, after,
    cross-validated) come back either way."""
    bundle = runtime.bundle()
    theme = check_custom(bundle, theme_id)
    current = bundle.taxonomy
    if base_version is not None and base_version != current.version:
        from service.storage.taxonomies import VersionConflict

        raise VersionConflict(
            f"base_version: the taxonomy is at version {current.version}, not {base_version}; reload and retry",
            value=str(base_version),
        )
    decided = list_labels(runtime.db, survey.id, theme.id, decided=True)
    if not decided:
        raise ConfigError(
            f"no decided labels for theme '{theme.id}' on this survey yet: propose labels, then accept or "
            "correct them",
            value=theme.id,
        )
    texts = [r.text for r in decided]
    result = retrain_examples(
        texts,
        [bool(r.label) for r in decided],
        bundle.encoder.encode(texts),
        bundle.themes.prototype_proba,
        bundle.prototypes(theme.id),
        base_counters=bundle.counter_prototypes(theme.id),
        existing=theme.examples,
        existing_counters=theme.counter_examples,
        max_new=max_new,
    )
    out: dict[str, Any] = {"theme": theme.id, "taxonomy_version": current.version, "changed": False}
    if result.added or result.counter_examples:
        new = current.edit(theme.id, add_examples=result.added, add_counter_examples=result.counter_examples)
        saved = save_taxonomy(
            runtime.db,
            new,
            note=f"retrain {theme.id} on {len(decided)} labels of survey {survey.id}",
            expected_version=new.version,
        )
        out.update(taxonomy_version=saved.version, changed=True)
    log.info(
        "theme retrained",
        extra={
            "theme": theme.id,
            "added": len(result.added),
            "counter_examples": len(result.counter_examples),
            "labels": len(decided),
        },
    )
    return {**out, **result.to_dict()}
