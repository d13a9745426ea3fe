"""The theme head's views of a comment: clause mean, whole text, nearest-neighbour votes and its best clause."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.features import Featurizer, TextBatch
from models.themes import ThemeClassifier, best_clause_logits, knn_votes

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


def _with_clauses(clause_emb: np.ndarray, owner: np.ndarray, n: int) -> TextBatch:
    """``n`` comments made of the given clauses (comment vector: the clauses' mean), no lexical signal."""
    clauses = TextBatch(clause_emb, [["x"]] * len(clause_emb), ["x"] * len(clause_emb))
    sums = np.zeros((n, clause_emb.shape[1]), np.float32)
    np.add.at(sums, owner, clause_emb)
    sums[np.linalg.norm(sums, axis=1) == 0] = 1.0  # a comment without clauses
    return TextBatch(_unit(sums), [["x"]] * n, ["x"] * n, clauses=clauses, clause_owner=owner)


def test_best_clause_logits_by_hand() -> None:
    """Three comments: two clauses, one clause, none (empty text). Score = the first two coordinates."""
    clause_emb = np.array([[1, -2, 0], [3, -5, 0], [-1, 4, 0]], dtype=np.float32)
    batch = _with_clauses(clause_emb, np.array([0, 0, 1]), 3)
    own = np.array([[9, 9], [9, 9], [7, 8]], dtype=np.float32)  # the comments' own logits

    def score(b: TextBatch) -> np.ndarray:
        return np.asarray(b.emb[:, :2])

    best = best_clause_logits(batch, own, score)
    assert best.tolist() == [[3, -2], [-1, 4], [7, 8]]  # per theme the larger clause; no clause: its own
    plain = TextBatch(batch.emb, batch.lemmas, batch.texts)  # sentences: each text its own only clause
    assert best_clause_logits(plain, own, score) is own


def test_clauses_follow_take_and_concat() -> None:
    clause_emb = _unit(RNG.normal(size=(5, 4)))
    batch = _with_clauses(clause_emb, np.array([0, 0, 1, 2, 2]), 4)  # the fourth comment is empty
    picked = batch.take([2, 3, 0])
    assert picked.clauses is not None and picked.clause_owner is not None
    assert np.array_equal(picked.clauses.emb, clause_emb[[3, 4, 0, 1]])
    assert picked.clause_owner.tolist() == [0, 0, 2, 2]
    plain = TextBatch(_unit(RNG.normal(size=(2, 4))), [["y"]] * 2, ["y", "z"])
    both = TextBatch.concat([plain, picked])
    assert both.clauses is not None and both.clause_owner is not None
    assert both.clause_owner.tolist() == [0, 1, 2, 2, 4, 4]  # plain texts are their own clauses
    assert np.array_equal(both.clauses.emb[:2], plain.emb) and both.clauses.texts[1] == "z"
    assert TextBatch.concat([plain, plain]).clauses is None
    with pytest.raises(ValueError, match="non-decreasing"):
        TextBatch(
            batch.emb,
            batch.lemmas,
            batch.texts,
            clauses=batch.clauses,
            clause_owner=np.array([1, 0, 1, 2, 2]),
        )
    with pytest.raises(ValueError, match="come together"):
        TextBatch(batch.emb, batch.lemmas, batch.texts, clauses=batch.clauses)


def test_theme_head_finds_a_theme_said_in_one_clause_of_six(tmp_path) -> None:
    """The theme lives in one clause of six, diluted in the comment's mean: the co-theme stage that reads
    each comment's best clause finds it on new comments, one without does not; the setting survives save
    and load."""
    dim, k = 32, 6
    direction = _unit(RNG.normal(size=(1, dim)))[0]

    def comments(n: int) -> tuple[TextBatch, np.ndarray]:
        y = RNG.integers(0, 2, size=n)
        clause_emb = _unit(RNG.normal(size=(n * k, dim)))
        for i in np.flatnonzero(y == 1):
            clause_emb[i * k + RNG.integers(0, k)] = _unit((direction + 0.2 * RNG.normal(size=dim))[None])[0]
        return _with_clauses(clause_emb, np.repeat(np.arange(n), k), n), np.stack([y, 1 - y], axis=1)

    (train, Y), (test, Y_test) = comments(400), comments(400)
    fit = {"examples": {"a": train.emb[:2], "b": train.emb[2:4]}, "encoder_name": "enc"}
    best = ThemeClassifier(knn=0).fit(train, Y, ["a", "b"], **fit)  # type: ignore[arg-type]
    mean_only = ThemeClassifier(knn=0, clause_max=False).fit(train, Y, ["a", "b"], **fit)  # type: ignore[arg-type]

    def accuracy(clf: ThemeClassifier) -> float:
        return float(((clf.predict_proba(test) >= clf.thresholds_) == Y_test).mean())

    assert accuracy(best) > 0.9 > 0.8 > accuracy(mean_only)
    loaded = ThemeClassifier.load(best.save(tmp_path / "t"), encoder_name="enc")
    assert loaded.clause_max and np.allclose(loaded.predict_proba(test), best.predict_proba(test), atol=1e-2)
