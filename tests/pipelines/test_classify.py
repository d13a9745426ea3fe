"""The classify stage on the shipped models: custom themes work at once, results are deterministic."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from models.bundle import get_bundle
from models.themes import ThemeClassifier
from pipelines.classify import Prepared, batches, classify_texts, multi_clause_texts, prepare
from pipelines.records import TextResult

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bundle():
    return get_bundle()


def test_a_custom_theme_works_from_a_handful_of_examples(bundle) -> None:
    custom = bundle.with_taxonomy(
        bundle.taxonomy.add_theme(
            "packaging",
            "梱包",
            description="梱包・包装の状態や過剰包装について",
            examples=[
                "梱包が雑で箱が潰れていました",
                "過剰包装でゴミが多すぎる",
                "緩衝材が少なくて中身が動いていた",
                "丁寧に梱包されていて感心しました",
                "段ボールがつぶれて届いた",
            ],
        )
    )
    texts = ["箱がつぶれていて梱包もかなり雑でした", "スタッフの方の説明がわかりやすかったです"]
    on, off = classify_texts(texts, custom)
    assert "packaging" in on.theme_ids()
    assert "packaging" not in off.theme_ids()
    hit = next(t for t in on.themes if t.id == "packaging")
    assert hit.label == "梱包" and hit.sentiment == "negative"
    # the default themes are unchanged by the addition
    assert [t.id for t in classify_texts(texts[1:], bundle)[0].themes] == off.theme_ids()


def test_negation_and_mixed_comments(bundle) -> None:
    fast, mixed = classify_texts(
        ["思っていたより対応は遅くはなかったです。", "料金は高い。でもサポートの方はとても親切でした。"],
        bundle,
    )
    assert fast.sentiment != "negative"
    by_theme = {t.id: t.sentiment for t in mixed.themes}
    assert by_theme.get("price") == "negative" and by_theme.get("support_staff") == "positive"
    assert [s.sentiment for s in mixed.sentences] == ["negative", "positive"]


def test_concessive_complaint_keeps_its_price_complaint(bundle) -> None:
    """A knife edge, so the test holds what does not depend on the last digit. 「料金は高いけど、」 read negative 0.57 /
    neutral 0.39 with the encoder tuned on the writers' labels, neutral 0.50 / negative 0.45 with the heads on the
    adjudicated labels (a strict xfail then), negative 0.45 / neutral 0.44 with the encoder and heads of the third
    session (2026-12-07, 価格 negative by 0.01) and negative 0.59 / neutral 0.32 with those of the fourth. int8
    vectors differ in the last digits between CPUs, so the side of that edge is not asserted; that the clause is read as a complaint at least as much as
    anything else within 0.05, never as praise, and that both themes are found, is."""
    (mixed,) = classify_texts(["料金は高いけど、サポートの方はとても親切でした。"], bundle)
    by_theme = {t.id: t.sentiment for t in mixed.themes}
    assert by_theme.get("price") in {"negative", "neutral"} and by_theme.get("support_staff") == "positive"
    clause = mixed.sentences[0]
    assert clause.text == "料金は高いけど、"
    assert clause.scores["negative"] >= max(clause.scores.values()) - 0.05
    assert clause.scores["positive"] < 0.2


def test_a_theme_that_means_one_sentiment_reports_it_and_a_contradiction_needs_review(bundle) -> None:
    """感謝 means positive, がっかり negative (the taxonomy's `sentiment`): a hit reports that sentiment whatever its
    clauses read, and a clause read the opposite way (sarcasm, or a wrong theme) flags the result for review.
    Checked by turning 感謝 negative on plain thanks, which the model reads positive with certainty."""
    thanks = "丁寧に対応していただき、本当にありがとうございました。"
    (plain,) = classify_texts([thanks], bundle)
    hit = {t.id: t for t in plain.themes}["gratitude"]
    assert hit.sentiment == "positive" and plain.sentiment == "positive" and not plain.needs_review
    themes = tuple(
        replace(t, sentiment="negative") if t.id == "gratitude" else t for t in bundle.taxonomy.themes
    )
    (turned,) = classify_texts([thanks], bundle.with_taxonomy(replace(bundle.taxonomy, themes=themes)))
    by_id = {t.id: t for t in turned.themes}
    assert by_id["gratitude"].sentiment == "negative" and turned.needs_review
    assert turned.sentences[-1].sentiment == "positive"  # the clause keeps its own reading


def _raw_scores(result: TextResult) -> list[float]:
    """Every probability of a result, unrounded: comment, theme hits, sentences."""
    return [
        *result.scores.values(),
        *(h.score for h in result.themes),
        *(v for sentence in result.sentences for v in sentence.scores.values()),
    ]


def test_same_input_same_output_in_any_batch(bundle) -> None:
    """A text reads the same alone and among others, to far below display precision: the encoder is
    batch-invariant (per-token int8) and the heads multiply in float64 (in float32, one row against
    twenty moved scores by ~1e-7, enough to flip a 4-digit score on a job resumed in another chunk)."""
    texts = [
        "配送が遅い",
        "特になし",
        "アプリが落ちて使えません😡",
        "ありがとうございました",
        "4人家族で1食500円台。スーパーで買うより安い時もある",
        "商品は良かったです。ただ、届くまでに10日もかかり、問い合わせの返事もありませんでした。",
    ]
    alone = [classify_texts([t], bundle)[0] for t in texts]
    together = classify_texts(texts, bundle)
    assert [r.to_dict() for r in alone] == [r.to_dict() for r in together]
    for one, batched in zip(alone, together, strict=True):
        assert _raw_scores(one) == pytest.approx(_raw_scores(batched), abs=1e-12, rel=0)


def test_batches_put_whole_text_embeddings_on_the_comments_of_several_clauses() -> None:
    prepared = [
        Prepared("a、b", ["a、", "b"], [["a"], ["b"]]),
        Prepared("c", ["c"], [["c"]]),
        Prepared("", [], []),
        Prepared("d、e、f", ["d、", "e、", "f"], [["d"], ["e"], ["f"]]),
    ]
    assert multi_clause_texts(prepared) == ["a、b", "d、e、f"]
    clause_emb = np.eye(6, dtype=np.float32)
    multi_emb = np.full((2, 6), 1 / np.sqrt(6), dtype=np.float32)
    comments, clauses = batches(prepared, clause_emb, multi_emb)
    assert comments.whole is not None and clauses.whole is None
    assert np.array_equal(comments.whole[[0, 3]], multi_emb)
    assert np.array_equal(comments.whole[1], clause_emb[2])  # one clause: the clause is the whole text
    assert not comments.whole[2].any()  # an empty text has no vector at all
    # the comments carry their clauses (the same batch the clause results come from) for the theme head
    assert comments.clauses is clauses and comments.clause_owner is not None
    assert comments.clause_owner.tolist() == [0, 0, 1, 3, 3, 3]
    assert batches(prepared, clause_emb, None)[0].whole is None  # sentences for the sentiment head
    with pytest.raises(ValueError, match="2 texts of several clauses"):
        batches(prepared, clause_emb, multi_emb[:1])


def test_the_classify_stage_encodes_a_comment_of_several_clauses_whole(bundle, monkeypatch) -> None:
    text = "注文した商品の配送が遅かったです。サポートの対応も悪かったです。"
    prepared = prepare(text, bundle.tokenizer)
    assert len(prepared.clauses) > 1
    seen: list[str] = []
    encode = bundle.encoder.encode
    monkeypatch.setattr(bundle.encoder, "encode", lambda texts: seen.extend(texts) or encode(texts))
    result = classify_texts([text, "ありがとう"], bundle)[0]
    assert seen.count(prepared.text) == 1 and set(prepared.clauses) <= set(seen) and "ありがとう" in seen
    assert bundle.themes.whole_text and "delivery" in result.theme_ids()
    # a theme head that reads the clause mean only (saved before the whole-text view) costs no second pass
    ids = bundle.themes.theme_ids_
    small = [
        prepare(f"{i}番目の商品について。配送が遅いです。", bundle.tokenizer) for i in range(2 * len(ids))
    ]
    vectors = encode([c for p in small for c in p.clauses])
    mean_only = ThemeClassifier(whole_text=False, knn=0, folds=2).fit(
        batches(small, vectors, None)[0],
        np.tile(np.eye(len(ids), dtype=int), (2, 1)),
        ids,
        examples={ids[0]: vectors[:2]},
    )
    monkeypatch.setattr(bundle, "themes", mean_only)
    seen.clear()
    classify_texts([text], bundle)
    assert prepared.text not in seen and set(seen) == set(prepared.clauses)
