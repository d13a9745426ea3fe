"""Dashboard page of one analysed survey's insights: emerging themes (each with a one-step 「テーマに追加」) and
the theme summaries with the quotes they cite.

What is shown is the analysis's ``discovery`` and ``summaries`` (``pipelines.insights``), or, for a summary
without them, what the API computes on first request (``service.insights``); the page only lays out
``pipelines.report.insight_views``. Adding a theme goes through ``service.insights.adopt_cluster``, as
``POST /v1/surveys/{id}/discovery/{cluster}/adopt`` does: a new taxonomy version.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pipelines.errors import KoeError
from pipelines.report.insight_views import discovery_view, summaries_view
from pipelines.report.labels import group_labels
from service import insights
from service.storage.tables import Job, Survey
from service.storage.taxonomies import VersionConflict
from service.web.deps import analysed_or_error_page, check_csrf, render, runtime_of, signed_in
from service.web.users import UserInfo

__all__ = ["router"]

router = APIRouter(prefix="/app/surveys", include_in_schema=False)
Viewer = Annotated[UserInfo, Depends(signed_in("viewer"))]
Analyst = Annotated[UserInfo, Depends(signed_in("analyst"))]
CSRF = [Depends(check_csrf())]


def _page(
    request: Request, survey: Survey, job: Job, *, message: str | None = None, error: str | None = None
) -> dict[str, Any]:
    runtime = runtime_of(request)
    summary = job.summary or {}
    discovery = insights.survey_discovery(runtime, survey, job)
    summaries = insights.survey_summaries(runtime, survey, job)
    taxonomy = runtime.taxonomy()
    adopted = {t.examples: t.id for t in taxonomy.themes if t.custom}  # a cluster added before: same examples
    view = discovery_view(discovery) or {"clusters": []}
    examples = {c["id"]: tuple(c.get("examples") or ()) for c in discovery.get("clusters") or []}
    for cluster in view["clusters"]:
        cluster["adopted"] = adopted.get(examples.get(cluster["id"], ()))
    labels = {t["id"]: t.get("label") or t["id"] for t in summary.get("themes") or []}
    return {
        "survey": survey,
        "job": job,
        "s": summary,
        "tab": "insights",
        "emerging": view,
        "summaries": summaries_view(summaries, group_labels(summary), labels) or [],
        "min_mentions": summaries.get("min_mentions"),
        "taxonomy_version": taxonomy.version,
        "message": message,
        "error": error,
    }


@router.get("/{survey_id}/insights", response_class=HTMLResponse)
def insights_page(request: Request, survey_id: str, user: Viewer) -> Response:
    found = analysed_or_error_page(request, survey_id)
    if isinstance(found, Response):
        return found
    survey, job = found
    added = request.query_params.get("added")
    taxonomy = runtime_of(request).taxonomy()
    message = None
    # only a theme that exists is announced: anyone can write the URL
    if added and added in taxonomy.ids:
        message = (
            f"「{taxonomy.get(added).name}」をテーマ分類に追加しました（バージョン {taxonomy.version}）。"
            "この調査に反映するには再分類してください。"
        )
    return render(request, "insights.html", _page(request, survey, job, message=message))


@router.post("/{survey_id}/insights/{cluster_id}/adopt", dependencies=CSRF)
def adopt(
    request: Request,
    survey_id: str,
    cluster_id: str,
    user: Analyst,
    base_version: Annotated[int | None, Form(ge=1)] = None,
) -> Response:
    """「テーマに追加」: the cluster becomes a custom theme (its name, description and central sentences)."""
    found = analysed_or_error_page(request, survey_id)
    if isinstance(found, Response):
        return found
    survey, job = found
    runtime = runtime_of(request)
    try:
        taxonomy, _ = insights.adopt_cluster(runtime, survey, job, cluster_id, base_version=base_version)
    except LookupError as exc:
        return render(request, "error.html", {"title": "追加できません", "message": str(exc)}, 404)
    except VersionConflict:
        current = runtime.taxonomy().version
        error = f"テーマ分類は別の人がバージョン {current} に更新しました。内容を確認してからもう一度追加してください。"
        return render(request, "insights.html", _page(request, survey, job, error=error), 409)
    except KoeError as exc:
        return render(request, "insights.html", _page(request, survey, job, error=str(exc)), 422)
    theme = taxonomy.themes[-1]
    return RedirectResponse(f"/app/surveys/{survey.id}/insights?added={theme.id}", status_code=303)
