"""Theme summaries: cells, quotes with ids, citation checks, the extractive fallback, determinism."""

from __future__ import annotations

from typing import Any

import pytest

from models.tokenizer import get_tokenizer
from pipelines.discovery import lemmatizer
from pipelines.records import AnalyzedRow, TextResult, ThemeHit
from pipelines.summaries import build_summaries, citation_problems, summary_cells, summary_schema

SLOW = [
    "電話が全然つながらず三十分以上も待たされました。",
    "メールの返信が一週間も来なくて困りました。",
    "返金処理がいつまで経っても終わらないままです。",
    "問い合わせの回答が遅く、結局自分で調べて解決しました。",
    "チャットで質問しても担当者につながるまで時間がかかりすぎる。",
    "折り返しの電話を待っていたのに連絡が来なかった。",
]
KIND = [
    "スタッフの方がとても親切で、丁寧に説明してくれました。",
    "担当者の対応が丁寧で安心できました。",
    "窓口の方が親身になって話を聞いてくれた。",
    "説明が分かりやすく、質問にもすぐ答えてもらえた。",
    "電話の方の言葉遣いが丁寧で気持ちよかったです。",
]
TAXONOMY = [
    {"id": "slow_response", "name": "対応が遅い"},
    {"id": "support_staff", "name": "スタッフ対応"},
    {"id": "price", "name": "価格・料金"},
]


def _rows() -> tuple[list[AnalyzedRow], list[str | None]]:
    rows, groups = [], []
    for i, text in enumerate(SLOW):
        hit = ThemeHit("slow_response", "対応が遅い", 0.9 - i / 100, "negative")
        rows.append(
            AnalyzedRow(
                i + 2,
                2,
                None,
                {"プラン": "ライト" if i % 2 else "ベーシック"},
                {"理由": TextResult(text, "negative", {"negative": 0.9}, [hit])},
            )
        )
        groups.append("detractors")
    for i, text in enumerate(KIND):
        hit = ThemeHit("support_staff", "スタッフ対応", 0.8, "positive")
        rows.append(
            AnalyzedRow(
                i + 20,
                10,
                None,
                {"プラン": "ライト"},
                {"理由": TextResult(text, "positive", {"positive": 0.9}, [hit])},
            )
        )
        groups.append("promoters")
    rows.append(AnalyzedRow(40, None, None, {}, {}))  # no answer, no score
    groups.append(None)
    return rows, groups


@pytest.fixture(scope="module")
def lemmas() -> Any:
    return lemmatizer(get_tokenizer())


def test_cells_per_theme_and_group_above_the_minimum() -> None:
    rows, groups = _rows()
    cells = summary_cells(rows, TAXONOMY, groups, min_mentions=5)
    assert [(c.theme, c.group, c.n) for c in cells] == [
        ("slow_response", "all", 6),
        ("slow_response", "detractors", 6),
        ("support_staff", "all", 5),
        ("support_staff", "promoters", 5),
    ]
    assert [(c.group, c.n) for c in summary_cells(rows, TAXONOMY, None, min_mentions=5)] == [
        ("all", 6),
        ("all", 5),
    ]
    narrowed = summary_cells(rows, TAXONOMY, groups, theme="slow_response", segment=("プラン", "ライト"))
    assert [(c.group, c.n) for c in narrowed] == [
        ("all", 3),
        ("detractors", 3),
    ]  # a theme asked for: any n > 0
    assert summary_cells(rows, TAXONOMY, groups, group="passives") == []


def test_extractive_summary_cites_its_own_quotes(lemmas: Any) -> None:
    rows, groups = _rows()
    items = build_summaries(rows, TAXONOMY, groups, lemmatize=lemmas, group="all")
    slow, staff = items
    assert slow["method"] == "extractive" and slow["fallback"] == "no_llm" and slow["model"] is None
    assert [q["id"] for q in slow["quotes"]] == [f"q{k}" for k in range(1, 7)]
    assert slow["quotes"][0]["row"] == 2  # the most relevant (highest theme score) first, without embeddings
    assert slow["sentences"] == [
        {"text": slow["quotes"][0]["text"], "quote_ids": ["q1"]},
        {"text": slow["quotes"][1]["text"], "quote_ids": ["q2"]},
    ]
    assert "電話" in slow["keywords"] and "丁寧" in staff["keywords"]
    assert build_summaries(rows, TAXONOMY, groups, lemmatize=lemmas, group="all") == items  # deterministic


