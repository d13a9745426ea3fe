"""The fine-tuning recipe's two starting choices, checked by hand: the theme loss's positive weights
and the linear probe that starts the task heads (torch: the hub extra)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sklearn.linear_model import LogisticRegression  # noqa: E402

from pipelines.train.finetune import Example, _linear_probe, theme_pos_weight  # noqa: E402

pytestmark = pytest.mark.hub


def _example(vec: list[float], sentiment: int, themes: list[float] | None) -> Example:
    anchors = np.array([vec], np.float32)
    return Example([[0, 5, 2]], sentiment, None if themes is None else np.array(themes, np.float32), anchors)


def test_theme_pos_weight_is_the_root_of_negatives_over_positives() -> None:
    train = [
        _example([1, 0], 0, [1, 0, 0]),
        _example([1, 0], 0, [1, 0, 0]),
        _example([1, 0], 0, [0, 0, 0]),
        _example([1, 0], 0, [0, 1, 0]),
        _example([1, 0], 1, None),  # a sentence: no theme labels, not counted
    ]
    # theme 1: 2 of 4 comments -> sqrt(2/2) = 1; theme 2: 1 of 4 -> sqrt(3/1); theme 3: none -> sqrt(4/1)
    np.testing.assert_allclose(theme_pos_weight(train, 3), [1.0, np.sqrt(3.0), 2.0], rtol=1e-6)
    assert theme_pos_weight([_example([1, 0], 0, None)], 2).tolist() == [1.0, 1.0]


def test_linear_probe_sets_the_heads_to_the_fitted_regressions() -> None:
    rng = np.random.default_rng(0)
    train = []
    for i in range(60):
        sentiment = i % 3
        vec = rng.normal(size=4) * 0.05
        vec[sentiment] += 0.1
        themes = [float(sentiment == 0), float(i % 4 == 0), 0.0] if i % 2 == 0 else None
        train.append(
            Example(
                [[0, 2]],
                sentiment,
                None if themes is None else np.array(themes, np.float32),
                vec[None, :].astype(np.float32),
            )
        )
    train[0].whole, train[0].whole_anchor = [0, 3, 2], np.full(4, 0.5, np.float32)  # a comment of two clauses
    tuner = SimpleNamespace(
        torch=torch, sentiment=torch.nn.Linear(4, 3), themes=torch.nn.Linear(8, 3), whole_text=True
    )
    _linear_probe(tuner, train, 3)  # type: ignore[arg-type]

    x = np.stack([10.0 * e.anchors.mean(axis=0) for e in train]).astype(np.float32)
    # themes read [clause mean | whole text] / sqrt 2: the whole text is the mean where there is no other
    xt = np.hstack([x, x]) / np.sqrt(2.0)
    xt[0, 4:] = 10.0 * 0.5 / np.sqrt(2.0)
    np.testing.assert_allclose(np.stack([e.theme_anchor(True) for e in train]), xt, rtol=1e-6)
    np.testing.assert_allclose(np.stack([e.theme_anchor(False) for e in train]), x, rtol=1e-6)  # the default
    with torch.no_grad():
        sent_logits = tuner.sentiment(torch.from_numpy(x)).numpy()
        theme_logits = tuner.themes(torch.from_numpy(xt.astype(np.float32))).numpy()
    expected = LogisticRegression(C=1.0, max_iter=2000).fit(x, [e.sentiment for e in train])
    np.testing.assert_allclose(sent_logits, expected.decision_function(x), atol=1e-4)
    assert (sent_logits.argmax(1) == np.array([e.sentiment for e in train])).mean() > 0.9

    rows = [i for i, e in enumerate(train) if e.themes is not None]
    first = LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced").fit(
        xt[rows],
        [train[i].themes[0] for i in rows],  # type: ignore[index]
    )
    np.testing.assert_allclose(theme_logits[:, 0], first.decision_function(xt), atol=1e-4)
    # a theme no comment carries gets a zero head (logit 0), not a fit that fails
    np.testing.assert_allclose(theme_logits[:, 2], 0.0)
