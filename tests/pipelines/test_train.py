"""Training pipeline end to end on a tiny hand-written corpus with the real embedded encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.bundle import load_bundle
from models.encoders.onnx_encoder import GRAPH_VERSION
from pipelines.classify import classify_texts
from pipelines.train.corpus import load_corpus, near_duplicate_pairs
from pipelines.train.train_models import train_models

MINI = Path(__file__).parents[1] / "fixtures" / "mini_corpus"


def test_splits_are_fixed_and_near_duplicates_share_a_split() -> None:
    items = load_corpus(MINI)
    again = load_corpus(MINI)
    assert [(i.id, i.split) for i in items] == [(i.id, i.split) for i in again]
    assert {i.split for i in items} == {"train", "validation", "test"}
    pairs = near_duplicate_pairs(
        ["配送が遅くて困りました。", "配送が遅くて困りました!", "スタッフが親切でした"]
    )
    assert pairs == [(0, 1)]


def test_corpus_errors_name_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"id": "x-1", "sentences": []}\n', encoding="utf-8")
    with pytest.raises(Exception, match=r"bad.jsonl:1"):
        load_corpus(tmp_path)


@pytest.mark.slow
def test_train_then_classify(tmp_path: Path) -> None:
    result = train_models(
        tmp_path / "artifacts",
        corpus_dir=MINI,
        use_chabsa=False,
        cache_dir=tmp_path / "cache",
        progress=False,
    )
    assert set(result["metrics"]) >= {"sentence_sentiment_test", "themes_test", "sentence_ece_test"}
    meta = json.loads((tmp_path / "artifacts" / "themes" / "meta.json").read_text(encoding="utf-8"))
    assert (
        meta["encoder"].startswith(f"onnx-int8-per-token-g{GRAPH_VERSION}:e5-small-tuned@")
        and meta["corpus_digest"]
    )
    # the sentiment head kept is the best of the C x class-weighting grid on validation
    sentiment_dir = tmp_path / "artifacts" / "sentiment"
    grid = json.loads((sentiment_dir / "meta.json").read_text(encoding="utf-8"))[
        "validation_macro_f1_by_setting"
    ]
    config = json.loads((sentiment_dir / "config.json").read_text(encoding="utf-8"))
    assert len(grid) == 6 and grid[f"C={config['C']:g} {config['class_weight'] or 'unweighted'}"] == max(
        grid.values()
    )
    bundle = load_bundle(tmp_path / "artifacts")
    texts = ["配送が遅すぎて困りました", "", "スタッフの方がとても親切でした。ありがとうございました！"]
    out = classify_texts(texts, bundle)
    assert [r.text for r in out] == [
        "配送が遅すぎて困りました",
        "",
        "スタッフの方がとても親切でした。ありがとうございました!",
    ]
    assert out[1].sentiment == "neutral" and out[1].themes == []
    assert out[0].sentiment == "negative"
    assert out[2].sentiment == "positive"
    for r in out:
        assert abs(sum(r.scores.values()) - 1.0) < 1e-4


@pytest.mark.slow
def test_training_is_deterministic(tmp_path: Path) -> None:
    import numpy as np

    for name in ("a", "b"):
        train_models(
            tmp_path / name, corpus_dir=MINI, use_chabsa=False, cache_dir=tmp_path / "cache", progress=False
        )
    for head in ("sentiment", "themes"):
        with (
            np.load(tmp_path / "a" / head / "weights.npz") as a,
            np.load(tmp_path / "b" / head / "weights.npz") as b,
        ):
            assert a.files == b.files
            for key in a.files:
                assert np.array_equal(a[key], b[key]), (head, key)
        config_a = (tmp_path / "a" / head / "config.json").read_text(encoding="utf-8")
        assert config_a == (tmp_path / "b" / head / "config.json").read_text(encoding="utf-8")


def test_shipped_corpus_reproduces_the_committed_splits() -> None:
    """Adding comments must never move existing ones between splits (regenerate with --write on purpose)."""
    from pipelines.train.datasheet import read_splits

    items = load_corpus()
    assert {it.id: it.split for it in items} == read_splits()
    assert len(items) >= 4000
    assert len({it.industry for it in items}) >= 10


SHORT = [
    ("部屋が広くて快適でした。", "positive"),
    ("部屋が狭くて窮屈でした。", "negative"),
    ("大変素晴らしかったです。", "positive"),
    ("大変不愉快でした。", "negative"),
    ("出張で一泊しました。", "neutral"),
    ("ぐっすり眠れました。", "positive"),
    ("一睡もできなかった。", "negative"),
    ("駅から徒歩5分です。", "neutral"),
    ("さすがです！", "positive"),
    ("期待外れでした。", "negative"),
    ("2回目の利用です。", "neutral"),
    ("言うことなしです。", "positive"),
    ("二度と行きません。", "negative"),
    ("チェックインは15時です。", "neutral"),
    ("疲れが取れました。", "positive"),
    ("値段が高すぎます。", "negative"),
    ("普通です。", "neutral"),
    ("また来ます！", "positive"),
    ("散々でした。", "negative"),
    ("朝食は7時からですか？", "neutral"),
]


@pytest.mark.slow
def test_the_sentiment_head_learns_the_short_sentences_of_its_corpus(tmp_path: Path) -> None:
    import shutil

    from pipelines.train.short_sentences import load_short_sentences

    corpus = tmp_path / "corpus"
    shutil.copytree(MINI, corpus)
    (corpus / "short").mkdir()
    (corpus / "short" / "part-1.jsonl").write_text(
        "".join(
            json.dumps(
                {"id": f"short-1-{k:04d}", "industry": "hotel", "text": t, "sentiment": s}, ensure_ascii=False
            )
            + "\n"
            for k, (t, s) in enumerate(SHORT, start=1)
        ),
        encoding="utf-8",
    )
    short = load_short_sentences(corpus / "short")
    by_split = {s: sum(it.split == s for it in short) for s in {it.split for it in short}}
    result = train_models(
        tmp_path / "artifacts",
        corpus_dir=corpus,
        use_chabsa=False,
        cache_dir=tmp_path / "cache",
        progress=False,
    )
    meta = json.loads((tmp_path / "artifacts" / "sentiment" / "meta.json").read_text(encoding="utf-8"))
    assert meta["short_sentences"] == by_split and sum(by_split.values()) == len(SHORT)
    assert meta["short_sentences_digest"]
    assert ("short_sentence_sentiment_test" in result["metrics"]) == ("test" in by_split)


def test_the_shipped_heads_learnt_the_current_labels() -> None:
    """Changing a label, or a short sentence, without running `koe train` again leaves heads that learnt other
    labels than the ones the docs and the benchmarks read."""
    from models.bundle import ARTIFACTS_DIR
    from pipelines.train.corpus import corpus_digest
    from pipelines.train.short_sentences import load_short_sentences, short_digest

    digest = corpus_digest(load_corpus())
    for head in ("sentiment", "themes"):
        meta = json.loads((ARTIFACTS_DIR / head / "meta.json").read_text(encoding="utf-8"))
        assert meta["corpus_digest"] == digest, head
    meta = json.loads((ARTIFACTS_DIR / "sentiment" / "meta.json").read_text(encoding="utf-8"))
    assert meta["short_sentences_digest"] == short_digest(load_short_sentences())
