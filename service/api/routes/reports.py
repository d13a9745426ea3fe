"""Weekly reports: the standalone HTML of a survey's week, subscriptions (admin), deliveries, unsubscribe."""

from __future__ import annotations

import hmac
import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field, field_validator, model_validator

from pipelines.errors import ConfigError
from pipelines.report.weekly import last_complete_week, parse_week
from pipelines.report.weekly_render import render_weekly_standalone
from service.deps import RuntimeDep, require
from service.errors import AUTH_PROBLEMS, APIError, problem_responses
from service.scheduler import report_for_survey, zone
from service.storage import reports as store
from service.storage.db import iso
from service.storage.tables import Subscription

__all__ = ["router"]

router = APIRouter()
surveys = APIRouter(
    prefix="/v1/surveys", tags=["reports"], dependencies=[Depends(require("upload"))], responses=AUTH_PROBLEMS
)
subscriptions = APIRouter(
    prefix="/v1/subscriptions",
    tags=["reports"],
    dependencies=[Depends(require("admin"))],
    responses=AUTH_PROBLEMS,
)
public = APIRouter(prefix="/v1/unsubscribe", tags=["reports"])

_Id = Annotated[int, Path(ge=1, le=2**31 - 1)]  # INTEGER columns: larger ids cannot exist
_ADDRESS = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+")
_TIME = r"^([01]\d|2[0-3]):[0-5]\d$"
_WEEK = r"^\d{4}-W\d{2}$"


# --- schemas ----------------------------------------------------------------------------------------------------


def _addresses(values: list[str]) -> list[str]:
    for value in values:
        if not _ADDRESS.fullmatch(value.strip()):
            raise ValueError(f"not an e-mail address: {value!r}")
    return [store.normalize_address(v) for v in values]


def _zone(value: str | None) -> str | None:
    if value is not None:
        try:
            zone(value)
        except ConfigError as err:
            raise ValueError(err.message) from None
    return value


class SubscriptionIn(BaseModel):
    name: str = Field("", max_length=200)
    recipients: list[str] = Field(min_length=1, max_length=100, description="e-mail addresses")
    survey_id: str | None = Field(None, max_length=32, description="a stored survey …")
    stream: str | None = Field(
        None, max_length=255, description="… or a file-name pattern (nps_*.csv): the newest analysed upload"
    )
    support_survey_id: str | None = Field(
        None, max_length=32, description="support comments to show alongside"
    )
    weekday: int = Field(0, ge=0, le=6, description="0 = Monday … 6 = Sunday")
    send_time: str = Field("09:00", pattern=_TIME, description="HH:MM in the time zone")
    timezone: str | None = Field(None, max_length=64, description="IANA zone (default KOE_REPORT_TIMEZONE)")
    active: bool = True

    _check_recipients = field_validator("recipients")(_addresses)
    _check_zone = field_validator("timezone")(_zone)

    @model_validator(mode="after")
    def _one_source(self) -> SubscriptionIn:
        if (self.survey_id is None) == (self.stream is None):
            raise ValueError("give exactly one of survey_id and stream")
        return self


