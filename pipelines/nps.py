"""The headline metric (NPS, CSAT or CES), its 95% interval, and its breakdowns by segment and period.

Metric definitions are data (``METRICS``): a scale, three groups and the weight each group contributes to
the score, so that every metric is ``score = 100 × mean(weight of the respondent's group)``:

    nps  0–10   promoters 9–10 (+1)  passives 7–8 (0)  detractors 0–6 (−1)   score = %promoters − %detractors
    csat 1–5    satisfied 4–5  (+1)  neutral 3    (0)  dissatisfied 1–2 (0)  score = %satisfied
    ces  1–7    easy 5–7       (+1)  neutral 4    (0)  difficult 1–3  (−1)   score = %easy − %difficult

Intervals (95%, z = 1.959964):

* net scores (nps, ces): the adjusted Wald interval for a difference of two multinomial proportions
  (Rocks 2016, "Interval estimation for the Net Promoter Score", The American Statistician 70(4)) —
  see :func:`adjusted_wald_net`;
* csat: the Wilson score interval for one proportion — see :func:`wilson_interval`;
* differences between two independent samples (period over period): adjusted Wald with the two variances
  summed (net scores), Newcombe's hybrid score interval (csat) — see :func:`nps_difference`.
"""

from __future__ import annotations

import calendar
import functools
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from pipelines.errors import ConfigError

__all__ = [
    "GRANULARITIES",
    "GROUPS",
    "METRICS",
    "MISSING_SEGMENT",
    "Z95",
    "Granularity",
    "Metric",
    "Period",
    "adjusted_wald_net",
    "get_metric",
    "group_counts",
    "group_of",
    "newcombe_interval",
    "nps_by_period",
    "nps_by_segment",
    "nps_difference",
    "nps_summary",
    "period_of",
    "wilson_interval",
]

Z95 = 1.959963984540054  # scipy.stats.norm.ppf(0.975)
GROUPS: tuple[str, str, str] = ("promoters", "passives", "detractors")
MISSING_SEGMENT = "<未設定>"
Granularity = Literal["week", "month", "quarter"]
GRANULARITIES: tuple[Granularity, ...] = ("week", "month", "quarter")


@dataclass(frozen=True)
class Metric:
    """One survey metric: its scale, its three groups (inclusive score ranges) and each group's weight."""

    name: str
    scale: tuple[int, int]
    groups: dict[str, tuple[int, int]]
    weights: dict[str, int]  # the group's contribution to the score, before ×100
    method: str  # interval method for one sample: "adjusted-wald" or "wilson"

    @property
    def is_net(self) -> bool:
        """True when the score is a difference of two shares (promoters − detractors)."""
        return self.weights["detractors"] != 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scale": list(self.scale),
            "groups": {g: list(self.groups[g]) for g in GROUPS},
        }


METRICS: dict[str, Metric] = {
    "nps": Metric(
        "nps",
        (0, 10),
        {"promoters": (9, 10), "passives": (7, 8), "detractors": (0, 6)},
        {"promoters": 1, "passives": 0, "detractors": -1},
        "adjusted-wald",
    ),
    "csat": Metric(
        "csat",
        (1, 5),
        {"promoters": (4, 5), "passives": (3, 3), "detractors": (1, 2)},
        {"promoters": 1, "passives": 0, "detractors": 0},
        "wilson",
    ),
    "ces": Metric(
        "ces",
        (1, 7),
        {"promoters": (5, 7), "passives": (4, 4), "detractors": (1, 3)},
        {"promoters": 1, "passives": 0, "detractors": -1},
        "adjusted-wald",
    ),
}


def get_metric(metric: str | Metric) -> Metric:
    if isinstance(metric, Metric):
        return metric
    try:
        return METRICS[metric]
    except KeyError:
        raise ConfigError(
            f"The 'metric' parameter must be one of {sorted(METRICS)}; got {metric!r}."
        ) from None


def group_of(score: int, metric: str | Metric = "nps") -> str:
    """'promoters', 'passives' or 'detractors' for a score on the metric's scale."""
    m = get_metric(metric)
    for group in GROUPS:
        lo, hi = m.groups[group]
        if lo <= score <= hi:
            return group
    raise ValueError(f"score {score!r} is outside the {m.name} scale {m.scale[0]}–{m.scale[1]}")


def group_counts(scores: Iterable[int | None], metric: str | Metric = "nps") -> dict[str, int]:
    """Respondents per group; ``None`` (no score) is skipped."""
    m = get_metric(metric)
    counts = Counter(group_of(s, m) for s in scores if s is not None)
    return {g: counts.get(g, 0) for g in GROUPS}


# --------------------------------------------------------------------------- intervals (fractions, not ×100)


