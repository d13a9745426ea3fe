"""One contract for every model component: predict before fit raises, save/load round-trips,
batch order is preserved, and a head refuses embeddings from another encoder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.base import NotFittedError
from models.features import TextBatch
from models.lexical import SparseTfidf
from models.sentiment import SentimentHead
from models.themes import ThemeClassifier
from pipelines.errors import ModelError

RNG = np.random.default_rng(0)
DIM = 16
LABELS = ["negative", "neutral", "positive"]


CENTERS = RNG.normal(size=(3, DIM))
WORDS = {"negative": ["遅い", "対応"], "neutral": ["特に"], "positive": ["親切"]}


def _blobs(n: int) -> tuple[TextBatch, list[str]]:
    y = RNG.integers(0, 3, size=n)
    X = CENTERS[y] + 0.3 * RNG.normal(size=(n, DIM))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    labels = [LABELS[i] for i in y]
    texts = ["".join(WORDS[lab]) + str(i % 7) for i, lab in enumerate(labels)]
    return TextBatch(X.astype(np.float32), [WORDS[lab] for lab in labels], texts), labels


def _fit_sentiment() -> tuple[SentimentHead, TextBatch]:
    X, y = _blobs(300)
    Xc, yc = _blobs(90)
    return SentimentHead().fit(X, y, cal=Xc, y_cal=yc, encoder_name="enc-a"), X


def _fit_themes(**params: object) -> tuple[ThemeClassifier, TextBatch]:
    X, y = _blobs(300)
    Y = np.array([[lab == "negative", lab == "positive"] for lab in y], dtype=int)
    examples = {"slow": X.emb[Y[:, 0] == 1][:3], "kind": X.emb[Y[:, 1] == 1][:3]}
    clf = ThemeClassifier(**params).fit(  # type: ignore[arg-type]
        X,
        Y,
        ["slow", "kind"],
        examples=examples,
        bank_texts=[f"t{i}" for i in range(len(X))],
        encoder_name="enc-a",
    )
    return clf, X


def _reversed(batch: TextBatch) -> TextBatch:
    return batch.take(np.arange(len(batch))[::-1])


def test_predict_before_fit_raises() -> None:
    with pytest.raises(NotFittedError, match="fit"):
        SentimentHead().predict_proba(TextBatch(np.zeros((1, DIM)), [[]], [""]))
    with pytest.raises(NotFittedError, match="fit"):
        ThemeClassifier().predict_proba(TextBatch(np.zeros((1, DIM)), [[]], [""]))
    with pytest.raises(NotFittedError, match="fit"):
        SparseTfidf("char").transform(["a"])


def test_sentiment_round_trip_and_order(tmp_path) -> None:
    head, X = _fit_sentiment()
    p = head.predict_proba(X)
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-5)
    loaded = SentimentHead.load(head.save(tmp_path / "s"), encoder_name="enc-a")
    assert np.allclose(loaded.predict_proba(X), p, atol=1e-5)
    # batch order preserved: reversing the input reverses the output
    assert np.allclose(loaded.predict_proba(_reversed(X)), p[::-1], atol=1e-5)
    assert head.predict(X.take(range(5))) == [LABELS[i] for i in p[:5].argmax(1)]
    assert 0.05 <= head.temperature_ <= 20


def test_themes_round_trip_order_and_evidence(tmp_path) -> None:
    clf, X = _fit_themes()
    p = clf.predict_proba(X)
    loaded = ThemeClassifier.load(clf.save(tmp_path / "t"), encoder_name="enc-a")
    assert np.allclose(loaded.predict_proba(X), p, atol=1e-2)  # coef stored as float16
    assert np.allclose(loaded.predict_proba(_reversed(X)), loaded.predict_proba(X)[::-1])
    assert "遅い" in loaded.lemma_evidence(["遅い", "対応"], 0)
    assert loaded.nearest_examples(X, 0, 0)
    proto = loaded.prototype_proba(X.emb, X.emb[:2])
    assert proto.shape == (len(X),) and ((proto >= 0) & (proto <= 1)).all()


def test_themes_co_theme_stage_is_optional(tmp_path) -> None:
    """Without the co-theme stage (``stack_C=None``, or an artifact saved before it existed) the
    first-stage probabilities are the scores."""
    clf, X = _fit_themes(stack_C=None)
    assert clf.stack_coef_ is None
    loaded = ThemeClassifier.load(clf.save(tmp_path / "t"), encoder_name="enc-a")
    assert loaded.stack_coef_ is None
    assert np.allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-2)
    stacked, _ = _fit_themes()
    # both themes' logits, their neighbour votes, their best-clause logits
    assert stacked.stack_coef_.shape == (2, 6)
    assert ((stacked.predict_proba(X) >= stacked.thresholds_).mean(axis=0) > 0).all()
    no_votes, _ = _fit_themes(knn=0)
    assert no_votes.stack_coef_.shape == (2, 4)
    loaded = ThemeClassifier.load(no_votes.save(tmp_path / "n"), encoder_name="enc-a")
    assert loaded.knn == 0 and np.allclose(loaded.predict_proba(X), no_votes.predict_proba(X), atol=1e-2)
    logits_only, _ = _fit_themes(knn=0, clause_max=False)
    assert logits_only.stack_coef_.shape == (2, 2)
    # an artifact saved before the best-clause logits existed has no such key and loads without them
    path = logits_only.save(tmp_path / "old")
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    del config["clause_max"]
    (path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    old = ThemeClassifier.load(path, encoder_name="enc-a")
    assert not old.clause_max and np.allclose(old.predict_proba(X), logits_only.predict_proba(X), atol=1e-2)


def test_themes_fit_without_any_example_sentences() -> None:
    """A team's taxonomy may give its trained themes no example sentences: the head still fits, and a
    theme known only by examples gets the fallback curve (probability 0.5 at margin 0)."""
    X, y = _blobs(120)
    Y = np.array([[lab == "negative", lab == "positive"] for lab in y], dtype=int)
    clf = ThemeClassifier(folds=2).fit(X, Y, ["slow", "kind"], examples={}, encoder_name="enc-a")
    assert (clf.proto_a_, clf.proto_b_) == (20.0, 0.0) and clf.examples_.shape == (0, DIM)
    assert ((clf.predict_proba(X) >= clf.thresholds_) == Y).mean() > 0.9
    assert clf.prototype_proba(X.emb[:2], X.emb[:1])[0] > 0.5  # a text is its own nearest example


def test_heads_refuse_another_encoder(tmp_path) -> None:
    head, _ = _fit_sentiment()
    path = head.save(tmp_path / "s")
    with pytest.raises(ModelError, match="enc-a"):
        SentimentHead.load(path, encoder_name="enc-b")
    clf, _ = _fit_themes()
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


def test_tfidf_by_hand() -> None:
    """Two docs, min_df=1: idf = ln((1+2)/(1+df)) + 1; rows L2-normalised; unknown terms ignored."""
    vec = SparseTfidf("lemma", min_df=1).fit([["配送", "遅い"], ["配送"]])
    assert vec.terms_ == ["配送", "遅い"]  # by document frequency, then by term
    idf_late = np.log(3 / 2) + 1.0
    row = vec.transform([["配送", "遅い", "遅い", "未知"]]).toarray()[0]
    raw = np.array([1.0, (1 + np.log(2)) * idf_late])
    assert np.allclose(row, raw / np.linalg.norm(raw), atol=1e-6)
    chars = SparseTfidf("char", min_df=1, ngram_range=(1, 2)).terms_of("遅い")
    assert chars == [" ", "遅", "い", " ", " 遅", "遅い", "い "]
    assert vec.transform([[]]).nnz == 0


def test_artifact_from_another_version_says_to_retrain(tmp_path) -> None:
    clf, _ = _fit_themes()
    path = clf.save(tmp_path / "t")
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    del config["folds"]
    (path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ModelError, match=r"no field 'folds'.*koe train"):
        ThemeClassifier.load(path)


@pytest.mark.parametrize("weights", [(0.5, 0.5), (1.0, 0.0), (0.0, 1.0)])
def test_blockwise_logits_equal_the_stacked_product(weights) -> None:
    """``Featurizer.logits`` (the fast path) gives ``transform(batch) @ coef.T`` for every block setting,
    and a head's transposed copy follows a reassigned ``coef_``."""
    head, X = _fit_sentiment()
    head.features_.lemma_weight, head.features_.char_weight = weights
    stacked = np.asarray(head.features_.transform(X) @ head.coef_.T)
    assert np.allclose(head.features_.logits(X, head._coef_t), stacked, atol=1e-5)
    head.coef_ = head.coef_ * 2.0
    assert np.allclose(head.features_.logits(X, head._coef_t), 2.0 * stacked, atol=1e-5)
    assert not hasattr(SentimentHead(), "coef_")