class FakeAssistant:
    """Answers from a list, running the stage's check the way the real client does (None when it fails)."""

    model = "fake-llm"

    def __init__(self, answers: list[dict[str, Any]]) -> None:
        self.answers = list(answers)
        self.seen: list[dict[str, Any]] = []

    def ask(self, task: str, payload: dict[str, Any], schema: dict[str, Any], check: Any = None) -> Any:
        self.seen.append({"task": task, "payload": payload, "schema": schema})
        answer = self.answers.pop(0)
        return None if check and check(answer) else answer


def test_llm_summary_is_kept_when_every_sentence_cites_known_quotes(lemmas: Any) -> None:
    rows, groups = _rows()
    answer = {
        "sentences": [
            {"text": "電話やメールの返信が遅い。", "quote_ids": ["q4", "q1", "q4"]},
            {"text": "返金の遅れにも不満がある。", "quote_ids": ["q2"]},
        ]
    }
    assistant = FakeAssistant([answer])
    [item] = build_summaries(
        rows,
        TAXONOMY,
        groups,
        lemmatize=lemmas,
        assistant=assistant,
        theme="slow_response",
        group="detractors",
    )
    assert item["method"] == "llm" and item["model"] == "fake-llm"
    assert item["sentences"][0]["quote_ids"] == ["q1", "q4"]  # de-duplicated, in quote order
    sent = assistant.seen[0]
    assert sent["task"] == "summarize" and sent["payload"]["group_label"] == "批判者"
    assert [q["id"] for q in sent["payload"]["quotes"]] == [q["id"] for q in item["quotes"]]
    enum = sent["schema"]["properties"]["sentences"]["items"]["properties"]["quote_ids"]["items"]["enum"]
    assert enum == [q["id"] for q in item["quotes"]]


@pytest.mark.parametrize(
    "answer",
    [
        {"sentences": [{"text": "返信が遅い。", "quote_ids": ["q1", "q42"]}]},  # an id that does not exist
        {"sentences": [{"text": "返信が遅い。", "quote_ids": []}]},  # cites nothing
        {"sentences": []},
    ],
)
def test_ungrounded_summaries_are_rejected(lemmas: Any, answer: dict[str, Any]) -> None:
    rows, groups = _rows()
    [item] = build_summaries(
        rows,
        TAXONOMY,
        groups,
        lemmatize=lemmas,
        assistant=FakeAssistant([answer]),
        theme="slow_response",
        group="all",
    )
    assert item["method"] == "extractive" and item["fallback"] == "llm_failed"


def test_a_sentence_must_share_a_word_with_the_quotes_it_cites() -> None:
    texts = {"q1": "電話が全然つながらない。", "q2": "返金が遅い。"}
    ok = {"sentences": [{"text": "電話がつながりにくい。", "quote_ids": ["q1"]}]}
    assert citation_problems(ok, ["q1", "q2"], texts) == []
    off = {"sentences": [{"text": "電話がつながりにくい。", "quote_ids": ["q2"]}]}  # cites the wrong quote
    [problem] = citation_problems(off, ["q1", "q2"], texts)
    assert "shares no word with the quotes it cites (q2)" in problem


def test_citation_problems_and_schema() -> None:
    ids = ["q1", "q2", "q3"]
    ok = {"sentences": [{"text": "a", "quote_ids": ["q1"]}, {"text": "b", "quote_ids": ["q2", "q3"]}]}
    assert citation_problems(ok, ids) == []
    bad = {"sentences": [{"text": " ", "quote_ids": ["q1"]}, {"text": "b", "quote_ids": ["x"]}, "c"]}
    assert citation_problems(bad, ids) == [
        "sentence 1 is empty",
        "sentence 2 cites quote ids that do not exist: x (the quotes are q1, q2, q3)",
        "sentence 3 is not an object",
    ]
    schema = summary_schema(ids, max_sentences=2)
    assert schema["properties"]["sentences"]["maxItems"] == 2 and schema["additionalProperties"] is False


def test_a_cell_with_one_quote_is_not_sent_to_the_llm(lemmas: Any) -> None:
    rows, groups = _rows()
    one = [rows[0]]
    assistant = FakeAssistant([])
    [item] = build_summaries(
        one, TAXONOMY, groups[:1], lemmatize=lemmas, assistant=assistant, theme="slow_response", group="all"
    )
    assert item["fallback"] == "too_few_quotes" and assistant.seen == []