def adjusted_wald_net(
    promoters: float, passives: float, detractors: float, z: float = Z95
) -> tuple[float, float]:
    """Adjusted Wald interval for ``p − d`` (net score as a fraction in [−1, 1]).

    Rocks (2016) adds z²/… ≈ 3 pseudo-respondents, spread 3/4 to promoters, 3/2 to passives, 3/4 to detractors::

        ñ = n + 3,   p̃ = (P + 3/4) / ñ,   d̃ = (D + 3/4) / ñ
        Var(p̃ − d̃) = [p̃ + d̃ − (p̃ − d̃)²] / ñ          (multinomial: Var p + Var d − 2 Cov(p, d))
        CI = (p̃ − d̃) ± z · √Var, clipped to [−1, 1]

    The interval is centred on the adjusted estimate; :func:`nps_summary` widens it to contain the observed
    score, which the clipped interval misses only for n = 1 with an all-promoter or all-detractor answer.
    """
    n_adj = promoters + passives + detractors + 3.0
    p = (promoters + 0.75) / n_adj
    d = (detractors + 0.75) / n_adj
    centre = p - d
    half = z * math.sqrt(max(p + d - centre * centre, 0.0) / n_adj)
    return max(-1.0, centre - half), min(1.0, centre + half)


def _adjusted_wald_parts(promoters: int, passives: int, detractors: int) -> tuple[float, float]:
    """(adjusted estimate, variance) of one sample, for summing in :func:`nps_difference`."""
    n_adj = promoters + passives + detractors + 3.0
    p = (promoters + 0.75) / n_adj
    d = (detractors + 0.75) / n_adj
    return p - d, (p + d - (p - d) ** 2) / n_adj