def test_term_counts_are_shared_by_both_heads_and_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch with a counts memo (the classify stage's) counts each text's terms once per analyzer for
    the sentiment and the theme head together, and the probabilities are exactly those of a batch without."""
    sentiment, X = _fit_sentiment()
    themes, _ = _fit_themes()
    plain = TextBatch(X.emb, X.lemmas, X.texts)
    shared = TextBatch(X.emb, X.lemmas, X.texts, counts_memo={})
    calls: list[str] = []
    real = SparseTfidf.term_counts

    def counting(self: SparseTfidf, docs: object) -> object:
        calls.append(self.analyzer)
        return real(self, docs)  # type: ignore[arg-type]

    monkeypatch.setattr(SparseTfidf, "term_counts", counting)
    got = (sentiment.predict_proba(shared), themes.predict_proba(shared))
    assert sorted(calls) == ["char", "lemma"]  # once each, for both heads
    assert np.array_equal(got[0], sentiment.predict_proba(plain))
    assert np.array_equal(got[1], themes.predict_proba(plain))
    assert sorted(calls) == ["char", "lemma"]  # a batch without a memo does not keep counts
    with pytest.raises(ValueError, match="term counts"):
        SparseTfidf("lemma", min_df=1).fit([["a"]]).transform([["a"], ["b"]], counts=[])
