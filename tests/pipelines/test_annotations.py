"""Adjudicated corpus labels: majority of the annotators, ties to the writer; agreement figures by hand."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipelines.errors import InputError
from pipelines.train.annotations import (
    Annotation,
    adjudicate,
    agreement,
    revision_agreement,
    writer_second_pairs,
)
from pipelines.train.corpus import corpus_digest, load_corpus

MINI = Path(__file__).parents[1] / "fixtures" / "mini_corpus"


def ann(sentiment: str, **themes: str) -> Annotation:
    return Annotation("x", sentiment, themes)


def test_two_annotators_who_differ_leave_the_writers_labels() -> None:
    writer = ann("negative", delivery="negative")
    second = ann("neutral", delivery="neutral", price="negative")
    # delivery: 2 of 2 give it, sentiments tie -> writer's; price: 1 of 2 and not the writer's -> out;
    # overall: tie -> writer's
    assert adjudicate([writer, second]) == ("negative", {"delivery": "negative"})


def test_three_annotators_decide_by_majority() -> None:
    writer = ann("negative", delivery="negative", gratitude="positive")
    second = ann("neutral", delivery="negative", price="negative")
    third = ann("neutral", price="neutral", bug="negative")
    # delivery 2/3 (both negative); gratitude 1/3 out; price 2/3 with a tie negative/neutral -> the earlier
    # annotator's (second: negative); bug 1/3 out; overall neutral 2/3
    assert adjudicate([writer, second, third]) == ("neutral", {"delivery": "negative", "price": "negative"})
    # no majority on the overall sentiment (three different) -> the writer's
    assert adjudicate([ann("negative"), ann("neutral"), ann("positive")])[0] == "negative"
    with pytest.raises(ValueError):
        adjudicate([])


def again(name: str, **themes: str) -> Annotation:
    """A re-annotation of the theme ``inconvenience`` under its revised definition."""
    return Annotation(name, "", themes, ("inconvenience",))


def test_re_annotations_replace_the_earlier_votes_on_their_theme_only() -> None:
    writer = ann("negative", inconvenience="negative", bug="negative")
    second = ann("negative", inconvenience="negative", bug="negative")
    # the full annotations give inconvenience 2/2; the re-annotators take it away 2 to 1, bug stays
    votes = [writer, second, again("r1"), again("r2", inconvenience="negative"), again("r3")]
    assert adjudicate(votes) == ("negative", {"bug": "negative"})
    # nobody gave it before: 2 of 3 re-annotators give it, with the sentiment of their majority
    plain = [ann("neutral", usability="negative"), ann("neutral", usability="negative")]
    given = [again("r1", inconvenience="negative"), again("r2", inconvenience="neutral"), again("r3")]
    assert adjudicate(plain + given) == ("neutral", {"usability": "negative", "inconvenience": "negative"})
    # a tie among re-annotators keeps the earlier decision either way
    tie = [again("r1", inconvenience="negative"), again("r2")]
    assert adjudicate([writer, second, *tie])[1] == {"inconvenience": "negative", "bug": "negative"}
    assert adjudicate([*plain, *tie])[1] == {"usability": "negative"}
    # the overall sentiment comes from the full annotations; re-annotations alone are not a labelling
    with pytest.raises(ValueError):
        adjudicate(given)


def test_revision_agreement_by_hand() -> None:
    a, b = ann("negative", inconvenience="negative"), ann("negative", inconvenience="negative")
    c = ann("neutral")
    labellings = [
        [a, b, again("r1"), again("r2"), again("r3", inconvenience="negative")],  # lost
        [a, b, again("r1", inconvenience="negative"), again("r2", inconvenience="negative"), again("r3")],
        [c, a, again("r1", inconvenience="negative"), again("r2", inconvenience="negative"), again("r3")],
        [c, a, again("r1"), again("r2"), again("r3")],  # unanimous, stays out
        [c, c],  # not re-annotated
    ]
    r = revision_agreement(labellings, "inconvenience")
    assert (r["n"], r["unanimous"], r["gained"], r["lost"]) == (4, 1, 1, 1)
    # r1 and r2 agree on all four (yes on two, no on two) -> kappa 1; r1 (0110) vs r3 (1000): observed 1/4,
    # shares 1/2 and 1/4 -> chance 1/2*1/4 + 1/2*3/4 = 1/2 -> kappa (1/4 - 1/2) / (1 - 1/2) = -0.5
    assert r["kappa"]["r1 / r2"] == pytest.approx(1.0)
    assert r["kappa"]["r1 / r3"] == pytest.approx(-0.5)
    # the writer / second pairs skip the re-annotations
    assert writer_second_pairs(labellings) == [(a, b), (a, b), (c, a), (c, a), (c, c)]


def test_agreement_by_hand() -> None:
    ids = ["a", "b"]
    pairs = [
        (ann("positive", a="positive"), ann("positive", a="positive")),
        (ann("negative", a="negative", b="negative"), ann("negative", b="negative")),
        (ann("neutral"), ann("negative", b="negative")),
        (ann("neutral"), ann("neutral")),
    ]
    r = agreement(pairs, ids)
    # theme a: first gives it on items 1,2, second on item 1 -> tp1 fn1 -> F1 2/3; kappa: observed 3/4,
    # shares 1/2 and 1/4 -> chance 1/2*1/4 + 1/2*3/4 = 1/2 -> 0.5
    # theme b: first on item 2, second on 2,3 -> tp1 fp1 -> F1 2/3; micro tp2 fp1 fn1 -> 2/3
    assert r["n"] == 4
    assert r["themes"]["micro_f1"] == pytest.approx(2 / 3)
    assert r["themes"]["per_label"]["a"]["kappa"] == pytest.approx(0.5)
    assert r["themes"]["per_label"]["b"]["f1"] == pytest.approx(2 / 3)
    # sentiment: 3 of 4 agree; negative F1 2/3 (tp1 fp1), neutral 2/3 (tp1 fn1), positive 1
    assert r["sentiment_macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)


def _mini_with(tmp_path: Path, name: str, lines: list[str]) -> Path:
    root = tmp_path / "corpus"
    shutil.copytree(MINI, root)
    (root / "annotations").mkdir()
    (root / "annotations" / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_load_corpus_adjudicates_with_the_annotation_files(tmp_path: Path) -> None:
    plain = load_corpus(MINI)
    first = plain[0]
    assert [a.annotator for a in first.annotations] == ["writer"]
    other = "positive" if first.sentiment != "positive" else "negative"
    line = f'{{"id": "{first.id}", "sentiment": "{other}", "themes": {{"churn_intent": "negative"}}}}'
    root = _mini_with(tmp_path, "1-second.jsonl", [line])
    items = {it.id: it for it in load_corpus(root)}
    got = items[first.id]
    assert [a.annotator for a in got.annotations] == ["writer", "second"]
    # two annotators who differ: the writer's labels stand, the second's are kept beside them
    assert got.sentiment == first.sentiment and got.themes == first.themes
    assert got.annotations[1].themes == {"churn_intent": "negative"}
    assert corpus_digest(list(items.values())) == corpus_digest(plain)  # same labels after adjudication
    third = f'{{"id": "{first.id}", "sentiment": "{other}", "themes": {{"churn_intent": "neutral"}}}}'
    (root / "annotations" / "2-third.jsonl").write_text(third + "\n", encoding="utf-8")
    outvoted = load_corpus(root)
    assert {it.id: it for it in outvoted}[first.id].themes == {"churn_intent": "negative"}
    assert corpus_digest(outvoted) != corpus_digest(plain)  # heads record which labels they learnt


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"1-second.jsonl:1"),
        ('{"id": "ZZZ-0001", "sentiment": "positive", "themes": {}}', r"unknown comment ZZZ-0001"),
        ('{"id": "ID", "sentiment": "happy", "themes": {}}', r"1-second.jsonl:1.*unknown sentiment"),
        ('{"id": "ID", "sentiment": "positive", "themes": {"weather": "positive"}}', r"weather"),
        ('{"id": "ID", "scope": [], "themes": {}}', r"1-second.jsonl:1.*scope"),
        ('{"id": "ID", "scope": ["weather"], "themes": {}}', r"weather"),
        ('{"id": "ID", "scope": ["bug"], "themes": {"price": "negative"}}', r"price.*outside"),
        ('{"id": "ID", "scope": ["bug"], "themes": {"bug": "angry"}}', r"unknown sentiment"),
    ],
)
def test_bad_annotation_lines_name_the_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    first_id = load_corpus(MINI)[0].id
    root = _mini_with(tmp_path, "1-second.jsonl", [line.replace('"ID"', f'"{first_id}"')])
    with pytest.raises(InputError, match=message):
        load_corpus(root)


def test_twice_annotated_comment_is_an_error(tmp_path: Path) -> None:
    first_id = load_corpus(MINI)[0].id
    line = f'{{"id": "{first_id}", "sentiment": "positive", "themes": {{}}}}'
    root = _mini_with(tmp_path, "1-second.jsonl", [line, line])
    with pytest.raises(InputError, match=r"1-second.jsonl:2.*twice"):
        load_corpus(root)


def test_shipped_corpus_adds_annotators_where_the_earlier_ones_disagree() -> None:
    """A second vote everywhere; a third where two differ on the sentiment or on any theme; a fourth and a fifth
    where three split on whether a theme applies. Which comments got more votes depends on the votes only."""
    items = load_corpus()
    for it in items:
        full = [a for a in it.annotations if not a.scope]
        writer, second = full[:2]
        differ = writer.sentiment != second.sentiment or set(writer.themes) != set(second.themes)
        first3 = full[:3]
        split = differ and any(
            0 < sum(t in a.themes for a in first3) < 3 for t in {t for a in first3 for t in a.themes}
        )
        assert len(full) == (5 if split else 3 if differ else 2), it.id
        assert [a.annotator for a in full] == ["writer", "second", "third", "fourth", "fifth"][: len(full)]
        # 不便, then 信頼 and がっかり, then スタッフ and 品質 were judged again, under their revised definitions, on
        # every comment, by three annotators each
        again = [(a.annotator, a.scope) for a in it.annotations if a.scope]
        assert again == [
            *((f"inconvenience-{k}", ("inconvenience",)) for k in (1, 2, 3)),
            *((f"trust-disappointment-{k}", ("trust", "disappointment")) for k in (1, 2, 3)),
            *((f"staff-quality-{k}", ("support_staff", "product_quality")) for k in (1, 2, 3)),
        ], it.id


TWO_CLAUSES = {
    "id": "ec-9001",
    "industry": "ec",
    "kind": "survey",
    "channel": "survey",
    "score": 6,
    "sentences": [{"text": "料金は高いけど、サポートの方はとても親切でした。", "sentiment": "positive"}],
    "sentiment": "positive",
    "themes": {"price": "negative", "support_staff": "positive"},
}


def _mini_with_clauses(tmp_path: Path, files: dict[str, list[dict[str, object]]]) -> Path:
    root = tmp_path / "corpus"
    shutil.copytree(MINI, root)
    (root / "part-two.jsonl").write_text(json.dumps(TWO_CLAUSES, ensure_ascii=False) + "\n", encoding="utf-8")
    (root / "clauses").mkdir()
    for name, lines in files.items():
        text = "\n".join(json.dumps(d, ensure_ascii=False) for d in lines) + "\n"
        (root / "clauses" / name).write_text(text, encoding="utf-8")
    return root


def _two_clause_sentence() -> tuple[str, list[str]]:
    from models.tokenizer import get_tokenizer
    from pipelines.classify import prepare

    parts = prepare(str(TWO_CLAUSES["sentences"][0]["text"]), get_tokenizer()).clauses  # type: ignore[index]
    assert len(parts) == 2
    return "ec-9001#0", parts


def test_clause_labels_take_the_majority_and_leave_out_a_tie(tmp_path: Path) -> None:
    key, (first, second) = _two_clause_sentence()
    votes = {
        "1-a.jsonl": [{"key": key, "clauses": [[first, "negative"], [second, "positive"]]}],
        "2-b.jsonl": [{"key": key, "clauses": [[first, "negative"], [second, "neutral"]]}],
    }
    items = {it.id: it for it in load_corpus(_mini_with_clauses(tmp_path, votes))}
    # first clause: 2 of 2 negative; second: a tie, so no label
    assert items[key.split("#")[0]].clauses == [(first, "negative")]


def test_clause_labels_must_make_up_their_sentence(tmp_path: Path) -> None:
    key, (first, _) = _two_clause_sentence()
    root = _mini_with_clauses(tmp_path, {"1-a.jsonl": [{"key": key, "clauses": [[first, "negative"]]}]})
    with pytest.raises(InputError, match="do not make up its sentence"):
        load_corpus(root)
    other = {"1-a.jsonl": [{"key": key, "clauses": [[first, "negative"], ["別の文", "neutral"]]}]}
    other["2-b.jsonl"] = [{"key": key, "clauses": [[first, "negative"], ["違う文", "neutral"]]}]
    with pytest.raises(InputError, match=r"2-b.jsonl:1.*differ"):
        load_corpus(_mini_with_clauses(tmp_path / "x", other))
    bad = {"1-a.jsonl": [{"key": key, "clauses": [[first, "sad"]]}]}
    with pytest.raises(InputError, match=r"1-a.jsonl:1.*unknown sentiment"):
        load_corpus(_mini_with_clauses(tmp_path / "y", bad))


def test_shipped_clause_labels_cover_every_multi_clause_sentence() -> None:
    """Two votes on every clause of every multi-clause sentence, a third where the two differ."""
    from pipelines.train.annotations import read_clause_votes
    from pipelines.train.corpus import CORPUS_DIR

    votes = read_clause_votes(CORPUS_DIR / "clauses")
    assert len(votes) >= 900
    for key, v in votes.items():
        differ = [a for a, _ in v[0]] and [lab for _, lab in v[0]] != [lab for _, lab in v[1]]
        assert len(v) == (3 if differ else 2), key
