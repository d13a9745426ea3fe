"""One contract for every model component: predict before fit raises, save/load round-trips,
batch order is preserved, and a head refuses embeddings from another encoder."""

from __future__ import annotations

import numpy as np
import pytest

from models.base import NotFittedError
from models.lexical import LemmaVectorizer
from models.sentiment import SentimentHead
from models.themes import ThemeClassifier
from pipelines.errors import ModelError

RNG = np.random.default_rng(0)
DIM = 16
LABELS = ["negative", "neutral", "positive"]


def _blobs(n: int) -> tuple[np.ndarray, list[str]]:
    centers = RNG.normal(size=(3, DIM))
    y = RNG.integers(0, 3, size=n)
    X = centers[y] + 0.3 * RNG.normal(size=(n, DIM))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(np.float32), [LABELS[i] for i in y]


def _fit_sentiment() -> tuple[SentimentHead, np.ndarray]:
    X, y = _blobs(300)
    Xc, yc = _blobs(90)
    return SentimentHead().fit(X, y, X_cal=Xc, y_cal=yc, encoder_name="enc-a"), X


def _fit_themes() -> tuple[ThemeClassifier, np.ndarray, list[list[str]]]:
    X, y = _blobs(300)
    lemmas = [["遅い", "対応"] if lab == "negative" else ["親切"] for lab in y]
    Y = np.array([[lab == "negative", lab == "positive"] for lab in y], dtype=int)
    Xv, yv = _blobs(120)
    Yv = np.array([[lab == "negative", lab == "positive"] for lab in yv], dtype=int)
    lem_v = [["遅い"] if lab == "negative" else ["親切"] for lab in yv]
    examples = {"slow": X[Y[:, 0] == 1][:3], "kind": X[Y[:, 1] == 1][:3]}
    clf = ThemeClassifier().fit(
        X,
        lemmas,
        Y,
        ["slow", "kind"],
        X_val=Xv,
        lemmas_val=lem_v,
        Y_val=Yv,
        examples=examples,
        bank_texts=[f"t{i}" for i in range(len(X))],
        encoder_name="enc-a",
    )
    return clf, X, lemmas


def test_predict_before_fit_raises() -> None:
    with pytest.raises(NotFittedError, match="fit"):
        SentimentHead().predict_proba(np.zeros((1, DIM)))
    with pytest.raises(NotFittedError, match="fit"):
        ThemeClassifier().predict_proba(np.zeros((1, DIM)), [[]])
    with pytest.raises(NotFittedError, match="fit"):
        LemmaVectorizer().transform([["a"]])


def test_sentiment_round_trip_and_order(tmp_path) -> None:
    head, X = _fit_sentiment()
    p = head.predict_proba(X)
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-5)
    loaded = SentimentHead.load(head.save(tmp_path / "s"), encoder_name="enc-a")
    assert np.allclose(loaded.predict_proba(X), p, atol=1e-5)
    # batch order preserved: reversing the input reverses the output
    assert np.allclose(loaded.predict_proba(X[::-1]), p[::-1], atol=1e-5)
    assert head.predict(X[:5]) == [LABELS[i] for i in p[:5].argmax(1)]
    assert 0.05 <= head.temperature_ <= 20


def test_themes_round_trip_order_and_evidence(tmp_path) -> None:
    clf, X, lemmas = _fit_themes()
    p = clf.predict_proba(X, lemmas)
    loaded = ThemeClassifier.load(clf.save(tmp_path / "t"), encoder_name="enc-a")
    assert np.allclose(loaded.predict_proba(X, lemmas), p, atol=1e-2)  # coef stored as float16
    assert np.allclose(loaded.predict_proba(X[::-1], lemmas[::-1]), loaded.predict_proba(X, lemmas)[::-1])
    assert "遅い" in loaded.lemma_evidence(["遅い", "対応"], 0)
    assert loaded.nearest_examples(X[0], 0)
    proto = loaded.prototype_proba(X, X[:2])
    assert proto.shape == (len(X),) and ((proto >= 0) & (proto <= 1)).all()


def test_heads_refuse_another_encoder(tmp_path) -> None:
    head, _ = _fit_sentiment()
    path = head.save(tmp_path / "s")
    with pytest.raises(ModelError, match="enc-a"):
        SentimentHead.load(path, encoder_name="enc-b")
    clf, _, _ = _fit_themes()
    tpath = clf.save(tmp_path / "t")
    with pytest.raises(ModelError, match="trained on encoder"):
        ThemeClassifier.load(tpath, encoder_name="enc-b")


def test_missing_artifact_names_the_directory(tmp_path) -> None:
    with pytest.raises(ModelError, match="koe train"):
        SentimentHead.load(tmp_path / "nothing")


def test_invalid_parameter_message() -> None:
    X, y = _blobs(30)
    with pytest.raises(Exception, match="The 'C' parameter of SentimentHead must be"):
        SentimentHead(C=-1).fit(X, y)
