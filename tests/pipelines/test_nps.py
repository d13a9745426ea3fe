from datetime import date, datetime

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pipelines.errors import ConfigError
from pipelines.nps import (
    MISSING_SEGMENT,
    adjusted_wald_net,
    get_metric,
    group_of,
    newcombe_interval,
    nps_by_period,
    nps_by_segment,
    nps_difference,
    nps_summary,
    period_of,
    wilson_interval,
)

# ----------------------------------------------------------------------------- groups


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        (
            "nps",
            {0: "detractors", 6: "detractors", 7: "passives", 8: "passives", 9: "promoters", 10: "promoters"},
        ),
        ("csat", {1: "detractors", 2: "detractors", 3: "passives", 4: "promoters", 5: "promoters"}),
        ("ces", {1: "detractors", 3: "detractors", 4: "passives", 5: "promoters", 7: "promoters"}),
    ],
)
def test_group_boundaries(metric: str, expected: dict[int, str]) -> None:
    assert {s: group_of(s, metric) for s in expected} == expected


def test_group_of_rejects_scores_off_the_scale_and_unknown_metrics() -> None:
    with pytest.raises(ValueError, match="outside the nps scale"):
        group_of(11, "nps")
    with pytest.raises(ValueError, match="outside the csat scale"):
        group_of(0, "csat")
    with pytest.raises(ConfigError, match="The 'metric' parameter must be one of"):
        get_metric("nss")


def test_metric_definition_as_schema_dict() -> None:
    assert get_metric("nps").to_dict() == {
        "name": "nps",
        "scale": [0, 10],
        "groups": {"promoters": [9, 10], "passives": [7, 8], "detractors": [0, 6]},
    }


# ----------------------------------------------------------------------------- hand-worked intervals


def test_nps_adjusted_wald_by_hand() -> None:
    # 10 responses: 4 promoters (9, 10), 3 passives (7, 8), 3 detractors (0–6).
    # NPS = 100 × (4 − 3) / 10 = 10.
    # Adjusted Wald (Rocks 2016): ñ = 10 + 3 = 13
    #   p̃ = (4 + 0.75) / 13 = 0.365385     d̃ = (3 + 0.75) / 13 = 0.288462
    #   p̃ − d̃ = 1/13 = 0.076923
    #   Var = (p̃ + d̃ − (p̃ − d̃)²) / ñ = (0.653846 − 0.005917) / 13 = 0.049841
    #   se = √0.049841 = 0.223250;   z·se = 1.959964 × 0.223250 = 0.437562
    #   CI = 0.076923 ± 0.437562 = [−0.360639, 0.514485]  -> [−36.1, 51.4]
    lo, hi = adjusted_wald_net(4, 3, 3)
    assert lo == pytest.approx(-0.360639, abs=1e-6)
    assert hi == pytest.approx(0.514485, abs=1e-6)
    scores = [10, 9, 9, 10, 8, 7, 7, 6, 3, 0]
    assert nps_summary(scores) == {
        "score": 10.0,
        "n": 10,
        "promoters": 4,
        "passives": 3,
        "detractors": 3,
        "shares": {"promoters": 0.4, "passives": 0.3, "detractors": 0.3},
        "ci95": [-36.1, 51.4],
        "method": "adjusted-wald",
    }


def test_csat_wilson_by_hand() -> None:
    # CSAT 1–5, scores [5, 4, 3, 1]: satisfied (4–5) = 2 of 4 -> score 50.
    # Wilson: p̂ = 0.5, z² = 3.841459, z²/n = 0.960365
    #   centre = (0.5 + z²/2n) / (1 + z²/n) = (0.5 + 0.480182) / 1.960365 = 0.5
    #   half   = z·√(p̂(1−p̂)/n + z²/4n²) / (1 + z²/n) = 1.959964 × √(0.0625 + 0.060023) / 1.960365
    #          = 1.959964 × 0.350033 / 1.960365 = 0.349961
    #   CI = [0.150039, 0.849961] -> [15.0, 85.0]
    assert wilson_interval(2, 4) == pytest.approx((0.150039, 0.849961), abs=1e-6)
    out = nps_summary([5, 4, 3, 1], "csat")
    assert (out["score"], out["ci95"], out["method"]) == (50.0, [15.0, 85.0], "wilson")
    assert (out["promoters"], out["passives"], out["detractors"]) == (2, 1, 1)


