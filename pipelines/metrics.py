"""Model-quality figures (accuracy, F1, calibration), computed in one place for training and benchmarks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

import numpy as np

__all__ = [
    "bootstrap_interval",
    "classification_report",
    "cohen_kappa",
    "expected_calibration_error",
    "multilabel_report",
]


def _f1(tp: float, fp: float, fn: float) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def classification_report(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]
) -> dict[str, object]:
    """Accuracy, macro-F1 over ``labels`` and per-label precision/recall/F1/support."""
    t, p = np.asarray(y_true), np.asarray(y_pred)
    per: dict[str, dict[str, float]] = {}
    for label in labels:
        tp = float(np.sum((p == label) & (t == label)))
        fp = float(np.sum((p == label) & (t != label)))
        fn = float(np.sum((p != label) & (t == label)))
        per[label] = {
            "precision": tp / (tp + fp) if tp + fp else 0.0,
            "recall": tp / (tp + fn) if tp + fn else 0.0,
            "f1": _f1(tp, fp, fn),
            "support": int(np.sum(t == label)),
        }
    present = [lab for lab in labels if per[lab]["support"] > 0]
    return {
        "n": len(t),
        "accuracy": float(np.mean(t == p)) if len(t) else 0.0,
        "macro_f1": float(np.mean([per[lab]["f1"] for lab in present])) if present else 0.0,
        "per_label": per,
    }


def multilabel_report(Y_true: np.ndarray, Y_pred: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Micro- and macro-F1 of a multi-label prediction, and F1 per label."""
    Y_true, Y_pred = np.asarray(Y_true, bool), np.asarray(Y_pred, bool)
    tp = (Y_true & Y_pred).sum(axis=0).astype(float)
    fp = (~Y_true & Y_pred).sum(axis=0).astype(float)
    fn = (Y_true & ~Y_pred).sum(axis=0).astype(float)
    per = {
        label: {
            "f1": _f1(tp[k], fp[k], fn[k]),
            "precision": tp[k] / (tp[k] + fp[k]) if tp[k] + fp[k] else 0.0,
            "recall": tp[k] / (tp[k] + fn[k]) if tp[k] + fn[k] else 0.0,
            "support": int(Y_true[:, k].sum()),
        }
        for k, label in enumerate(labels)
    }
    return {
        "n": int(Y_true.shape[0]),
        "micro_f1": _f1(tp.sum(), fp.sum(), fn.sum()),
        "macro_f1": float(np.mean([per[label]["f1"] for label in labels])) if labels else 0.0,
        "per_label": per,
    }


def bootstrap_interval(
    statistic: Callable[[np.ndarray], float],
    n: int,
    *,
    rounds: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of a figure over ``n`` test items: ``statistic`` takes an array of item
    indices (drawn with replacement, ``n`` at a time) and returns the figure on those items. How far a score
    on this many items can move by the luck of which items were drawn; not the annotators' disagreement."""
    if n <= 0:
        raise ValueError("no items to resample")
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, n, n)) for _ in range(rounds)])
    tail = (1.0 - level) / 2.0
    return float(np.quantile(values, tail)), float(np.quantile(values, 1.0 - tail))


def cohen_kappa(a: Sequence[object] | np.ndarray, b: Sequence[object] | np.ndarray) -> float:
    """Cohen's kappa of two annotators' labels for the same items: (observed - chance agreement) / (1 - chance),
    chance from each annotator's own label shares. 1.0 when both always give one and the same label."""
    a_arr, b_arr = np.asarray(a), np.asarray(b)
    if len(a_arr) != len(b_arr):
        raise ValueError(f"annotators labelled {len(a_arr)} and {len(b_arr)} items")
    if not len(a_arr):
        return 0.0
    observed = float(np.mean(a_arr == b_arr))
    labels = set(a_arr.tolist()) | set(b_arr.tolist())
    chance = sum(float(np.mean(a_arr == lab)) * float(np.mean(b_arr == lab)) for lab in labels)
    return 1.0 if chance == 1.0 else (observed - chance) / (1.0 - chance)


def expected_calibration_error(proba: np.ndarray, y_true_index: np.ndarray, bins: int = 15) -> float:
    """Top-label ECE: the bin-weighted gap between confidence and accuracy (equal-width bins)."""
    proba = np.asarray(proba, dtype=float)
    if not len(proba):
        return 0.0
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == np.asarray(y_true_index)
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in pairwise(edges):
        mask = (conf > lo) & (conf <= hi)
        if mask.any():
            ece += mask.mean() * abs(conf[mask].mean() - correct[mask].mean())
    return float(ece)
