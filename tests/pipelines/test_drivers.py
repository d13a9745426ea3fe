import time
from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.drivers import (
    ThemeMatrix,
    benjamini_hochberg,
    driver_analysis,
    fisher_p,
    ratio_interval,
    response_themes,
    theme_changes,
    theme_stats,
)
from pipelines.nps import group_of
from pipelines.records import AnalyzedRow, TextResult, ThemeHit

TAXONOMY = [
    {"id": "slow_response", "name": "対応が遅い", "name_en": "Slow response", "polarity": "negative_signal"},
    {"id": "price", "name": "価格・料金", "name_en": "Price", "polarity": "topic"},
    {"id": "gratitude", "name": "感謝", "name_en": "Gratitude", "polarity": "positive_signal"},
]
IDS = [t["id"] for t in TAXONOMY]


def _answer(*hits: tuple[str, float, str], text: str = "回答テキストです。") -> TextResult:
    return TextResult(text, "neutral", {"neutral": 1.0}, [ThemeHit(t, t, s, sent) for t, s, sent in hits])


def _groups(scores: Sequence[int | None]) -> list[str | None]:
    return [group_of(s, "nps") if s is not None else None for s in scores]


# ----------------------------------------------------------------------------- BH, Fisher, ratio by hand


def test_benjamini_hochberg_by_hand() -> None:
    # p = [0.01, 0.04, 0.03, 0.20], m = 4. Sorted: 0.01 (rank 1), 0.03 (2), 0.04 (3), 0.20 (4)
    # m·p/rank: 0.04, 0.06, 0.053333, 0.20
    # running minimum from the largest rank down: 0.20 -> 0.053333 -> min(0.06, 0.053333) = 0.053333 -> 0.04
    # back in input order: [0.04, 0.053333, 0.053333, 0.20]
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.20]) == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.20])
    assert benjamini_hochberg([]) == []
    assert benjamini_hochberg([0.5]) == [0.5]
    with pytest.raises(ValueError):
        benjamini_hochberg([1.2])


@given(st.lists(st.floats(0.0, 1.0), max_size=40))
def test_benjamini_hochberg_properties(p: list[float]) -> None:
    q = benjamini_hochberg(p)
    assert all(pi <= qi + 1e-12 and qi <= 1.0 for pi, qi in zip(p, q, strict=True))
    order = sorted(range(len(p)), key=lambda i: p[i])
    assert all(q[a] <= q[b] + 1e-12 for a, b in pairwise(order))  # monotone in p


def test_fisher_exact_by_hand() -> None:
    # [[4, 1], [0, 5]]: margins rows 5/5, columns 4/6, N = 10. P(a = k) = C(4,k)·C(6,5−k) / C(10,5):
    #   k=0: 6, k=1: 60, k=2: 120, k=3: 60, k=4: 6   (/252)
    # two-sided p = Σ P(k) with P(k) ≤ P(4) = (6 + 6) / 252 = 0.047619
    assert fisher_p(4, 5, 0, 5) == pytest.approx(12 / 252)
    # [[3, 1], [1, 3]]: P(k) = C(4,k)² / 70 = 1, 16, 36, 16, 1 (/70); p = (1 + 16 + 16 + 1) / 70 = 0.485714
    assert fisher_p(3, 4, 1, 4) == pytest.approx(34 / 70)


def test_ratio_interval_by_hand() -> None:
    # no zero cell: a=6 of 10 detractors, c=2 of 10 promoters -> ratio (0.6)/(0.2) = 3
    # se(log) = √(1/6 − 1/10 + 1/2 − 1/10) = √0.466667 = 0.683130; z·se = 1.338917
    # CI = 3·exp(∓1.338917) = [0.786393, 11.444652]
    ratio, lo, hi = ratio_interval(6, 10, 2, 10)  # type: ignore[misc]
    assert (ratio, lo, hi) == pytest.approx((3.0, 0.786393, 11.444652), abs=1e-5)
    # a zero cell: a=4 of 5, c=0 of 5 -> +0.5 to every cell: 4.5, 1.5, 0.5, 5.5 (n₁ = n₂ = 6)
    # ratio = (4.5/6)/(0.5/6) = 9; se = √(1/4.5 − 1/6 + 1/0.5 − 1/6) = √1.888889 = 1.374369
    # CI = exp(ln 9 ∓ 1.959964 × 1.374369) = exp(2.197225 ∓ 2.693714) = [0.608664, 133.078]
    ratio, lo, hi = ratio_interval(4, 5, 0, 5)  # type: ignore[misc]
    assert (ratio, lo, hi) == pytest.approx((9.0, 0.608664, 133.078266), rel=1e-5)
    assert ratio_interval(1, 0, 1, 3) is None  # an empty group: nothing to compare


# ----------------------------------------------------------------------------- themes per response


