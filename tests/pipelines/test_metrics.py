import numpy as np
import pytest

from pipelines.metrics import (
    bootstrap_interval,
    classification_report,
    cohen_kappa,
    expected_calibration_error,
    multilabel_report,
)


def test_classification_report_by_hand() -> None:
    # positive: tp=2 fp=1 fn=0 -> P 2/3 R 1 F1 0.8; negative: tp=1 fp=0 fn=1 -> F1 2/3; neutral tp=1 fp=0 fn=0 -> 1
    y = ["positive", "positive", "negative", "negative", "neutral"]
    p = ["positive", "positive", "positive", "negative", "neutral"]
    r = classification_report(y, p, ["negative", "neutral", "positive"])
    assert r["accuracy"] == pytest.approx(0.8)
    assert r["macro_f1"] == pytest.approx((0.8 + 2 / 3 + 1.0) / 3)


def test_multilabel_micro_macro_by_hand() -> None:
    Y = np.array([[1, 0], [1, 1], [0, 1]])
    P = np.array([[1, 1], [0, 1], [0, 1]])
    # label a: tp1 fn1 -> F1 2/3; label b: tp2 fp1 -> F1 0.8; micro: tp3 fp1 fn1 -> 0.75
    r = multilabel_report(Y, P, ["a", "b"])
    assert r["micro_f1"] == pytest.approx(0.75)
    assert r["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)


def test_ece_by_hand() -> None:
    # two predictions at confidence 0.9 (one right) and one at 0.6 (right):
    # bin(0.867,0.933]: |0.9-0.5|*2/3 ; bin(0.533,0.6]: |0.6-1|*1/3 -> 0.2667+0.1333 = 0.4
    proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4]])
    assert expected_calibration_error(proba, np.array([0, 1, 0])) == pytest.approx(0.4)


def test_cohen_kappa_by_hand() -> None:
    # 10 items: both say yes on 4, both no on 4, a-only yes 1, b-only yes 1 -> observed 0.8;
    # a says yes 5/10, b says yes 5/10 -> chance 0.5*0.5 + 0.5*0.5 = 0.5 -> kappa (0.8-0.5)/0.5 = 0.6
    a = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    b = [1, 1, 1, 1, 0, 1, 0, 0, 0, 0]
    assert cohen_kappa(a, b) == pytest.approx(0.6)
    assert cohen_kappa(["x", "y"], ["x", "y"]) == pytest.approx(1.0)
    assert cohen_kappa(["x", "x"], ["x", "x"]) == 1.0
    # agreement no better than chance: a always yes, b half yes -> observed 0.5, chance 0.5 -> 0
    assert cohen_kappa([1, 1, 1, 1], [1, 0, 1, 0]) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        cohen_kappa([1], [1, 0])


def test_bootstrap_interval_of_a_proportion_matches_the_normal_approximation() -> None:
    # 400 items, half right: a proportion's 95% interval is about 0.5 +- 1.96 * sqrt(0.25 / 400) = +-0.049
    right = np.array([1, 0] * 200, dtype=float)
    lo, hi = bootstrap_interval(lambda idx: float(right[idx].mean()), len(right), rounds=2000, seed=1)
    assert lo == pytest.approx(0.451, abs=0.012) and hi == pytest.approx(0.549, abs=0.012)
    assert bootstrap_interval(lambda idx: float(right[idx].mean()), 400, rounds=2000, seed=1) == (lo, hi)
    assert bootstrap_interval(lambda idx: 0.7, 10) == (0.7, 0.7)
    with pytest.raises(ValueError):
        bootstrap_interval(lambda idx: 0.0, 0)
