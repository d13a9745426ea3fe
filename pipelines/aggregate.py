"""Assemble ``summary.json`` (docs/summary-schema.md) from the analysed rows.

Reads ``AnalyzedRow`` records and the ingest/model information; every number comes from ``nps``,
``drivers``, ``quotes`` and ``signals``; this module only decides which rows feed which figure.
For ``kind="support"`` (no score) the score-based parts are None: ``nps``, ``metric``,
``score_distribution``, ``segments[*].nps``, ``periods[*][*].nps``, ``change`` score fields, question
``nps``/``drivers``, theme ``by_group``, ``drivers``, ``drivers_method`` and ``promoter_quotes``.
The runner adds ``issues`` (it owns errors.csv).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import PurePath
from typing import Any

import numpy as np

from pipelines.drivers import (
    ThemeMatrix,
    driver_analysis,
    drivers_method,
    response_themes,
    theme_changes,
    theme_stats,
)
from pipelines.nps import (
    GRANULARITIES,
    Metric,
    get_metric,
    group_of,
    nps_by_period,
    nps_by_segment,
    nps_difference,
    nps_summary,
    period_of,
)
from pipelines.quotes import Embeddings, promoter_quotes, theme_quotes
from pipelines.records import AnalyzedRow, IngestInfo
from pipelines.signals import DEFAULT_NEGATIVE, DEFAULT_POSITIVE, engagement_signals

__all__ = ["SCHEMA_VERSION", "build_summary", "notes_for", "split_segment", "subset_drivers"]

SCHEMA_VERSION = "1.0"
SMALL_SAMPLE = 100  # below this many scored responses, the notes point at the width of the interval

_NOTE_NPS_JAPAN = (
    "日本のNPSについて: 日本の回答者は高い点数（9・10）をつけにくく中間の点数を選びやすいため、NPSは欧米より低く出る"
    "傾向があります。海外では+40前後がよい水準の目安とされることが多い一方、日本では0〜+10程度でも良好なことが多く、"
    "業界平均がマイナスになることも珍しくありません。海外の基準と直接比べず、日本国内の同業ベンチマークや自社の推移と"
    "比べてください。"
)
_NOTE_SCALE_JAPAN = (
    "日本の回答者は中間の選択肢を選びやすく、満足度などのスコアは海外より低めに出る傾向があります。海外の基準と直接比べず、"
    "日本国内のベンチマークや自社の推移と比べてください。"
)
_NOTE_MULTI_THEME = (
    "テーマは1つの回答に複数付くことがあるため、テーマ別の件数の合計は回答数より多くなることがあります。"
)
_NOTE_DRIVERS = (
    "「影響度」は、そのテーマに言及した回答を除いたときのスコアとの差です。相関の目安であり、因果関係を示すものでは"
    "ありません。リフトの検定はFisherの正確検定、複数テーマの比較はBenjamini–Hochberg法で補正しています"
    "（言及が{min_count}件未満のテーマは検定していません）。"
)
_NOTE_SMALL = "スコアのある回答が{n}件と少ないため、95%信頼区間が広くなっています。点推定だけでなく区間の幅も見て判断してください。"
_NOTE_SUPPORT = "スコア列がない（サポート問い合わせ）ため、NPS・セグメント別スコア・ドライバー分析・推奨者の声は算出していません。"
_NOTE_NO_DATE = "日付列がないため、期間別の推移と前期比較は算出していません。"


JST = timezone(timedelta(hours=9), "JST")  # report times in Japan time, whatever the server's zone


def _plain(obj: Any) -> Any:
    """JSON-ready copy: numpy scalars -> Python numbers, tuples/arrays -> lists, paths -> str."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | np.ndarray):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, PurePath):
        return str(obj)
    return obj


def notes_for(*, metric: Metric | None, n_scored: int, min_count: int, has_dates: bool) -> list[str]:
    """Interpretation notes shown in the report (Japanese). ``metric=None``: support kind, no score."""
    notes = []
    if metric is None:
        notes.append(_NOTE_SUPPORT)
    else:
        notes.append(_NOTE_NPS_JAPAN if metric.name == "nps" else _NOTE_SCALE_JAPAN)
        if 0 < n_scored < SMALL_SAMPLE:
            notes.append(_NOTE_SMALL.format(n=n_scored))
        notes.append(_NOTE_DRIVERS.format(min_count=min_count))
    notes.append(_NOTE_MULTI_THEME)
    if not has_dates:
        notes.append(_NOTE_NO_DATE)
    return notes


