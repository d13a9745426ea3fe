"""Themes as drivers of the score: mentions and shares by group, lift with Fisher tests, impact on the score.

A *response* mentions a theme when any of its answers (or, for a per-question view, that question's answer)
carries it. When several answers carry the same theme, the hit with the highest theme score gives the
response's sentiment for that theme.

Per theme (``driver_analysis``):

* **impact** = score(all scored responses) − score(scored responses not mentioning the theme), in score
  points. 95% percentile-bootstrap interval. The statistic depends on the data only through six counts
  (group × mentions-or-not), so resampling n responses with replacement is exactly a multinomial draw of
  those six counts with the observed cell shares. Drawing the six counts directly gives, for every theme,
  the same bootstrap distribution as resampling row indices, at O(B) cost instead of O(B·n) (14 themes ×
  100k responses × 2000 replicates takes milliseconds). Each theme has its own generator seeded with
  ``[seed, crc32(theme id)]``, so a theme's interval does not change when other themes are added.
  Only the per-theme (marginal) intervals are reported, so the joint resampling across themes is not needed.
* **lift** = share among detractors / share among promoters (shares over responses that answered), with a
  log (Katz) interval ``exp(ln RR ± z·√(1/a − 1/n₁ + 1/c − 1/n₂))``; when any cell of the 2×2 table is 0,
  0.5 is added to all four cells (ratio and interval). Two-sided Fisher exact test on the 2×2 table.
  **passives_vs_promoters** likewise.
* **gate**: fewer than ``min_count`` scored responses mention the theme → ``"too_few"``: the ratios are still
  shown, but no test is run (p, q and significant are None). Tests that are run form one family per
  comparison, corrected with Benjamini–Hochberg; significant = q ≤ alpha.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import fisher_exact

from pipelines.nps import GROUPS, Z95, Metric, get_metric, newcombe_interval
from pipelines.records import SENTIMENT_LABELS, AnalyzedRow, TextResult

__all__ = [
    "BY_GROUP",
    "ThemeMatrix",
    "benjamini_hochberg",
    "driver_analysis",
    "drivers_method",
    "fisher_p",
    "ratio_interval",
    "response_themes",
    "theme_changes",
    "theme_stats",
]

BY_GROUP: tuple[str, ...] = (*GROUPS, "no_score")
_NO_SCORE = 3
_SENTIMENT_INDEX = {label: i for i, label in enumerate(SENTIMENT_LABELS)}


def response_themes(answers: Mapping[str, TextResult], question: str | None = None) -> dict[str, str]:
    """Theme id -> sentiment for one response (all answers, or only ``question``'s)."""
    best: dict[str, tuple[float, str]] = {}
    for q, result in answers.items():
        if question is not None and q != question:
            continue
        for hit in result.themes:
            if hit.id not in best or hit.score > best[hit.id][0]:
                best[hit.id] = (hit.score, hit.sentiment)
    return {theme: sentiment for theme, (_, sentiment) in best.items()}


@dataclass(frozen=True)
class ThemeMatrix:
    """Which response mentions which theme, with what sentiment; one row per response."""

    theme_ids: tuple[str, ...]
    mentions: np.ndarray  # (n, T) bool
    sentiment: np.ndarray  # (n, T) int8: index into SENTIMENT_LABELS, -1 where not mentioned
    answered: np.ndarray  # (n,) bool: at least one answer (only those can mention a theme)

    @classmethod
    def from_responses(
        cls, responses: Sequence[Mapping[str, str] | None], theme_ids: Sequence[str]
    ) -> ThemeMatrix:
        """``responses[i]`` is theme -> sentiment, or None when response i answered no question.

        Themes not in ``theme_ids`` are ignored."""
        column = {t: k for k, t in enumerate(theme_ids)}
        sentiment = np.full((len(responses), len(theme_ids)), -1, dtype=np.int8)
        answered = np.zeros(len(responses), dtype=bool)
        for i, themes in enumerate(responses):
            if themes is None:
                continue
            answered[i] = True
            for theme, label in themes.items():
                if theme in column:
                    sentiment[i, column[theme]] = _SENTIMENT_INDEX.get(label, 1)
        return cls(tuple(theme_ids), sentiment >= 0, sentiment, answered)

    @classmethod
    def from_rows(
        cls, rows: Sequence[AnalyzedRow], theme_ids: Sequence[str], question: str | None = None
    ) -> ThemeMatrix:
        responses = [
            response_themes(r.answers, question)
            if (question in r.answers if question else r.answers)
            else None
            for r in rows
        ]
        return cls.from_responses(responses, theme_ids)

    def subset(self, mask: np.ndarray) -> ThemeMatrix:
        return ThemeMatrix(self.theme_ids, self.mentions[mask], self.sentiment[mask], self.answered[mask])


def _group_codes(groups: Sequence[str | None], n: int) -> np.ndarray:
    index = {g: k for k, g in enumerate(GROUPS)}
    codes = np.fromiter(
        (index[g] if g is not None else _NO_SCORE for g in groups), dtype=np.int8, count=len(groups)
    )
    if len(codes) != n:
        raise ValueError(f"got {len(codes)} groups for {n} responses")
    return codes


def _share(x: int, n: int) -> float | None:
    return round(x / n, 3) if n else None


def _sig(x: float) -> float:
    return float(f"{x:.3g}")


def theme_stats(
    tm: ThemeMatrix, taxonomy: Sequence[Mapping[str, Any]], groups: Sequence[str | None] | None = None
) -> list[dict[str, Any]]:
    """The schema's ``themes`` list: every taxonomy theme, sorted by mentions desc (taxonomy order on ties).

    ``n`` counts responses with at least one answer; ``by_group`` is None when ``groups`` is None (no score).
    """
    answered = tm.answered
    n = int(answered.sum())
    by_group = None
    if groups is not None:
        codes = _group_codes(groups, len(answered))[answered]
        onehot = (codes[:, None] == np.arange(4)[None, :]).astype(np.int64)  # (n_answered, 4)
        group_n = onehot.sum(axis=0)
        group_mentions = onehot.T @ tm.mentions[answered].astype(np.int64)  # (4, T)
    out = []
    for spec in taxonomy:
        k = tm.theme_ids.index(spec["id"])
        col = tm.sentiment[:, k]
        sentiment = np.bincount(col[col >= 0], minlength=3)
        mentions = int(tm.mentions[:, k].sum())
        if groups is not None:
            by_group = {
                g: {
                    "mentions": int(group_mentions[j, k]),
                    "n": int(group_n[j]),
                    "share": _share(int(group_mentions[j, k]), int(group_n[j])),
                }
                for j, g in enumerate(BY_GROUP)
            }
        out.append(
            {
                "id": spec["id"],
                "label": spec.get("name", spec["id"]),
                "label_en": spec.get("name_en", ""),
                "polarity": spec.get("polarity", "topic"),
                "mentions": mentions,
                "share": _share(mentions, n),
                "n": n,
                "sentiment": {label: int(sentiment[i]) for i, label in enumerate(SENTIMENT_LABELS)},
                "by_group": by_group,
            }
        )
    out.sort(key=lambda t: -t["mentions"])
    return out


# --------------------------------------------------------------------------- tests and corrections


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values (q-values), in the input order.

    With p sorted ascending, ``q₍ᵢ₎ = min over j ≥ i of min(1, m·p₍ⱼ₎ / j)``.
    """
    m = len(p_values)
    if any(not 0.0 <= p <= 1.0 for p in p_values):
        raise ValueError(f"p-values must lie in [0, 1]; got {list(p_values)}")
    order = sorted(range(m), key=lambda i: p_values[i])
    q = [1.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        q[i] = running
    return q


def ratio_interval(a: int, n1: int, c: int, n2: int, z: float = Z95) -> tuple[float, float, float] | None:
    """(ratio, lo, hi) of the share ``a/n1`` over ``c/n2``; None when a group is empty."""
    if n1 <= 0 or n2 <= 0:
        return None
    cells = [float(a), float(n1 - a), float(c), float(n2 - c)]
    if min(cells) == 0:
        cells = [x + 0.5 for x in cells]
    a_, b_, c_, d_ = cells
    ratio = (a_ / (a_ + b_)) / (c_ / (c_ + d_))
    se = math.sqrt(1 / a_ - 1 / (a_ + b_) + 1 / c_ - 1 / (c_ + d_))
    return ratio, math.exp(math.log(ratio) - z * se), math.exp(math.log(ratio) + z * se)


def fisher_p(a: int, n1: int, c: int, n2: int) -> float:
    """Two-sided Fisher exact p-value for the table [[a, n1 − a], [c, n2 − c]]."""
    return float(fisher_exact([[a, n1 - a], [c, n2 - c]]).pvalue)


def _comparison(a: int, n1: int, c: int, n2: int, run_test: bool) -> dict[str, Any]:
    found = ratio_interval(a, n1, c, n2)
    out: dict[str, Any] = {"ratio": None, "ci95": None, "p_value": None, "q_value": None, "significant": None}
    if found is not None:
        ratio, lo, hi = found
        out.update(ratio=round(ratio, 2), ci95=[round(lo, 2), round(hi, 2)])
        if run_test:
            out["p_value"] = fisher_p(a, n1, c, n2)
    return out


def _correct(items: list[dict[str, Any]], alpha: float) -> None:
    tested = [d for d in items if d["p_value"] is not None]
    for d, q in zip(tested, benjamini_hochberg([d["p_value"] for d in tested]), strict=True):
        d.update(p_value=_sig(d["p_value"]), q_value=_sig(q), significant=bool(q <= alpha))


# --------------------------------------------------------------------------- impact


def _impact(
    cells: np.ndarray, weights: np.ndarray, bootstrap: int, rng: np.random.Generator
) -> dict[str, Any]:
    """cells: (2, 3) counts [with, without] × [promoters, passives, detractors] of scored responses."""
    n = int(cells.sum())
    n_with, n_without = int(cells[0].sum()), int(cells[1].sum())
    out: dict[str, Any] = {"value": None, "ci95": None, "n_with": n_with, "n_without": n_without}
    if n_without == 0:
        return out
    value = 100 * (cells.sum(axis=0) @ weights / n - cells[1] @ weights / n_without)
    out["value"] = round(float(value), 1) + 0.0
    if bootstrap <= 0:
        return out
    draws = rng.multinomial(n, cells.ravel() / n, size=bootstrap).reshape(bootstrap, 2, 3).astype(float)
    without = draws[:, 1, :]
    n_wo = without.sum(axis=1)
    ok = n_wo > 0
    if not ok.any():
        return out
    all_score = draws[ok].sum(axis=1) @ weights / n
    impacts = 100 * (all_score - without[ok] @ weights / n_wo[ok])
    lo, hi = np.percentile(impacts, [2.5, 97.5])
    out["ci95"] = [round(float(lo), 1) + 0.0, round(float(hi), 1) + 0.0]
    return out


def driver_analysis(
    tm: ThemeMatrix,
    groups: Sequence[str | None],
    taxonomy: Sequence[Mapping[str, Any]],
    metric: str | Metric = "nps",
    *,
    min_count: int = 5,
    alpha: float = 0.05,
    bootstrap: int = 2000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """The schema's ``drivers`` list: one entry per theme mentioned by a scored response, most negative impact first."""
    m = get_metric(metric)
    weights = np.array([m.weights[g] for g in GROUPS], dtype=float)
    codes = _group_codes(groups, len(tm.answered))
    scored = codes != _NO_SCORE
    onehot = (codes[:, None] == np.arange(3)[None, :]).astype(np.int64)  # (n, 3); no_score rows are all 0
    with_counts = tm.mentions.T.astype(np.int64) @ onehot  # (T, 3) scored mentions by group
    totals = onehot.sum(axis=0)  # scored responses by group
    answered_totals = onehot[tm.answered].sum(axis=0)  # of which answered: denominators of the shares
    labels = {spec["id"]: spec.get("name", spec["id"]) for spec in taxonomy}
    out: list[dict[str, Any]] = []
    for spec in taxonomy:
        theme = spec["id"]
        k = tm.theme_ids.index(theme)
        w = with_counts[k]
        n_with = int(w.sum())
        if n_with == 0 or not scored.any():
            continue
        cells = np.stack([w, totals - w])
        rng = np.random.default_rng([seed, zlib.crc32(theme.encode("utf-8"))])
        gate = "ok" if n_with >= min_count else "too_few"
        pro, pas, det = (int(x) for x in w)
        n_pro, n_pas, n_det = (int(x) for x in answered_totals)
        out.append(
            {
                "theme": theme,
                "label": labels[theme],
                "mentions": n_with,
                "impact": _impact(cells, weights, bootstrap, rng),
                "lift": _comparison(det, n_det, pro, n_pro, gate == "ok"),
                "passives_vs_promoters": _comparison(pas, n_pas, pro, n_pro, gate == "ok"),
                "gate": gate,
            }
        )
    for family in ("lift", "passives_vs_promoters"):
        _correct([d[family] for d in out], alpha)
    out.sort(key=lambda d: (d["impact"]["value"] is None, d["impact"]["value"] or 0.0, d["theme"]))
    return out


def drivers_method(*, min_count: int, alpha: float = 0.05, bootstrap: int, seed: int) -> dict[str, Any]:
    return {
        "min_count": min_count,
        "test": "fisher-exact",
        "correction": "benjamini-hochberg",
        "alpha": alpha,
        "ratio_ci": "log-ratio (Katz), +0.5 per cell when a cell is 0",
        "impact_ci": "bootstrap",
        "bootstrap_samples": bootstrap,
        "seed": seed,
    }


# --------------------------------------------------------------------------- change between periods


def theme_changes(tm: ThemeMatrix, current: np.ndarray, previous: np.ndarray) -> list[dict[str, Any]]:
    """Share of answering responses that mention each theme, current vs previous period (boolean row masks).

    Newcombe hybrid score interval for the difference of the two shares; significant when it excludes 0.
    Themes mentioned in neither period are left out. Sorted: significant first, then by |delta|.
    """
    cur, prev = current & tm.answered, previous & tm.answered
    n1, n2 = int(cur.sum()), int(prev.sum())
    if n1 == 0 or n2 == 0:
        return []
    x_cur, x_prev = tm.mentions[cur].sum(axis=0), tm.mentions[prev].sum(axis=0)
    out: list[dict[str, Any]] = []
    for k, theme in enumerate(tm.theme_ids):
        x1, x2 = int(x_cur[k]), int(x_prev[k])
        if x1 + x2 == 0:
            continue
        lo, hi = newcombe_interval(x1, n1, x2, n2)
        out.append(
            {
                "theme": theme,
                "current": {"mentions": x1, "n": n1, "share": round(x1 / n1, 3)},
                "previous": {"mentions": x2, "n": n2, "share": round(x2 / n2, 3)},
                "delta": round(x1 / n1 - x2 / n2, 3) + 0.0,
                "ci95": [round(lo, 3) + 0.0, round(hi, 3) + 0.0],
                "significant": bool(lo > 0 or hi < 0),
            }
        )
    out.sort(key=lambda d: (not d["significant"], -abs(d["delta"]), d["theme"]))
    return out
