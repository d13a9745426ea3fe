"""Discovery of emerging themes, theme summaries and labelling help: /v1/surveys/{id}/discovery, …/summaries,
…/labels. Reading and labelling need an ``upload`` key; changing the taxonomy (adopt, retrain) ``admin``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from service import insights
from service.api.views import job_out
from service.deps import RunnerDep, RuntimeDep, require
from service.errors import AUTH_PROBLEMS, APIError, problem_responses
from service.schemas import MAX_VERSION
from service.storage import insights as store
from service.storage.taxonomies import VersionConflict
from service.survey_queries import analysed_survey, get_survey, parse_segment

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/surveys",
    tags=["insights"],
    dependencies=[Depends(require("upload"))],
    responses=AUTH_PROBLEMS,
)
_admin = [Depends(require("admin"))]
_RESULTS = problem_responses({404: "unknown survey", 409: "not analysed yet (the problem names the job)"})
_BODY = problem_responses({413: "request body too large", 422: "invalid body, or an unknown theme id"})
_ThemeId = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{1,47}$", description="a theme id of the taxonomy")]
_ClusterId = Annotated[str, Path(pattern=r"^c[1-9][0-9]{0,3}$", description="a cluster id from …/discovery")]
Group = Literal["all", "detractors", "passives", "promoters"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class AdoptRequest(_Body):
    id: str | None = Field(
        None, pattern=r"^[a-z][a-z0-9_]{1,47}$", description="theme id (default: the suggested one)"
    )
    name: str | None = Field(None, min_length=1, max_length=100, description="default: the cluster's name")
    name_en: str = Field("", max_length=100)
    description: str | None = Field(None, max_length=2000)
    polarity: Literal["positive_signal", "negative_signal", "topic"] | None = None
    examples: list[str] | None = Field(
        None, min_length=1, max_length=200, description="default: the cluster's five most central sentences"
    )
    base_version: int | None = Field(None, ge=1, le=MAX_VERSION, description="409 if the taxonomy moved on")
    reclassify: bool = Field(False, description="also re-classify this survey under the new version")


class ProposeRequest(_Body):
    size: int = Field(30, ge=1, le=200, description="sentences to propose labels for")
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="sampling seed (default: KOE_SEED)")


class Decision(_Body):
    id: int = Field(..., ge=1, le=2**31 - 1, description="a label id from the proposals")
    label: bool = Field(..., description="true: the sentence is about the theme")


class DecideRequest(_Body):
    decisions: list[Decision] = Field(..., min_length=1, max_length=1000)


class RetrainRequest(_Body):
    base_version: int | None = Field(None, ge=1, le=MAX_VERSION, description="409 if the taxonomy moved on")
    max_new: int = Field(20, ge=1, le=200, description="most examples added in one retraining")
    reclassify: bool = Field(False, description="also re-classify this survey under the new version")


def _reclassify(runtime: Any, runner: Any, survey_id: str, version: int) -> dict[str, Any]:
    job = runtime.repo.create_job(survey_id, "reclassify", version, runtime.settings.job_chunk_rows)
    runner.submit(job.id)
    return job_out(runtime.repo, job)


@router.get("/{survey_id}/discovery", responses=_RESULTS)
def discovery(
    survey_id: str,
    runtime: RuntimeDep,
    refresh: Annotated[bool, Query(description="compute again (otherwise kept per analysis)")] = False,
) -> dict[str, Any]:
    """Emerging themes: clusters of the sentences no theme covers (or covers with low confidence), with
    keywords, representative sentences, size, weekly trend and a suggested name. The analysis's own (its
    summary's ``discovery``), or computed on first request when it has none."""
    survey, job = analysed_survey(runtime, survey_id)
    return insights.survey_discovery(runtime, survey, job, refresh=refresh)


@router.post(
    "/{survey_id}/discovery/{cluster_id}/adopt",
    status_code=201,
    dependencies=_admin,
    responses={
        **_BODY,
        **problem_responses(
            {
                404: "unknown survey or cluster",
                409: "not analysed yet, no discovery yet, or base_version is not the current version",
            }
        ),
    },
)
def adopt(
    survey_id: str, cluster_id: _ClusterId, body: AdoptRequest, runtime: RuntimeDep, runner: RunnerDep
) -> JSONResponse:
    """Add a discovered cluster to the taxonomy as a custom theme in one step (a new version)."""
    survey, job = analysed_survey(runtime, survey_id)
    if insights.kept_discovery(runtime, survey, job) is None:
        raise APIError(
            409, f"no discovery for survey '{survey_id}' yet: GET /v1/surveys/{survey_id}/discovery first"
        )
    try:
        taxonomy, cluster = insights.adopt_cluster(
            runtime,
            survey,
            job,
            cluster_id,
            theme_id=body.id,
            name=body.name,
            name_en=body.name_en,
            description=body.description,
            polarity=body.polarity,
            examples=body.examples,
            base_version=body.base_version,
        )
    except LookupError as exc:
        raise APIError(404, str(exc)) from exc
    except VersionConflict as exc:
        raise APIError(409, str(exc), field="base_version") from exc
    theme_id = taxonomy.themes[-1].id
    out = {
        "theme": theme_id,
        "cluster": cluster["id"],
        "taxonomy": taxonomy.to_dict(),
        "job": _reclassify(runtime, runner, survey.id, taxonomy.version) if body.reclassify else None,
    }
    return JSONResponse(
        out, status_code=201, headers={"Location": f"/v1/taxonomy/versions/{taxonomy.version}"}
    )