def _change(
    rows: Sequence[AnalyzedRow],
    periods: Mapping[str, list[dict[str, Any]]],
    tm: ThemeMatrix,
    metric: Metric | None,
) -> dict[str, Any] | None:
    """Last period vs the one before, at the finest granularity that has two periods with responses."""
    granularity = next((g for g in GRANULARITIES if len(periods[g]) >= 2), None)
    if granularity is None:
        return None
    previous, current = periods[granularity][-2], periods[granularity][-1]
    keys = np.array([period_of(r.date, granularity).key if r.date else "" for r in rows])
    cur, prev = keys == current["period"], keys == previous["period"]
    out: dict[str, Any] = {
        "granularity": granularity,
        "current": current["period"],
        "previous": previous["period"],
        "nps_delta": None,
        "ci95": None,
        "significant": None,
        "volume": {"current": int(cur.sum()), "previous": int(prev.sum())},
        "themes": theme_changes(tm, cur, prev),
    }
    if metric is not None:
        diff = nps_difference(
            [r.score for r, c in zip(rows, cur, strict=True) if c],
            [r.score for r, p in zip(rows, prev, strict=True) if p],
            metric,
        )
        out.update(nps_delta=diff["delta"], ci95=diff["ci95"], significant=diff["significant"])
    return out


def _question(
    rows: Sequence[AnalyzedRow],
    question: str,
    taxonomy: Sequence[Mapping[str, Any]],
    groups: list[str | None] | None,
    metric: Metric | None,
    driver_options: dict[str, int],
) -> dict[str, Any]:
    answered = [r for r in rows if question in r.answers]
    sentiment = {"positive": 0, "neutral": 0, "negative": 0}
    for r in answered:
        label = r.answers[question].sentiment
        sentiment[label] = sentiment.get(label, 0) + 1
    tm = ThemeMatrix.from_rows(rows, [t["id"] for t in taxonomy], question)
    return {
        "answered": len(answered),
        "nps": nps_summary([r.score for r in answered], metric) if metric else None,
        "sentiment": sentiment,
        "themes": theme_stats(tm, taxonomy, groups),
        "drivers": driver_analysis(tm, groups, taxonomy, metric, **driver_options)
        if groups is not None and metric
        else None,
    }


