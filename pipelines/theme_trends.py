"""Theme mentions per period (the dashboard's sparklines), counted like ``summary.json`` counts themes.

A response mentions a theme if any of its answers carries it; ``n`` is the responses of the period with at
least one non-empty answer, and ``share`` = mentions / n (null for n = 0). Periods run without gaps from the
first to the last dated response, so a quiet week shows as a zero rather than disappearing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from pipelines.nps import Granularity, Period, period_of
from pipelines.records import TextResult

__all__ = ["theme_trends"]


def _periods(first: Period, last: Period, granularity: Granularity) -> list[Period]:
    out = [first]
    while out[-1] < last:
        out.append(period_of(out[-1].end + timedelta(days=1), granularity))
    return out


def theme_trends(
    rows: Iterable[tuple[datetime | None, Mapping[str, TextResult]]], granularity: Granularity = "week"
) -> dict[str, Any]:
    """``{"granularity", "periods": [{period, start, end, n}], "themes": {id: [{mentions, share}, …]}}``
    from (date, answers by question) pairs; undated rows are left out."""
    answered: Counter[Period] = Counter()
    mentions: dict[str, Counter[Period]] = {}
    for when, answers in rows:
        if when is None or not any(a.text.strip() for a in answers.values()):
            continue
        period = period_of(when, granularity)
        answered[period] += 1
        for theme in {t for a in answers.values() for t in a.theme_ids()}:
            mentions.setdefault(theme, Counter())[period] += 1
    if not answered:
        return {"granularity": granularity, "periods": [], "themes": {}}
    periods = _periods(min(answered), max(answered), granularity)
    return {
        "granularity": granularity,
        "periods": [{**p.to_dict(), "n": answered[p]} for p in periods],
        "themes": {
            theme: [
                {"mentions": counts[p], "share": round(counts[p] / answered[p], 3) if answered[p] else None}
                for p in periods
            ]
            for theme, counts in sorted(mentions.items())
        },
    }