class SubscriptionPatch(BaseModel):
    name: str | None = Field(None, max_length=200)
    recipients: list[str] | None = Field(None, min_length=1, max_length=100)
    support_survey_id: str | None = Field(None, max_length=32)
    weekday: int | None = Field(None, ge=0, le=6)
    send_time: str | None = Field(None, pattern=_TIME)
    timezone: str | None = Field(None, max_length=64)
    active: bool | None = None

    @field_validator("recipients")
    @classmethod
    def _check_recipients(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else _addresses(values)

    _check_zone = field_validator("timezone")(_zone)


class SubscriptionOut(BaseModel):
    id: int
    name: str
    recipients: list[str]
    survey_id: str | None
    stream: str | None
    support_survey_id: str | None
    weekday: int
    send_time: str
    timezone: str
    active: bool
    created_at: str | None
    updated_at: str | None


def _out(sub: Subscription) -> dict[str, Any]:
    return {
        "id": sub.id,
        "name": sub.name,
        "recipients": list(sub.recipients or []),
        "survey_id": sub.survey_id,
        "stream": sub.stream,
        "support_survey_id": sub.support_survey_id,
        "weekday": sub.weekday,
        "send_time": sub.send_time,
        "timezone": sub.timezone,
        "active": sub.active,
        "created_at": iso(sub.created_at),
        "updated_at": iso(sub.updated_at),
    }


# --- the report as a page ---------------------------------------------------------------------------------------

_REPORT_PROBLEMS = problem_responses(
    {
        404: "unknown survey",
        409: "not analysed yet",
        422: "an invalid week, or the survey has no date column",
    }
)


@surveys.get(
    "/{survey_id}/reports/weekly",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}}}, **_REPORT_PROBLEMS},
)
def weekly_report(
    survey_id: str,
    runtime: RuntimeDep,
    week: Annotated[
        str | None, Query(pattern=_WEEK, description="ISO week, e.g. 2026-W47 (default: last complete week)")
    ] = None,
    support_survey_id: Annotated[str | None, Query(max_length=32)] = None,
    download: Annotated[bool, Query(description="as an attachment to save")] = False,
) -> HTMLResponse:
    """The weekly report of a stored survey as one self-contained HTML file (charts inline, no script)."""
    survey = runtime.repo.get_survey(survey_id)
    if survey is None:
        raise APIError(404, f"no survey with id '{survey_id}' (deleted, or never uploaded)")
    if survey.current_job_id is None:
        raise APIError(409, f"survey '{survey_id}' has no finished analysis yet; poll GET /v1/jobs/{{id}}")
    tz = zone(runtime.settings.report_timezone)
    period = parse_week(week) if week else last_complete_week(datetime.now(tz).date())
    report = report_for_survey(runtime, survey_id, period, support_survey_id=support_survey_id)
    name = f"koe-weekly-{period.key}.html"
    disposition = "attachment" if download else "inline"
    return HTMLResponse(
        render_weekly_standalone(report), headers={"Content-Disposition": f'{disposition}; filename="{name}"'}
    )


# --- subscriptions ----------------------------------------------------------------------------------------------

_UNKNOWN = problem_responses({404: "unknown subscription"})


def _subscription(runtime: Any, subscription_id: int) -> Subscription:
    sub = store.get_subscription(runtime.db, subscription_id)
    if sub is None:
        raise APIError(404, f"no subscription with id {subscription_id}")
    return sub


def _known_survey(runtime: Any, survey_id: str | None, field: str) -> None:
    if survey_id is not None and runtime.repo.get_survey(survey_id) is None:
        raise APIError(422, f"{field}: no survey with id '{survey_id}'", field=field)


@subscriptions.post(
    "", status_code=201, response_model=SubscriptionOut, responses=problem_responses({422: "invalid"})
)
def create(body: SubscriptionIn, runtime: RuntimeDep) -> dict[str, Any]:
    """Send the weekly report of a survey (or of the newest upload of a stream) to these recipients."""
    _known_survey(runtime, body.survey_id, "survey_id")
    _known_survey(runtime, body.support_survey_id, "support_survey_id")
    fields = body.model_dump()
    fields["timezone"] = body.timezone or runtime.settings.report_timezone
    return _out(store.create_subscription(runtime.db, **fields))


@subscriptions.get("", response_model=list[SubscriptionOut])
def list_all(runtime: RuntimeDep) -> list[dict[str, Any]]:
    return [_out(s) for s in store.list_subscriptions(runtime.db)]


@subscriptions.get("/{subscription_id}", response_model=SubscriptionOut, responses=_UNKNOWN)
def get(subscription_id: _Id, runtime: RuntimeDep) -> dict[str, Any]:
    return _out(_subscription(runtime, subscription_id))


@subscriptions.patch("/{subscription_id}", response_model=SubscriptionOut, responses=_UNKNOWN)
def patch(subscription_id: _Id, body: SubscriptionPatch, runtime: RuntimeDep) -> dict[str, Any]:
    _known_survey(runtime, body.support_survey_id, "support_survey_id")
    sub = store.update_subscription(runtime.db, subscription_id, **body.model_dump(exclude_unset=True))
    if sub is None:
        raise APIError(404, f"no subscription with id {subscription_id}")
    return _out(sub)