def build_summary(
    rows: list[AnalyzedRow],
    info: IngestInfo,
    taxonomy: list[dict[str, Any]],
    *,
    model_info: dict[str, Any],
    embeddings: Embeddings | None = None,
    min_count: int = 5,
    seed: int = 0,
    bootstrap: int = 2000,
    generated_at: datetime | None = None,
) -> dict[str, Any]:
    """The whole ``summary.json`` except ``issues``; plain JSON types only.

    ``taxonomy``: one dict per theme with ``id``, ``name``, ``name_en``, ``polarity``.
    ``embeddings``: optional answer embeddings keyed by ``(row, question column)``, used to pick quotes.
    """
    metric = get_metric(info.metric) if info.kind == "survey" else None
    scores = [r.score for r in rows]
    groups = [group_of(s, metric) if s is not None else None for s in scores] if metric else None
    theme_ids = [t["id"] for t in taxonomy]
    responses = [response_themes(r.answers) if r.answers else None for r in rows]
    tm = ThemeMatrix.from_responses(responses, theme_ids)
    driver_options = {"min_count": min_count, "bootstrap": bootstrap, "seed": seed}
    nps = nps_summary(scores, metric) if metric else None

    has_dates = info.mapping.date is not None
    periods: dict[str, list[dict[str, Any]]] | None = None
    if has_dates:
        dates = [r.date for r in rows]
        periods = {g: nps_by_period(scores, dates, g, metric) for g in GRANULARITIES}

    answered = [(r, themes) for r, themes in zip(rows, responses, strict=True) if themes is not None]
    week_keys = (
        [period_of(r.date, "week").key if r.date else None for r, _ in answered] if has_dates else None
    )
    signal_ids = set(theme_ids)
    negative_themes = {t["id"] for t in taxonomy if t.get("polarity") == "negative_signal"}

    summary: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "generated_at": (generated_at or datetime.now(JST)).isoformat(timespec="seconds"),
        "input": {
            "file": info.file,
            "format": info.format,
            "encoding": info.encoding,
            "kind": info.kind,
            "metric": info.metric,
            "rows": len(rows),
            "rows_with_issues": sum(r.has_error for r in rows),
            "rows_without_score": sum(1 for s in scores if s is None) if metric else None,
            "rows_with_text": sum(1 for r in rows if r.answers),
            "header_row": info.header_row,
            "mapping": info.mapping.to_dict(),
        },
        "model": dict(model_info),
        "nps": nps,
        "metric": metric.to_dict() if metric else None,
        "score_distribution": (
            {str(v): sum(1 for s in scores if s == v) for v in range(metric.scale[0], metric.scale[1] + 1)}
            if metric
            else None
        ),
        "segments": {
            column: nps_by_segment(scores, [r.segments.get(column) for r in rows], metric)
            for column in info.mapping.segments
        },
        "periods": periods,
        "change": _change(rows, periods, tm, metric) if periods else None,
        "questions": {
            q: _question(rows, q, taxonomy, groups, metric, driver_options) for q in info.mapping.texts
        },
        "themes": theme_stats(tm, taxonomy, groups),
        "drivers": driver_analysis(tm, groups, taxonomy, metric, **driver_options)
        if groups is not None and metric
        else None,
        "drivers_method": drivers_method(min_count=min_count, bootstrap=bootstrap, seed=seed)
        if metric
        else None,
        "quotes": theme_quotes(rows, theme_ids, groups, embeddings=embeddings),
        "promoter_quotes": (
            promoter_quotes(rows, groups, negative_themes=negative_themes, embeddings=embeddings)
            if groups is not None
            else None
        ),
        "signals": engagement_signals(
            [themes for _, themes in answered],
            week_keys,
            positive=[t for t in DEFAULT_POSITIVE if t in signal_ids],
            negative=[t for t in DEFAULT_NEGATIVE if t in signal_ids],
            granularity="week" if has_dates else None,
        ),
        "notes": notes_for(
            metric=metric, n_scored=nps["n"] if nps else 0, min_count=min_count, has_dates=has_dates
        ),
    }
    return _plain(summary)


SEGMENT_FORM = "use COLUMN:VALUE, e.g. プラン:ベーシック"


def split_segment(value: str) -> tuple[str, str]:
    """``COLUMN:VALUE`` (the API's ``segment=`` and the CLI's ``--segment``) as (column, value); the value may
    be empty or hold further colons. ValueError without a column."""
    col, sep, val = value.partition(":")
    if not sep or not col:
        raise ValueError(SEGMENT_FORM)
    return col, val


def subset_drivers(
    rows: list[AnalyzedRow],
    info: IngestInfo,
    taxonomy: list[dict[str, Any]],
    *,
    min_count: int = 5,
    seed: int = 0,
    bootstrap: int = 2000,
) -> dict[str, Any]:
    """NPS and drivers of a subset of the rows (one segment value), computed as for the whole survey.

    ``rows`` counts the subset, ``n`` its scored responses (as ``nps.n``); ``nps`` and ``drivers`` are
    None for support data (no score).
    """
    metric = get_metric(info.metric) if info.kind == "survey" else None
    if metric is None:
        return {"rows": len(rows), "n": None, "nps": None, "drivers": None}
    scores = [r.score for r in rows]
    groups = [group_of(s, metric) if s is not None else None for s in scores]
    responses = [response_themes(r.answers) if r.answers else None for r in rows]
    tm = ThemeMatrix.from_responses(responses, [t["id"] for t in taxonomy])
    nps = nps_summary(scores, metric)
    return _plain(
        {
            "rows": len(rows),
            "n": nps["n"],
            "nps": nps,
            "drivers": driver_analysis(
                tm, groups, taxonomy, metric, min_count=min_count, bootstrap=bootstrap, seed=seed
            ),
        }
    )
