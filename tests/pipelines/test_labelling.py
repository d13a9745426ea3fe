"""Labelling help: the sample, proposals (assistant or classifier), retraining on decided labels."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from models.taxonomy import Theme
from pipelines.labelling import LabelItem, propose_labels, retrain_examples, sample_for_labelling

THEME = Theme(
    "parking", "駐車場", description="駐車場の広さや混雑", examples=("駐車場が狭い。",), custom=True
)


def _items(n: int) -> list[LabelItem]:
    return [LabelItem(i + 2, "理由", f"文{i}") for i in range(n)]


def test_the_sample_mixes_uncertain_top_and_random_and_is_deterministic() -> None:
    items = _items(40)
    scores = np.linspace(0.0, 0.975, 40)  # item 20 sits at 0.5
    picked = sample_for_labelling(items, scores, size=8, seed=1)
    assert len(picked) == len(set(picked)) == 8
    assert picked[:4] == [20, 21, 19, 22]  # nearest 0.5 first: |0.5 - p| ties go to the lower index
    assert picked[4:6] == [39, 38]  # then the highest scored
    assert picked == sample_for_labelling(items, scores, size=8, seed=1)
    assert picked[6:] != sample_for_labelling(items, scores, size=8, seed=2)[6:]  # the random quarter
    dup = [*items[:3], LabelItem(9, "理由", "文0")]
    assert sorted(sample_for_labelling(dup, np.zeros(4), size=10)) == [0, 1, 2]  # a text is labelled once


class LabelAssistant:
    model = "fake"

    def __init__(self, answers: list[Any]) -> None:
        self.answers = list(answers)
        self.calls: list[dict[str, Any]] = []

    def ask(self, task: str, payload: dict[str, Any], schema: dict[str, Any], check: Any = None) -> Any:
        self.calls.append(payload)
        answer = self.answers.pop(0)
        return None if answer is None or (check and check(answer)) else answer


def test_proposals_come_from_the_llm_in_batches_else_from_the_classifier() -> None:
    items = _items(12)
    scores = np.array([0.9, 0.2] * 6)
    first = {"labels": [{"id": f"t{k}", "label": k % 3 == 0, "reason": "理由"} for k in range(1, 11)]}
    incomplete = {"labels": [{"id": "t1", "label": True, "reason": ""}]}  # t2 missing: rejected by the check
    assistant = LabelAssistant([first, incomplete])
    proposals = propose_labels(items, scores, THEME, assistant, batch=10)
    assert len(assistant.calls) == 2 and [len(c["items"]) for c in assistant.calls] == [10, 2]
    assert assistant.calls[0]["theme"]["name"] == "駐車場" and assistant.calls[0]["items"][0]["id"] == "t1"
    assert [p.proposed for p in proposals[:10]] == [k % 3 == 0 for k in range(1, 11)]
    assert {p.proposed_by for p in proposals[:10]} == {"llm:fake"}
    assert [(p.proposed, p.proposed_by) for p in proposals[10:]] == [
        (True, "classifier"),
        (False, "classifier"),
    ]
    plain = propose_labels(items, scores, THEME, None)
    assert [p.proposed for p in plain] == [s >= 0.5 for s in scores] and plain[0].reason is None


def _cosine_score(X: np.ndarray, examples: np.ndarray, counters: np.ndarray | None = None) -> np.ndarray:
    """A stand-in for prototype_proba: the best cosine to an example, 0.5 at cosine 0.8; 0 for a text at
    least as near to a counter-example as to every example."""
    sims = (X @ examples.T).max(axis=1)
    p = 1 / (1 + np.exp(-20 * (sims - 0.8)))
    if counters is not None and len(counters):
        p = np.where((X @ counters.T).max(axis=1) >= sims, 0.0, p)
    return p


def _unit(v: list[float]) -> np.ndarray:
    a = np.array(v, dtype=float)
    return a / np.linalg.norm(a)


def test_retraining_adds_positives_that_help_and_not_those_near_rejected_sentences() -> None:
    # the theme's one example sits on axis 0. Positives: a group on axis 1 (missed today) and one sentence
    # between axis 1 and axis 2; negatives: a group on axis 2. Adding an axis-1 positive as an example
    # brings in the other axis-1 positives; adding the in-between one would bring in the negatives too.
    rng = np.random.default_rng(0)
    pos = [_unit([0, 1, 0, *rng.normal(0, 0.05, 3)]) for _ in range(6)]
    bridge = _unit([0, 0.75, 0.66, 0, 0, 0])
    neg = [_unit([0, 0, 1, *rng.normal(0, 0.05, 3)]) for _ in range(6)]
    X = np.array([*pos, bridge, *neg])
    texts = [f"p{i}" for i in range(6)] + ["bridge"] + [f"n{i}" for i in range(6)]
    labels = [True] * 7 + [False] * 6
    base = np.array([_unit([1, 0, 0, 0, 0, 0])])
    result = retrain_examples(texts, labels, X, _cosine_score, base, folds=3)
    assert result.before["tp"] == 0 and result.before["f1"] == 0.0
    assert result.added and "bridge" not in result.added and all(t.startswith("p") for t in result.added)
    assert result.after["f1"] > 0.8 and result.after["fp"] == 0
    assert result.cross_validated["f1"] > 0.5  # selection without the fold, scored on it
    assert result.positives == 7 and result.negatives == 6 and result.folds == 3
    out = result.to_dict()
    assert set(out["metrics"]) == {"before", "after", "cross_validated"}


def test_nothing_is_added_when_no_positive_helps() -> None:
    X = np.array([_unit([1, 0]), _unit([0, 1])])
    result = retrain_examples(["a", "b"], [True, False], X, _cosine_score, np.array([_unit([1, 0])]))
    assert result.added == [] and result.before["tp"] == 1
    assert any("label more" in n for n in result.notes) and any("stay as they are" in n for n in result.notes)


@pytest.mark.parametrize("existing", [["p0"], []])
def test_existing_examples_are_not_added_twice(existing: list[str]) -> None:
    X = np.array([_unit([0, 1, 0.01 * i]) for i in range(4)])
    result = retrain_examples(
        ["p0", "p1", "p2", "p3"],
        [True] * 4,
        X,
        _cosine_score,
        np.array([_unit([1, 0, 0])]),
        existing=existing,
    )
    assert not set(result.added) & set(existing)


def test_rejected_sentences_the_theme_flags_become_counter_examples() -> None:
    # the theme's example sits on axis 0; the analyst accepts sentences near it and rejects a group that the
    # theme flags too (cosine ~0.9 to the example) but that leans towards axis 2: another kind of text
    rng = np.random.default_rng(1)
    pos = [_unit([1, 0.05 * k, 0, *rng.normal(0, 0.03, 3)]) for k in range(5)]
    neg = [_unit([0.9, 0, 0.44, *rng.normal(0, 0.03, 3)]) for _ in range(5)]
    X = np.array([*pos, *neg])
    texts = [f"p{i}" for i in range(5)] + [f"n{i}" for i in range(5)]
    labels = [True] * 5 + [False] * 5
    base = np.array([_unit([1, 0, 0, 0, 0, 0])])
    result = retrain_examples(texts, labels, X, _cosine_score, base, folds=5)
    assert result.before["fp"] == 5 and result.before["tp"] == 5  # today every rejected sentence is flagged
    assert result.counter_examples and set(result.counter_examples) <= {f"n{i}" for i in range(5)}
    assert result.after["fp"] == 0 and result.after["tp"] == 5
    assert result.cross_validated["fp"] < result.before["fp"] and result.cross_validated["tp"] == 5
    assert result.to_dict()["counter_examples"] == result.counter_examples
    # a new sentence of the rejected kind is no longer flagged; a new one of the theme still is
    counters = X[[texts.index(t) for t in result.counter_examples]]
    fresh = np.array([_unit([0.9, 0, 0.44, 0.02, -0.02, 0.01]), _unit([1, 0.1, 0, 0.01, 0, 0])])
    assert list(_cosine_score(fresh, base) >= 0.5) == [True, True]
    assert list(_cosine_score(fresh, base, counters) >= 0.5) == [False, True]


def test_rejected_sentences_among_accepted_ones_are_no_counter_examples() -> None:
    # two rejected sentences sit among accepted ones: each would unflag the other, and the accepted ones too
    X = np.array([_unit([1, 0.02 * k, 0]) for k in range(4)] + [_unit([1, 0.03, s]) for s in (0.001, -0.001)])
    labels = [True] * 4 + [False] * 2
    result = retrain_examples(
        ["a", "b", "c", "d", "x", "y"], labels, X, _cosine_score, np.array([_unit([1, 0, 0])])
    )
    assert result.counter_examples == [] and result.after["tp"] == 4


def test_a_counter_example_stops_the_same_kind_of_text_being_flagged() -> None:
    """The real models: a custom theme flags a message-card request; once that sentence is a counter-example,
    classify no longer gives the theme to a paraphrase of it, and still gives it to gift wrapping."""
    from models.bundle import get_bundle
    from pipelines.classify import classify_texts

    bundle = get_bundle()
    taxonomy = bundle.taxonomy.add_theme(
        "gift_wrap",
        "ギフト包装",
        examples=[
            "ギフト包装にしてほしい",
            "のしを付けたい",
            "プレゼント用にラッピングしてほしかった",
            "贈り物用の袋を付けてほしい",
            "ギフトボックスが選べると嬉しい",
        ],
    )
    texts = ["メッセージカードが付けられると嬉しい", "ギフト用の包装紙がかわいい"]

    def flagged(tax: Any) -> list[bool]:
        return ["gift_wrap" in r.theme_ids() for r in classify_texts(texts, bundle.with_taxonomy(tax))]

    assert flagged(taxonomy) == [True, True]
    rejected = taxonomy.edit(
        "gift_wrap", add_counter_examples=["プレゼントを送りたいのでメッセージカードを付けたい"]
    )
    assert rejected.get("gift_wrap").counter_examples == (
        "プレゼントを送りたいのでメッセージカードを付けたい",
    )
    assert flagged(rejected) == [False, True]
