"""Engagement signals: how many responses voice a positive feeling (感謝・共感・信頼) vs a negative one
(不便・がっかり・対応が遅い), overall and per period.

A response carries a positive signal when one of the ``positive`` themes is present with a sentiment that is
not negative (``empathy`` tagged negative — "they did not understand me" — is no positive signal), and a
negative signal when one of the ``negative`` themes is present with a sentiment that is not positive
(``slow_response`` tagged positive — "the reply was quick" — is no negative signal). A response can carry both.

    index = (responses with a positive signal − responses with a negative signal) / n      in [−1, 1]

n counts responses with at least one answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["DEFAULT_NEGATIVE", "DEFAULT_POSITIVE", "engagement_signals", "signal_counts"]

DEFAULT_POSITIVE: tuple[str, ...] = ("gratitude", "empathy", "trust")
DEFAULT_NEGATIVE: tuple[str, ...] = ("inconvenience", "disappointment", "slow_response")


def _flags(themes: Mapping[str, str], positive: Sequence[str], negative: Sequence[str]) -> tuple[bool, bool]:
    pos = any(themes.get(t, "negative") != "negative" for t in positive)
    neg = any(themes.get(t, "positive") != "positive" for t in negative)
    return pos, neg


def signal_counts(
    responses: Sequence[Mapping[str, str]],
    *,
    positive: Sequence[str] = DEFAULT_POSITIVE,
    negative: Sequence[str] = DEFAULT_NEGATIVE,
) -> dict[str, Any]:
    """``{"n", "positive", "negative", "index"}`` for responses given as theme id -> sentiment."""
    pos = neg = 0
    for themes in responses:
        p, q = _flags(themes, positive, negative)
        pos += p
        neg += q
    n = len(responses)
    return {"n": n, "positive": pos, "negative": neg, "index": round((pos - neg) / n, 3) + 0.0 if n else None}


def engagement_signals(
    responses: Sequence[Mapping[str, str]],
    periods: Sequence[str | None] | None = None,
    *,
    positive: Sequence[str] = DEFAULT_POSITIVE,
    negative: Sequence[str] = DEFAULT_NEGATIVE,
    granularity: str | None = None,
) -> dict[str, Any]:
    """The schema's ``signals`` object.

    ``responses``: one theme -> sentiment mapping per response that answered at least one question.
    ``periods``: the period key of each response (None when undated), or None when there is no date column;
    ``by_period`` is then None. Period keys sort chronologically as strings (``2026-W47``, ``2026-11``).
    """
    out: dict[str, Any] = {
        "positive": list(positive),
        "negative": list(negative),
        "overall": signal_counts(responses, positive=positive, negative=negative),
        "granularity": granularity if periods is not None else None,
        "by_period": None,
    }
    if periods is not None:
        buckets: dict[str, list[Mapping[str, str]]] = {}
        for themes, period in zip(responses, periods, strict=True):
            if period is not None:
                buckets.setdefault(period, []).append(themes)
        out["by_period"] = [
            {"period": key, **signal_counts(buckets[key], positive=positive, negative=negative)}
            for key in sorted(buckets)
        ]
    return out