def test_response_themes_takes_the_strongest_hit_and_filters_questions() -> None:
    answers = {
        "理由": _answer(("price", 0.6, "negative"), ("gratitude", 0.9, "positive")),
        "改善点": _answer(("price", 0.8, "neutral")),
    }
    assert response_themes(answers) == {"price": "neutral", "gratitude": "positive"}
    assert response_themes(answers, "理由") == {"price": "negative", "gratitude": "positive"}


def test_theme_matrix_from_rows() -> None:
    rows = [
        AnalyzedRow(
            2, 10, None, {}, {"理由": _answer(("price", 0.9, "positive"), ("unknown", 0.9, "neutral"))}
        ),
        AnalyzedRow(3, 3, None, {}, {}),
    ]
    tm = ThemeMatrix.from_rows(rows, IDS)
    assert tm.answered.tolist() == [True, False]
    assert tm.mentions.tolist() == [[False, True, False], [False, False, False]]
    assert tm.sentiment[0, 1] == 2  # positive
    assert ThemeMatrix.from_rows(rows, IDS, "改善点").answered.tolist() == [False, False]


def test_theme_stats_by_hand() -> None:
    # 6 responses; the last one wrote nothing (not in n); response 5 has no score (no_score group)
    responses = [
        {"slow_response": "negative"},  # score 2  detractor
        {"slow_response": "negative", "price": "negative"},  # score 5  detractor
        {"price": "positive"},  # score 10 promoter
        {},  # score 8  passive (answered, no theme)
        {"slow_response": "positive"},  # no score
        None,  # score 9  promoter, no answer
    ]
    groups = _groups([2, 5, 10, 8, None, 9])
    stats = theme_stats(ThemeMatrix.from_responses(responses, IDS), TAXONOMY, groups)
    assert [t["id"] for t in stats] == ["slow_response", "price", "gratitude"]
    slow = stats[0]
    assert (slow["mentions"], slow["n"], slow["share"]) == (3, 5, 0.6)
    assert slow["sentiment"] == {"negative": 2, "neutral": 0, "positive": 1}
    assert slow["by_group"] == {
        "promoters": {"mentions": 0, "n": 1, "share": 0.0},
        "passives": {"mentions": 0, "n": 1, "share": 0.0},
        "detractors": {"mentions": 2, "n": 2, "share": 1.0},
        "no_score": {"mentions": 1, "n": 1, "share": 1.0},
    }
    assert stats[2]["mentions"] == 0 and stats[2]["share"] == 0.0
    assert theme_stats(ThemeMatrix.from_responses(responses, IDS), TAXONOMY, None)[0]["by_group"] is None


# ----------------------------------------------------------------------------- drivers


def test_impact_by_hand() -> None:
    # 5 scored responses [10, 9, 7, 3, 2]; "slow_response" is mentioned by the two detractors (3 and 2).
    # NPS(all) = 100 × (2 − 2)/5 = 0;  NPS(without the theme) = NPS([10, 9, 7]) = 100 × 2/3 = 66.67
    # impact = 0 − 66.67 = −66.7: the theme drags the score down by 66.7 points.
    # "price" is mentioned by 10 and 7: without it [9, 3, 2] -> 100 × (1 − 2)/3 = −33.33 -> impact +33.3
    responses = [
        {"price": "positive"},
        {},
        {"price": "neutral"},
        {"slow_response": "negative"},
        {"slow_response": "negative"},
    ]
    tm = ThemeMatrix.from_responses(responses, IDS)
    drivers = driver_analysis(tm, _groups([10, 9, 7, 3, 2]), TAXONOMY, min_count=1, bootstrap=500)
    assert [d["theme"] for d in drivers] == ["slow_response", "price"]  # most negative impact first
    slow, price = drivers
    assert slow["impact"]["value"] == -66.7 and (slow["impact"]["n_with"], slow["impact"]["n_without"]) == (
        2,
        3,
    )
    assert price["impact"]["value"] == 33.3
    lo, hi = slow["impact"]["ci95"]
    assert lo <= -66.7 <= hi


def test_gate_too_few_skips_the_tests_but_keeps_the_ratio() -> None:
    responses = [{"price": "negative"}] * 2 + [{}] * 8
    tm = ThemeMatrix.from_responses(responses, IDS)
    (driver,) = driver_analysis(tm, _groups([0, 1, 9, 9, 9, 10, 10, 7, 8, 5]), TAXONOMY, bootstrap=100)
    assert driver["gate"] == "too_few"
    assert driver["lift"]["ratio"] is not None
    for family in ("lift", "passives_vs_promoters"):
        assert driver[family]["p_value"] is None
        assert driver[family]["q_value"] is None
        assert driver[family]["significant"] is None


