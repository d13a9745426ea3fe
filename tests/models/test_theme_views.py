"""The theme head's two views of a comment (clause mean and whole text) and its nearest-neighbour votes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.features import Featurizer, TextBatch
from models.themes import ThemeClassifier, knn_votes

RNG = np.random.default_rng(3)


def _unit(X: np.ndarray) -> np.ndarray:
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def test_knn_votes_by_hand() -> None:
    """Query (1, 0) against bank rows (1, 0), (0, 1), (-1, 0), k = 2, temperature ln 3: the nearest two
    are at cosine 1 and 0, weighted exp(ln 3 * (s - 1)) = 1 and 1/3, so shares 0.75 and 0.25."""
    bank = np.array([[1, 0], [0, 1], [-1, 0]], dtype=np.float32)
    labels = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0]], dtype=np.uint8)
    votes = knn_votes(np.array([[1, 0]], dtype=np.float32), bank, labels, k=2, temperature=math.log(3))
    assert votes[0] == pytest.approx([math.log(3), -math.log(3), math.log(0.02 / 0.98)], abs=1e-5)
    # the query (0, -1): nearest (1, 0) and (-1, 0) at cosine 0, equal weights, so theme one's share is 1 -> 0.98
    down = knn_votes(np.array([[0, -1]], dtype=np.float32), bank, labels, k=2, temperature=math.log(3))
    assert down[0] == pytest.approx(
        [math.log(0.98 / 0.02), math.log(0.02 / 0.98), math.log(0.02 / 0.98)], abs=1e-5
    )
    # k larger than the bank: every row votes; an empty query gives an empty answer
    assert knn_votes(bank[:1], bank, labels, k=10, temperature=1.0).shape == (1, 3)
    assert knn_votes(np.zeros((0, 2), np.float32), bank, labels, k=2, temperature=1.0).shape == (0, 3)


def test_whole_text_embeddings_follow_take_and_concat() -> None:
    emb, whole = _unit(RNG.normal(size=(4, 8))), _unit(RNG.normal(size=(4, 8)))
    batch = TextBatch(emb, [[]] * 4, list("abcd"), whole=whole)
    assert np.array_equal(batch.take([2, 0]).whole, whole[[2, 0]])  # type: ignore[index]
    plain = TextBatch(emb[:2], [[]] * 2, ["e", "f"])  # sentences: whole is the embedding itself
    both = TextBatch.concat([batch, plain])
    assert both.whole is not None and np.array_equal(both.whole[4:], emb[:2])
    dense = both.dense(whole_text=True)
    assert dense.shape == (6, 16) and np.allclose(np.linalg.norm(dense, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(both.dense(whole_text=False), both.emb)
    with pytest.raises(ValueError, match="whole-text embeddings"):
        TextBatch(emb, [[]] * 4, list("abcd"), whole=whole[:3])


def test_theme_head_reads_the_whole_text_and_round_trips(tmp_path) -> None:
    """The label lives in the whole-text embedding only: a head with ``whole_text`` learns it, and one
    without cannot; saving and loading keeps the views, the votes and their bank."""
    n, dim = 240, 8
    y = RNG.integers(0, 2, size=n)
    centers = _unit(RNG.normal(size=(2, dim)))
    emb = _unit(RNG.normal(size=(n, dim)))  # the clause mean says nothing
    whole = _unit(centers[y] + 0.3 * RNG.normal(size=(n, dim)))
    batch = TextBatch(emb, [["x"]] * n, ["x"] * n, whole=whole)
    Y = np.stack([y, 1 - y], axis=1)
    fit = {"examples": {"a": emb[y == 1][:3], "b": emb[y == 0][:3]}, "encoder_name": "enc"}
    with_whole = ThemeClassifier().fit(batch, Y, ["a", "b"], **fit)  # type: ignore[arg-type]
    without = ThemeClassifier(whole_text=False, knn=0).fit(batch, Y, ["a", "b"], **fit)  # type: ignore[arg-type]

    def accuracy(clf: ThemeClassifier) -> float:
        return float(((clf.predict_proba(batch) >= clf.thresholds_) == Y).mean())

    assert accuracy(with_whole) > 0.9 > 0.7 > accuracy(without)
    assert with_whole.features_.dim_ == 2 * dim and with_whole.bank_.shape == (n, 2 * dim)
    loaded = ThemeClassifier.load(with_whole.save(tmp_path / "t"), encoder_name="enc")
    assert (loaded.whole_text, loaded.knn) == (True, 15)
    assert np.allclose(loaded.predict_proba(batch), with_whole.predict_proba(batch), atol=1e-2)
    assert Featurizer.from_saved(loaded.features_.get_config(), loaded.features_.get_arrays()).whole_text