def wilson_interval(successes: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion: ``(p̂ + z²/2n ± z·√(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n)``."""
    if n <= 0:
        raise ValueError("wilson_interval needs n > 0")
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(x1: float, n1: float, x2: float, n2: float, z: float = Z95) -> tuple[float, float]:
    """Newcombe (1998, method 10) hybrid score interval for ``p1 − p2`` from two independent samples.

    With Wilson limits (l1, u1) and (l2, u2)::

        lo = (p1 − p2) − √((p1 − l1)² + (u2 − p2)²)
        hi = (p1 − p2) + √((u1 − p1)² + (p2 − l2)²)
    """
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_interval(x1, n1, z)
    l2, u2 = wilson_interval(x2, n2, z)
    diff = p1 - p2
    return diff - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), diff + math.sqrt(
        (u1 - p1) ** 2 + (p2 - l2) ** 2
    )


# --------------------------------------------------------------------------- summaries


def _r(x: float, digits: int) -> float:
    return float(round(x, digits)) + 0.0  # + 0.0 turns -0.0 into 0.0


def nps_summary(scores: Iterable[int | None], metric: str | Metric = "nps") -> dict[str, Any]:
    """The schema's ``nps`` object for one set of scores (``None`` entries = unscored, skipped).

    ``score`` and ``ci95`` are on the −100…+100 scale (0…100 for csat), rounded to 0.1; shares to 0.001.
    n = 0 gives ``score``, ``shares`` and ``ci95`` = None.
    """
    m = get_metric(metric)
    counts = group_counts(scores, m)
    n = sum(counts.values())
    out: dict[str, Any] = {"score": None, "n": n, **counts, "shares": None, "ci95": None, "method": m.method}
    if n == 0:
        return out
    score = sum(m.weights[g] * counts[g] for g in GROUPS) / n
    if m.is_net:
        lo, hi = adjusted_wald_net(counts["promoters"], counts["passives"], counts["detractors"])
    else:
        lo, hi = wilson_interval(counts["promoters"], n)
    lo, hi = min(lo, score), max(hi, score)
    out["score"] = _r(100 * score, 1)
    out["shares"] = {g: _r(counts[g] / n, 3) for g in GROUPS}
    out["ci95"] = [_r(100 * lo, 1), _r(100 * hi, 1)]
    return out


def nps_difference(
    current: Iterable[int | None], previous: Iterable[int | None], metric: str | Metric = "nps"
) -> dict[str, Any]:
    """Change of the score from ``previous`` to ``current`` (independent samples), with a 95% interval.

    Net scores: each sample gets the adjusted Wald pseudo-counts, and the interval is
    ``(ã_cur − ã_prev) ± z·√(Var_cur + Var_prev)`` (the variances of independent samples add).
    csat: Newcombe's hybrid score interval on the two %satisfied. ``delta`` is the observed difference;
    the interval is widened to contain it if needed. ``significant``: the interval, as shown (0.1 point), excludes 0.
    Either sample empty: delta, ci95 and significant are None.
    """
    m = get_metric(metric)
    a, b = group_counts(current, m), group_counts(previous, m)
    na, nb = sum(a.values()), sum(b.values())
    out: dict[str, Any] = {
        "delta": None,
        "ci95": None,
        "significant": None,
        "n": {"current": na, "previous": nb},
        "method": "adjusted-wald" if m.is_net else "newcombe",
    }
    if na == 0 or nb == 0:
        return out
    score_a = sum(m.weights[g] * a[g] for g in GROUPS) / na
    score_b = sum(m.weights[g] * b[g] for g in GROUPS) / nb
    delta = score_a - score_b
    if m.is_net:
        ca, va = _adjusted_wald_parts(a["promoters"], a["passives"], a["detractors"])
        cb, vb = _adjusted_wald_parts(b["promoters"], b["passives"], b["detractors"])
        half = Z95 * math.sqrt(va + vb)
        lo, hi = max(-2.0, ca - cb - half), min(2.0, ca - cb + half)
    else:
        lo, hi = newcombe_interval(a["promoters"], na, b["promoters"], nb)
    lo, hi = min(lo, delta), max(hi, delta)
    out["delta"] = _r(100 * delta, 1)
    out["ci95"] = shown = [_r(100 * lo, 1), _r(100 * hi, 1)]
    # judged on the interval as shown: a lower bound of 0.04 points reads 0.0, and "significant" next to
    # an interval that starts at 0.0 would contradict it
    out["significant"] = bool(shown[0] > 0 or shown[1] < 0)
    return out


# --------------------------------------------------------------------------- breakdowns


@dataclass(frozen=True, order=True)
class Period:
    """A calendar period: ISO week ``2026-W47`` (Monday–Sunday), month ``2026-11`` or quarter ``2026-Q4``."""

    key: str
    start: date
    end: date

    def to_dict(self) -> dict[str, str]:
        return {"period": self.key, "start": self.start.isoformat(), "end": self.end.isoformat()}


def period_of(when: date | datetime, granularity: Granularity) -> Period:
    """The period of the given granularity that contains ``when`` (its calendar date, time ignored)."""
    return _period_of_day(when.date() if isinstance(when, datetime) else when, granularity)


@functools.lru_cache(maxsize=4096)  # many responses share a day; keeps 100k-row files quick
def _period_of_day(day: date, granularity: Granularity) -> Period:
    if granularity == "week":
        year, week, _ = day.isocalendar()
        start = date.fromisocalendar(year, week, 1)
        return Period(f"{year}-W{week:02d}", start, start + timedelta(days=6))
    if granularity == "month":
        last = calendar.monthrange(day.year, day.month)[1]
        return Period(f"{day.year}-{day.month:02d}", day.replace(day=1), day.replace(day=last))
    if granularity == "quarter":
        q = (day.month - 1) // 3 + 1
        last_month = 3 * q
        end = date(day.year, last_month, calendar.monthrange(day.year, last_month)[1])
        return Period(f"{day.year}-Q{q}", date(day.year, last_month - 2, 1), end)
    raise ConfigError(
        f"The 'granularity' parameter must be one of {list(GRANULARITIES)}; got {granularity!r}."
    )


def nps_by_segment(
    scores: Sequence[int | None], values: Sequence[str | None], metric: str | Metric | None = "nps"
) -> list[dict[str, Any]]:
    """One entry per segment value: ``{"value", "n" (responses), "nps"}``, sorted by scored n, then n, desc.

    A missing value is reported as ``<未設定>`` (last among equal counts). ``metric=None`` (no score column) gives ``"nps": None``.
    """
    buckets: dict[str, list[int | None]] = {}
    for score, value in zip(scores, values, strict=True):
        key = value if value not in (None, "") else MISSING_SEGMENT
        buckets.setdefault(str(key), []).append(score)
    out: list[dict[str, Any]] = [
        {"value": value, "n": len(bucket), "nps": None if metric is None else nps_summary(bucket, metric)}
        for value, bucket in buckets.items()
    ]
    out.sort(
        key=lambda e: (
            -(e["nps"]["n"] if e["nps"] else 0),
            -e["n"],
            e["value"] == MISSING_SEGMENT,
            e["value"],
        )
    )
    return out


def nps_by_period(
    scores: Sequence[int | None],
    dates: Sequence[date | datetime | None],
    granularity: Granularity,
    metric: str | Metric | None = "nps",
) -> list[dict[str, Any]]:
    """Chronological ``{"period", "start", "end", "n", "nps"}`` for every period that has a dated response."""
    buckets: dict[Period, list[int | None]] = {}
    for score, when in zip(scores, dates, strict=True):
        if when is not None:
            buckets.setdefault(period_of(when, granularity), []).append(score)
    return [
        {
            **p.to_dict(),
            "n": len(buckets[p]),
            "nps": None if metric is None else nps_summary(buckets[p], metric),
        }
        for p in sorted(buckets, key=lambda p: p.start)
    ]