def test_significant_driver_and_bh_family() -> None:
    # 40 detractors of whom 20 mention slow_response; 40 promoters of whom 1 does; price is spread evenly
    scores = [0] * 40 + [10] * 40 + [7] * 20
    responses: list[dict[str, str]] = []
    for i, s in enumerate(scores):
        themes = {"price": "neutral"} if i % 4 == 0 else {}
        if (s == 0 and i < 20) or i == 40:
            themes["slow_response"] = "negative"
        responses.append(themes)
    drivers = {
        d["theme"]: d
        for d in driver_analysis(ThemeMatrix.from_responses(responses, IDS), _groups(scores), TAXONOMY)
    }
    slow, price = drivers["slow_response"], drivers["price"]
    assert slow["gate"] == "ok" and slow["lift"]["ratio"] == 20.0
    assert slow["lift"]["significant"] is True and slow["lift"]["q_value"] >= slow["lift"]["p_value"]
    assert price["lift"]["significant"] is False
    # two tests in the lift family: q = p × 2/rank after the running minimum
    assert slow["lift"]["q_value"] == pytest.approx(min(1.0, 2 * fisher_p(20, 40, 1, 40)), rel=1e-2)
    assert slow["impact"]["value"] < 0 and slow["impact"]["ci95"][1] < 0


def test_theme_in_every_response_and_unscored_rows() -> None:
    responses = [{"price": "neutral"}] * 6 + [{"price": "neutral"}]
    scores = [10, 9, 8, 7, 3, 1, None]
    (driver,) = driver_analysis(ThemeMatrix.from_responses(responses, IDS), _groups(scores), TAXONOMY)
    assert driver["mentions"] == 6  # the unscored response is not a driver input
    assert driver["impact"] == {"value": None, "ci95": None, "n_with": 6, "n_without": 0}
    assert driver["lift"]["ratio"] == 1.0  # corrected cells 2.5/0.5 vs 2.5/0.5
    assert driver["lift"]["p_value"] == 1.0


def test_no_scored_response_and_no_detractors() -> None:
    tm = ThemeMatrix.from_responses([{"price": "neutral"}] * 3, IDS)
    assert driver_analysis(tm, [None, None, None], TAXONOMY) == []
    (driver,) = driver_analysis(tm, _groups([10, 9, 8]), TAXONOMY, min_count=1)
    assert driver["lift"] == {
        "ratio": None,
        "ci95": None,
        "p_value": None,
        "q_value": None,
        "significant": None,
    }
    assert driver["passives_vs_promoters"]["p_value"] is not None
    # mentioned by passives only: both lift cells are 0 -> corrected ratio 1, Fisher p = 1, no warnings
    passives_only = ThemeMatrix.from_responses([{"price": "neutral"}] * 5 + [{}] * 4, IDS)
    (driver,) = driver_analysis(passives_only, _groups([7] * 5 + [10, 9, 2, 1]), TAXONOMY)
    assert (driver["lift"]["ratio"], driver["lift"]["p_value"]) == (1.0, 1.0)
    assert driver["passives_vs_promoters"]["p_value"] == pytest.approx(fisher_p(5, 5, 0, 2), rel=1e-3)


def test_bootstrap_is_seeded_and_fast_on_100k_responses() -> None:
    rng = np.random.default_rng(7)
    n, themes = 100_000, 14
    mentions = rng.random((n, themes)) < 0.08
    sentiment = np.where(mentions, 0, -1).astype(np.int8)
    ids = [f"t{k}" for k in range(themes)]
    tm = ThemeMatrix(tuple(ids), mentions, sentiment, np.ones(n, dtype=bool))
    groups = list(rng.choice(["promoters", "passives", "detractors"], n))
    taxonomy = [{"id": t, "name": t} for t in ids]
    start = time.perf_counter()
    first = driver_analysis(tm, groups, taxonomy, bootstrap=2000, seed=3)
    assert time.perf_counter() - start < 10.0
    assert len(first) == themes
    assert driver_analysis(tm, groups, taxonomy, bootstrap=2000, seed=3) == first
    assert all(d["impact"]["ci95"][0] <= d["impact"]["value"] <= d["impact"]["ci95"][1] for d in first)


# ----------------------------------------------------------------------------- change between periods


def test_theme_changes_by_hand() -> None:
    # current period: 8 of 10 answering responses mention slow_response; previous: 2 of 10.
    # Newcombe hybrid score interval (worked in test_nps): delta 0.6, CI [0.161824, 0.802682] -> significant
    responses = (
        [{"slow_response": "negative"}] * 8 + [{}] * 2 + [{"slow_response": "negative"}] * 2 + [{}] * 8
    )
    tm = ThemeMatrix.from_responses(responses, IDS)
    current = np.arange(20) < 10
    (change,) = theme_changes(tm, current, ~current)
    assert change == {
        "theme": "slow_response",
        "current": {"mentions": 8, "n": 10, "share": 0.8},
        "previous": {"mentions": 2, "n": 10, "share": 0.2},
        "delta": 0.6,
        "ci95": [0.162, 0.803],
        "significant": True,
    }
    assert theme_changes(tm, current, np.zeros(20, dtype=bool)) == []