@subscriptions.delete("/{subscription_id}", status_code=204, responses=_UNKNOWN)
def delete(subscription_id: _Id, runtime: RuntimeDep) -> Response:
    """Stop the subscription; what it sent stays in the delivery log."""
    if not store.delete_subscription(runtime.db, subscription_id):
        raise APIError(404, f"no subscription with id {subscription_id}")
    return Response(status_code=204)


@subscriptions.get("/{subscription_id}/deliveries", responses=_UNKNOWN)
def deliveries(
    subscription_id: _Id,
    runtime: RuntimeDep,
    state: Annotated[str | None, Query(pattern="^(pending|sending|retry|sent|failed)$")] = None,
    week: Annotated[str | None, Query(pattern=_WEEK)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """What was sent, to whom and when; failures with their error, SMTP code, attempts and next attempt."""
    _subscription(runtime, subscription_id)
    found = store.list_deliveries(
        runtime.db, subscription_id=subscription_id, states=[state] if state else None, week=week, limit=limit
    )
    return {"items": [store.delivery_out(d) for d in found]}


@subscriptions.post(
    "/{subscription_id}/deliveries/{delivery_id}/retry",
    responses=problem_responses({404: "unknown subscription or delivery"}),
)
def retry(subscription_id: _Id, delivery_id: _Id, runtime: RuntimeDep) -> dict[str, Any]:
    """Send a failed delivery again at the scheduler's next pass (attempts start from zero)."""
    _subscription(runtime, subscription_id)
    found = [
        d
        for d in store.list_deliveries(runtime.db, subscription_id=subscription_id, limit=10_000)
        if d.id == delivery_id
    ]
    if not found:
        raise APIError(404, f"subscription {subscription_id} has no delivery {delivery_id}")
    delivery = store.reset_delivery(runtime.db, delivery_id)
    assert delivery is not None
    return store.delivery_out(delivery)


# --- one-click unsubscribe (RFC 8058): no API key, the link's signature is the permission -----------------------

_PAGE = """<!DOCTYPE html><html lang="ja"><head><meta charset="utf-8"><title>配信停止</title></head>
<body style="font-family:sans-serif;max-width:560px;margin:40px auto;line-height:1.7">{body}</body></html>"""


def _signed(runtime: Any, s: int, r: str, t: str) -> Subscription:
    sub = store.get_subscription(runtime.db, s)
    expected = store.unsubscribe_signature(sub, r).encode("ascii") if sub else b""
    if sub is None or not hmac.compare_digest(expected, t.encode("utf-8")):
        raise APIError(404, "this unsubscribe link is not valid (or the subscription no longer exists)")
    return sub


_Sub = Annotated[int, Query(ge=1, le=2**31 - 1)]
_Addr = Annotated[str, Query(max_length=320)]
_Sig = Annotated[str, Query(min_length=32, max_length=64)]


@public.get("", response_class=HTMLResponse, responses=problem_responses({404: "invalid link"}))
def unsubscribe_page(runtime: RuntimeDep, s: _Sub, r: _Addr, t: _Sig) -> HTMLResponse:
    """A confirmation page: link scanners follow GET links, so only the button (POST) unsubscribes."""
    sub = _signed(runtime, s, r, t)
    from html import escape

    body = (
        f"<p>{escape(store.normalize_address(r))} への週次レポート「{escape(sub.name or '')}」の配信を停止しますか？</p>"
        f'<form method="post" action="?s={s}&amp;r={escape(r)}&amp;t={escape(t)}">'
        '<button type="submit">配信を停止する</button></form>'
    )
    return HTMLResponse(_PAGE.format(body=body))


@public.post("", response_class=HTMLResponse, responses=problem_responses({404: "invalid link"}))
def unsubscribe(runtime: RuntimeDep, s: _Sub, r: _Addr, t: _Sig) -> HTMLResponse:
    sub = _signed(runtime, s, r, t)
    store.remove_recipient(runtime.db, sub.id, r)
    return HTMLResponse(_PAGE.format(body="<p>配信を停止しました。</p>"))


router.include_router(surveys)
router.include_router(subscriptions)
router.include_router(public)