def test_ces_is_easy_minus_difficult() -> None:
    # CES 1–7: easy 5–7 = 3 (5, 5, 6), neutral 4 = 1, difficult 1–3 = 3 (2, 1, 1) -> 100 × (3 − 3) / 7 = 0
    out = nps_summary([5, 5, 4, 2, 1, 1, 6], "ces")
    assert out["score"] == 0.0 and out["method"] == "adjusted-wald"
    assert out["ci95"][0] == -out["ci95"][1]  # symmetric counts -> symmetric interval


def test_empty_all_promoters_single_and_unscored() -> None:
    empty = nps_summary([])
    assert empty["score"] is None and empty["ci95"] is None and empty["shares"] is None and empty["n"] == 0
    assert nps_summary([None, None])["n"] == 0
    # 20 promoters: ñ = 23, p̃ = 20.75/23 = 0.902174, d̃ = 0.75/23 = 0.032609, p̃ − d̃ = 0.869565
    # Var = (0.934783 − 0.756144) / 23 = 0.0077669, z·se = 0.172731 -> [0.696834, 1.042] -> clip -> [69.7, 100]
    allp = nps_summary([10] * 20)
    assert (allp["score"], allp["ci95"]) == (100.0, [69.7, 100.0])
    # n = 1 is the one case where the adjusted interval [−48.5, 98.5] misses the observed 100: widened to it
    assert nps_summary([9])["ci95"] == [-48.5, 100.0]
    assert nps_summary([10, None, 0])["n"] == 2


@given(st.lists(st.one_of(st.none(), st.integers(0, 10)), max_size=300))
def test_nps_properties(scores: list[int | None]) -> None:
    out = nps_summary(scores)
    if out["n"] == 0:
        assert out["score"] is None and out["ci95"] is None
        return
    lo, hi = out["ci95"]
    assert -100 <= lo <= out["score"] <= hi <= 100
    assert sum(out["shares"].values()) == pytest.approx(1.0, abs=0.0015)
    assert out["promoters"] + out["passives"] + out["detractors"] == out["n"]


@given(st.lists(st.integers(1, 5), min_size=1, max_size=200))
def test_csat_properties(scores: list[int]) -> None:
    out = nps_summary(scores, "csat")
    lo, hi = out["ci95"]
    assert 0 <= lo <= out["score"] <= hi <= 100


# ----------------------------------------------------------------------------- differences


def test_nps_difference_by_hand() -> None:
    # current: 4/3/3 of 10 -> NPS 10;  previous: 2/3/5 of 10 -> NPS −30;  delta = 40
    # adjusted: current  p̃ − d̃ = 1/13 = 0.076923, Var = 0.049841 (see test above)
    #           previous p̃ = 2.75/13, d̃ = 5.75/13, p̃ − d̃ = −3/13 = −0.230769
    #                    Var = (8.5/13 − 9/169) / 13 = (0.653846 − 0.053254) / 13 = 0.046199
    # centre = 4/13 = 0.307692;  se = √(0.049841 + 0.046199) = 0.309903;  z·se = 0.607399
    # CI = [−0.299707, 0.915091] -> [−30.0, 91.5], contains 0 -> not significant
    current = [10, 10, 9, 9, 8, 8, 7, 0, 3, 6]
    previous = [10, 9, 8, 7, 7, 0, 1, 2, 5, 6]
    out = nps_difference(current, previous)
    assert out == {
        "delta": 40.0,
        "ci95": [-30.0, 91.5],
        "significant": False,
        "n": {"current": 10, "previous": 10},
        "method": "adjusted-wald",
    }
    big = nps_difference([10] * 60 + [8] * 20 + [0] * 20, [10] * 20 + [8] * 20 + [0] * 60)
    assert big["delta"] == 80.0 and big["significant"] is True