@router.get(
    "/{survey_id}/summaries",
    responses={
        **_RESULTS,
        **problem_responses({422: "unknown theme, or a segment that is not COLUMN:VALUE"}),
    },
)
def summaries(
    survey_id: str,
    runtime: RuntimeDep,
    theme: Annotated[str | None, Query(max_length=48, description="a theme id")] = None,
    group: Annotated[Group | None, Query(description="all, or one NPS group")] = None,
    segment: Annotated[
        str | None, Query(max_length=300, description="COLUMN:VALUE, e.g. プラン:ライト")
    ] = None,
    refresh: Annotated[
        bool, Query(description="compute again (otherwise kept per analysis and filter)")
    ] = False,
) -> dict[str, Any]:
    """Short Japanese summaries per theme and group, each sentence citing the quotes it rests on (with an
    LLM), or the theme's keywords and representative quotes (without one: ``method: extractive``)."""
    survey, job = analysed_survey(runtime, survey_id)
    known = runtime.taxonomy(job.taxonomy_version).ids
    if theme is not None and theme not in known:
        raise APIError(422, f"theme: unknown theme id '{theme}'; known: {', '.join(known)}", field="theme")
    seg = parse_segment(segment)
    if seg is not None:
        columns = (survey.info or {}).get("mapping", {}).get("segments", [])
        if seg[0] not in columns:
            raise APIError(
                422,
                f"segment: '{seg[0]}' is not a segment column; segment columns: {', '.join(columns) or '(none)'}",
                field="segment",
            )
    return insights.survey_summaries(
        runtime, survey, job, theme=theme, group=group, segment=seg, refresh=refresh
    )


@router.post(
    "/{survey_id}/labels/{theme_id}/proposals",
    status_code=201,
    responses={**_RESULTS, **_BODY},
)
def propose(survey_id: str, theme_id: _ThemeId, body: ProposeRequest, runtime: RuntimeDep) -> JSONResponse:
    """Propose labels (LLM, or the classifier without one) for a sample of sentences: a custom theme of the
    current taxonomy. Sentences already labelled for the theme are not proposed again."""
    survey, job = analysed_survey(runtime, survey_id)
    out = insights.propose(runtime, survey, job, theme_id, size=body.size, seed=body.seed)
    return JSONResponse(out, status_code=201)


@router.get("/{survey_id}/labels/{theme_id}", responses=problem_responses({404: "unknown survey"}))
def labels(
    survey_id: str,
    theme_id: _ThemeId,
    runtime: RuntimeDep,
    state: Annotated[Literal["proposed", "accepted", "corrected"] | None, Query()] = None,
) -> dict[str, Any]:
    """The theme's labels on this survey: proposals waiting for a decision, accepted and corrected ones."""
    survey = get_survey(runtime, survey_id)
    items = store.list_labels(runtime.db, survey.id, theme_id, state=state)
    return {
        "theme": theme_id,
        "counts": store.label_counts(runtime.db, survey.id, theme_id),
        "items": [store.label_out(r) for r in items],
    }


@router.post(
    "/{survey_id}/labels/{theme_id}/decisions",
    responses={
        **_BODY,
        **problem_responses({404: "unknown survey, or label ids not of this survey and theme"}),
    },
)
def decide(survey_id: str, theme_id: _ThemeId, body: DecideRequest, runtime: RuntimeDep) -> dict[str, Any]:
    """Accept (label = the proposal) or correct (label = its opposite) proposals; deciding again overwrites."""
    survey = get_survey(runtime, survey_id)
    pairs = [(d.id, d.label) for d in body.decisions]
    known = {r.id for r in store.list_labels(runtime.db, survey.id, theme_id)}
    unknown = sorted({i for i, _ in pairs if i not in known})
    if unknown:
        raise APIError(
            404,
            f"label ids not of this survey and theme: {', '.join(map(str, unknown[:20]))}",
            field="decisions",
        )
    updated, _ = store.decide_labels(runtime.db, survey.id, theme_id, pairs)
    return {
        "theme": theme_id,
        "decided": len(updated),
        "counts": store.label_counts(runtime.db, survey.id, theme_id),
    }


@router.post(
    "/{survey_id}/labels/{theme_id}/retrain",
    dependencies=_admin,
    responses={
        **_BODY,
        **problem_responses({404: "unknown survey", 409: "base_version is not the current version"}),
    },
)
def retrain(
    survey_id: str, theme_id: _ThemeId, body: RetrainRequest, runtime: RuntimeDep, runner: RunnerDep
) -> dict[str, Any]:
    """Retrain the custom theme on the decided labels: accepted positives that improve F1 on the labels
    become examples (a new taxonomy version); figures before, after and cross-validated."""
    survey = get_survey(runtime, survey_id)
    try:
        out = insights.retrain(
            runtime, survey, theme_id, base_version=body.base_version, max_new=body.max_new
        )
    except VersionConflict as exc:
        raise APIError(409, str(exc), field="base_version") from exc
    out["job"] = (
        _reclassify(runtime, runner, survey.id, out["taxonomy_version"])
        if body.reclassify and out["changed"]
        else None
    )
    return out
