"""The short-sentence set: labels by majority (writer first), splits by id hash, errors naming file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.errors import InputError
from pipelines.train.short_sentences import load_short_sentences, short_agreement, short_digest


def write(path: Path, rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def sentence(i: int, text: str, sentiment: str) -> dict[str, str]:
    return {"id": f"short-1-{i:04d}", "industry": "hotel", "text": text, "sentiment": sentiment}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write(
        tmp_path / "part-1.jsonl",
        [
            sentence(1, "部屋が広いです。", "positive"),
            sentence(2, "大変素晴らしかったです。", "positive"),
            sentence(3, "2回目の利用です。", "positive"),
            sentence(4, "朝まで眠れなかった。", "negative"),
        ],
    )
    votes = {1: "positive", 2: "negative", 3: "neutral", 4: "negative"}
    write(
        tmp_path / "annotations" / "1-second.jsonl",
        [{"id": f"short-1-{k:04d}", "sentiment": v} for k, v in votes.items()],
    )
    # a third annotator only where the two differ (2 and 3)
    write(
        tmp_path / "annotations" / "2-third.jsonl",
        [{"id": "short-1-0002", "sentiment": "positive"}, {"id": "short-1-0003", "sentiment": "neutral"}],
    )
    return tmp_path


def test_labels_are_the_majority_of_the_votes(folder: Path) -> None:
    items = {it.id: it for it in load_short_sentences(folder)}
    # 1: positive 2/2; 2: positive 2/3 (writer and third); 3: neutral 2/3 outvotes the writer; 4: negative 2/2
    assert {k: it.sentiment for k, it in items.items()} == {
        "short-1-0001": "positive",
        "short-1-0002": "positive",
        "short-1-0003": "neutral",
        "short-1-0004": "negative",
    }
    assert items["short-1-0003"].votes == ["positive", "neutral", "neutral"]
    assert all(it.split in {"train", "validation", "test"} for it in items.values())
    # writer vs second: 2 of 4 agree; observed 0.5, expected (3/4*1/4 [pos] + 1/4*2/4 [neg] + 0*1/4 [neu]) = 5/16
    # -> kappa (0.5 - 5/16) / (1 - 5/16) = 3/11
    agreement = short_agreement(list(items.values()))
    assert agreement == {
        "n": 4,
        "second": 4,
        "agree": 2,
        "kappa": pytest.approx(3 / 11),
        "third": 2,
        "changed": 1,
    }


def test_a_tie_keeps_the_writers_label_and_splits_are_stable(folder: Path) -> None:
    (folder / "annotations" / "2-third.jsonl").unlink()
    items = {it.id: it for it in load_short_sentences(folder)}
    assert items["short-1-0002"].sentiment == "positive"  # writer positive, second negative: the writer's
    assert items["short-1-0003"].sentiment == "positive"
    again = {it.id: it.split for it in load_short_sentences(folder)}
    assert again == {k: it.split for k, it in items.items()}


def test_the_digest_follows_the_labels(folder: Path) -> None:
    before = short_digest(load_short_sentences(folder))
    write(folder / "annotations" / "3-fourth.jsonl", [{"id": "short-1-0001", "sentiment": "negative"}])
    write(folder / "annotations" / "4-fifth.jsonl", [{"id": "short-1-0001", "sentiment": "negative"}])
    items = {it.id: it for it in load_short_sentences(folder)}
    assert items["short-1-0001"].votes == ["positive", "positive", "negative", "negative"]
    assert items["short-1-0001"].sentiment == "positive"  # a 2-2 tie: the writer's, so nothing learnt changes
    assert short_digest(list(items.values())) == before
    write(folder / "annotations" / "5-sixth.jsonl", [{"id": "short-1-0001", "sentiment": "negative"}])
    items = {it.id: it for it in load_short_sentences(folder)}
    assert items["short-1-0001"].sentiment == "negative"  # 3 of 5
    assert short_digest(list(items.values())) != before


@pytest.mark.parametrize(
    ("file", "line", "message"),
    [
        ("part-1.jsonl", "{not json", "part-1.jsonl:2"),
        (
            "part-1.jsonl",
            json.dumps({"id": "short-1-0009", "industry": "hotel", "text": "良い"}),
            "part-1.jsonl:2",
        ),
        ("part-1.jsonl", json.dumps(sentence(9, "良い", "great")), "unknown sentiment label"),
        (
            "part-1.jsonl",
            json.dumps({**sentence(9, "良い", "positive"), "industry": "zoo"}),
            "unknown industry",
        ),
        ("part-1.jsonl", json.dumps(sentence(9, " ", "positive")), "empty sentence text"),
        ("part-1.jsonl", json.dumps(sentence(1, "二度目", "positive")), "written twice"),
        (
            "annotations/1-second.jsonl",
            json.dumps({"id": "short-9-0001", "sentiment": "neutral"}),
            "unknown sentence",
        ),
        (
            "annotations/1-second.jsonl",
            json.dumps({"id": "short-1-0001", "sentiment": "neutral"}),
            "voted on twice",
        ),
        (
            "annotations/1-second.jsonl",
            json.dumps({"id": "short-1-0002", "sentiment": "meh"}),
            "1-second.jsonl:2",
        ),
    ],
)
def test_bad_records_name_file_and_line(tmp_path: Path, file: str, line: str, message: str) -> None:
    write(tmp_path / "part-1.jsonl", [sentence(1, "部屋が広いです。", "positive")])
    write(tmp_path / "annotations" / "1-second.jsonl", [{"id": "short-1-0001", "sentiment": "positive"}])
    path = tmp_path / file
    path.write_text(path.read_text(encoding="utf-8") + line + "\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_short_sentences(tmp_path)
    assert message in str(err.value)


def test_no_folder_means_no_sentences(tmp_path: Path) -> None:
    assert load_short_sentences(tmp_path / "absent") == []


def test_the_shipped_set_is_annotated_twice_and_fills_every_split() -> None:
    from pipelines.train.datasheet import read_splits
    from pipelines.train.short_sentences import SHORT_DIR

    items = load_short_sentences()
    # the committed manifest: adding sentences must not silently move existing ones to another split
    assert {it.id: it.split for it in items} == read_splits(SHORT_DIR / "splits.tsv")
    assert len(items) >= 1500
    assert all(len(it.votes) >= 2 for it in items)
    assert {it.split for it in items} == {"train", "validation", "test"}
    assert {it.sentiment for it in items} == {"positive", "neutral", "negative"}