def test_csat_difference_newcombe_by_hand() -> None:
    # 8/10 satisfied vs 2/10. Wilson 8/10: centre = (0.8 + 0.192073) / 1.384146 = 0.716741,
    #   half = 1.959964 × √(0.016 + 0.0096036) / 1.384146 = 0.226577 -> [0.490164, 0.943318]; 2/10 mirrors it.
    # lo = 0.6 − √((0.8 − 0.490164)² + (0.509836 − 0.2)²) = 0.6 − √(2 × 0.095998) = 0.161824
    # hi = 0.6 + √((0.943318 − 0.8)² + (0.2 − 0.056682)²) = 0.6 + √(2 × 0.020540) = 0.802682
    assert newcombe_interval(8, 10, 2, 10) == pytest.approx((0.161824, 0.802682), abs=1e-5)
    out = nps_difference([5] * 8 + [1] * 2, [5] * 2 + [1] * 8, "csat")
    assert (out["delta"], out["ci95"], out["significant"], out["method"]) == (
        60.0,
        [16.2, 80.3],
        True,
        "newcombe",
    )


def test_difference_with_an_empty_side() -> None:
    out = nps_difference([10, 9], [])
    assert out["delta"] is None and out["ci95"] is None and out["significant"] is None
    assert out["n"] == {"current": 2, "previous": 0}


@given(
    st.lists(st.integers(0, 10), min_size=1, max_size=80),
    st.lists(st.integers(0, 10), min_size=1, max_size=80),
)
@example([0, 7], [0] * 15)  # lower bound just above 0 that reads 0.0: once "significant" (a clean-clone run)
def test_difference_properties(a: list[int], b: list[int]) -> None:
    out = nps_difference(a, b)
    lo, hi = out["ci95"]
    assert -200 <= lo <= out["delta"] <= hi <= 200
    assert out["significant"] == (lo > 0 or hi < 0)


# ----------------------------------------------------------------------------- periods and segments


def test_period_keys_and_bounds() -> None:
    week = period_of(datetime(2026, 11, 22, 23, 59), "week")  # a Sunday
    assert week.to_dict() == {"period": "2026-W47", "start": "2026-11-16", "end": "2026-11-22"}
    assert period_of(date(2027, 1, 1), "week").key == "2026-W53"  # ISO year 2026 has 53 weeks
    assert period_of(date(2026, 11, 5), "month").to_dict() == {
        "period": "2026-11",
        "start": "2026-11-01",
        "end": "2026-11-30",
    }
    assert period_of(date(2028, 2, 10), "month").end == date(2028, 2, 29)
    assert period_of(date(2026, 11, 5), "quarter").to_dict() == {
        "period": "2026-Q4",
        "start": "2026-10-01",
        "end": "2026-12-31",
    }
    assert period_of(date(2026, 1, 31), "quarter").key == "2026-Q1"
    with pytest.raises(ConfigError):
        period_of(date(2026, 1, 1), "year")  # type: ignore[arg-type]


def test_nps_by_period_is_chronological_and_skips_undated() -> None:
    scores = [10, 0, 9, 8, None]
    dates = [
        datetime(2026, 11, 17),
        datetime(2026, 11, 9),
        None,
        datetime(2026, 11, 18),
        datetime(2026, 11, 20),
    ]
    weeks = nps_by_period(scores, dates, "week")
    assert [w["period"] for w in weeks] == ["2026-W46", "2026-W47"]
    assert [w["n"] for w in weeks] == [1, 3]  # responses in the period, scored or not
    assert weeks[1]["nps"]["n"] == 2 and weeks[1]["nps"]["score"] == 50.0
    assert nps_by_period(scores, dates, "month", None)[0]["nps"] is None


def test_nps_by_segment_sorted_by_n_with_missing_label() -> None:
    out = nps_by_segment([10, 9, 0, 7, None], ["B", "A", "A", None, "A"])
    assert [e["value"] for e in out] == ["A", "B", MISSING_SEGMENT]
    assert out[0]["n"] == 3 and out[0]["nps"]["n"] == 2 and out[0]["nps"]["score"] == 0.0
    assert nps_by_segment([None], ["x"], None) == [{"value": "x", "n": 1, "nps": None}]
