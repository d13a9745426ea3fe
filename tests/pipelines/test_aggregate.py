import json
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from pipelines.aggregate import build_summary, split_segment
from pipelines.nps import nps_summary
from pipelines.records import AnalyzedRow, ColumnMapping, IngestInfo, TextResult, ThemeHit

TAXONOMY = [
    {"id": "gratitude", "name": "感謝", "name_en": "Gratitude", "polarity": "positive_signal"},
    {"id": "slow_response", "name": "対応が遅い", "name_en": "Slow response", "polarity": "negative_signal"},
    {"id": "price", "name": "価格・料金", "name_en": "Price", "polarity": "topic"},
]
MAPPING = ColumnMapping("推奨度", ["理由", "改善点"], "回答ID", "回答日時", ["プラン"])
INFO = IngestInfo(
    "survey.csv",
    "csv",
    "cp932",
    1,
    ["回答ID", "推奨度", "理由", "改善点", "回答日時", "プラン"],
    MAPPING,
    "survey",
    "nps",
)
NOW = datetime(2026, 11, 23, 10, 0)
SLOW = "電話が全然つながらず三十分以上も待たされました。"
THANKS = "丁寧に対応していただき本当にありがとうございました。"
PRICE = "月額料金が高すぎると思います、見直してほしいです。"

# (score, day of November 2026, plan, answers as {question: (text, sentiment, [(theme, theme sentiment)])})
DATA: list[tuple[int | None, int, str, dict[str, tuple[str, str, list[tuple[str, str]]]]]] = [
    (10, 10, "A", {"理由": (THANKS, "positive", [("gratitude", "positive")])}),
    (9, 11, "A", {"理由": (THANKS + "助かりました。", "positive", [("gratitude", "positive")])}),
    (
        2,
        12,
        "B",
        {
            "理由": (SLOW, "negative", [("slow_response", "negative")]),
            "改善点": (PRICE, "negative", [("price", "negative")]),
        },
    ),
    (8, 13, "B", {}),
    (6, 16, "B", {"理由": (SLOW + "困ります。", "negative", [("slow_response", "negative")])}),
    (
        3,
        17,
        "A",
        {"理由": ("返信が遅すぎて途中で諦めてしまいました。", "negative", [("slow_response", "negative")])},
    ),
    (
        10,
        18,
        "",
        {
            "理由": (
                "すぐに返信が来て、対応も早かったです。",
                "positive",
                [("slow_response", "positive"), ("gratitude", "positive")],
            )
        },
    ),
    (None, 19, "A", {"理由": (PRICE + "本当に。", "negative", [("price", "negative")])}),
    (
        7,
        20,
        "B",
        {"改善点": ("料金プランをもう少し分かりやすくしてほしい。", "neutral", [("price", "neutral")])},
    ),
    (
        0,
        21,
        "B",
        {
            "理由": (
                "何度問い合わせても返事がなく、本当に遅いです。",
                "negative",
                [("slow_response", "negative")],
            )
        },
    ),
]


def _rows(data: list[Any] = DATA, dated: bool = True) -> list[AnalyzedRow]:
    rows = []
    for i, (score, day, plan, answers) in enumerate(data):
        results = {
            q: TextResult(text, sent, {sent: 0.8}, [ThemeHit(t, t, 0.9, ts) for t, ts in hits])
            for q, (text, sent, hits) in answers.items()
        }
        when = datetime(2026, 11, day, 12, 0) if dated else None
        rows.append(AnalyzedRow(i + 2, score, when, {"プラン": plan}, results, has_error=score is None))
    return rows


def _build(rows: list[AnalyzedRow], info: IngestInfo = INFO, **kwargs: Any) -> dict[str, Any]:
    return build_summary(
        rows, info, TAXONOMY, model_info={"encoder": "fake"}, generated_at=NOW, bootstrap=200, **kwargs
    )


def _assert_plain_json(value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str)
            _assert_plain_json(item)
    elif isinstance(value, list):
        for item in value:
            _assert_plain_json(item)
    else:
        assert value is None or type(value) in (str, int, float, bool), type(value)


SCHEMA_KEYS = {
    "schema_version", "generated_at", "input", "model", "nps", "metric", "score_distribution", "segments",
    "periods", "change", "questions", "themes", "drivers", "drivers_method", "quotes", "promoter_quotes",
    "signals", "notes",
}  # fmt: skip


def test_survey_summary_shape_and_numbers() -> None:
    summary = _build(_rows())
    assert set(summary) == SCHEMA_KEYS  # "issues" is added by the runner
    json.dumps(summary, ensure_ascii=False, allow_nan=False)
    _assert_plain_json(summary)
    assert summary["input"]["rows"] == 10 and summary["input"]["rows_with_issues"] == 1
    assert summary["generated_at"] == "2026-11-23T10:00:00"
    # scores: 10 9 2 8 6 3 10 7 0 (one unscored) -> promoters 3, passives 2, detractors 4 -> NPS −11.1
    assert summary["nps"] == nps_summary([10, 9, 2, 8, 6, 3, 10, 7, 0])
    assert summary["nps"]["score"] == -11.1
    assert list(summary["score_distribution"]) == [str(v) for v in range(11)]
    assert sum(summary["score_distribution"].values()) == 9
    assert summary["metric"]["groups"]["promoters"] == [9, 10]

    plans = summary["segments"]["プラン"]
    assert [e["value"] for e in plans] == ["B", "A", "<未設定>"]
    assert [e["nps"]["n"] for e in plans] == [5, 3, 1]


def test_periods_and_change() -> None:
    summary = _build(_rows())
    weeks = summary["periods"]["week"]
    assert [(w["period"], w["start"], w["end"], w["n"]) for w in weeks] == [
        ("2026-W46", "2026-11-09", "2026-11-15", 4),
        ("2026-W47", "2026-11-16", "2026-11-22", 6),
    ]
    assert [m["period"] for m in summary["periods"]["month"]] == ["2026-11"]
    assert [q["period"] for q in summary["periods"]["quarter"]] == ["2026-Q4"]
    change = summary["change"]
    assert (change["granularity"], change["current"], change["previous"]) == ("week", "2026-W47", "2026-W46")
    assert change["volume"] == {"current": 6, "previous": 4}
    # W47 scores 6 3 10 7 0 -> NPS (1 − 3)/5 = −40; W46 scores 10 9 2 8 -> (2 − 1)/4 = 25; delta −65
    assert change["nps_delta"] == -65.0 and change["significant"] in (True, False)
    slow = next(t for t in change["themes"] if t["theme"] == "slow_response")
    # answering responses: W47 6 (4 mention slow_response), W46 3 (1 mentions it)
    assert (slow["current"]["mentions"], slow["current"]["n"], slow["previous"]["mentions"], slow["previous"]["n"]) == (
        4, 6, 1, 3,
    )  # fmt: skip


def test_themes_drivers_questions_quotes_signals() -> None:
    summary = _build(_rows(), min_count=3)
    themes = {t["id"]: t for t in summary["themes"]}
    assert summary["themes"][0]["id"] == "slow_response"  # most mentioned first
    slow = themes["slow_response"]
    assert (slow["mentions"], slow["n"], slow["share"]) == (5, 9, 0.556)
    assert slow["sentiment"] == {"negative": 4, "neutral": 0, "positive": 1}
    assert slow["by_group"]["detractors"] == {"mentions": 4, "n": 4, "share": 1.0}
    assert slow["by_group"]["no_score"] == {"mentions": 0, "n": 1, "share": 0.0}

    drivers = {d["theme"]: d for d in summary["drivers"]}
    assert drivers["slow_response"]["mentions"] == 5 and drivers["slow_response"]["gate"] == "ok"
    # all scored NPS −11.1; without slow_response: 10 9 8 7 -> 50 -> impact −61.1
    assert drivers["slow_response"]["impact"]["value"] == -61.1
    assert drivers["price"]["gate"] == "too_few"  # 2 scored mentions < 3
    assert summary["drivers"][0]["theme"] == "slow_response"
    assert (
        summary["drivers_method"]["min_count"] == 3 and summary["drivers_method"]["bootstrap_samples"] == 200
    )

    reason = summary["questions"]["理由"]
    assert reason["answered"] == 8 and reason["nps"]["n"] == 7
    assert reason["sentiment"] == {"positive": 3, "neutral": 0, "negative": 5}
    assert {t["id"]: t["mentions"] for t in reason["themes"]}["price"] == 1
    assert summary["questions"]["改善点"]["answered"] == 2

    assert set(summary["quotes"]) == {"gratitude", "slow_response", "price"}
    assert len(summary["quotes"]["slow_response"]["detractors"]) == 3
    assert all(q["theme"] != "slow_response" for q in summary["promoter_quotes"])
    # row 3 is a near-duplicate of row 2; row 8 mentions slow_response, a negative-signal theme
    assert [q["row"] for q in summary["promoter_quotes"]] == [2]

    signals = summary["signals"]
    # answering responses 9: positive (gratitude) rows 2, 3, 8 -> 3; negative (slow_response) 4, 6, 7, 11 -> 4
    assert signals["overall"] == {"n": 9, "positive": 3, "negative": 4, "index": -0.111}
    assert [p["period"] for p in signals["by_period"]] == ["2026-W46", "2026-W47"]


def test_notes_on_japanese_nps_norms() -> None:
    notes = _build(_rows())["notes"]
    japan = next(n for n in notes if n.startswith("日本のNPSについて"))
    assert "+40" in japan and "0〜+10" in japan and "推移" in japan
    assert any("9件" in n for n in notes)  # small sample: the interval is wide


def test_deterministic_for_a_seed() -> None:
    assert _build(_rows(), seed=4) == _build(_rows(), seed=4)


def test_support_kind_nulls_score_parts() -> None:
    info = replace(INFO, kind="support", mapping=replace(MAPPING, score=None))
    rows = [replace(r, score=None) for r in _rows()]
    summary = _build(rows, info)
    json.dumps(summary, allow_nan=False)
    for key in ("nps", "metric", "score_distribution", "drivers", "drivers_method", "promoter_quotes"):
        assert summary[key] is None, key
    assert all(t["by_group"] is None for t in summary["themes"])
    assert all(e["nps"] is None for e in summary["segments"]["プラン"])
    assert all(w["nps"] is None for w in summary["periods"]["week"])
    assert summary["change"]["nps_delta"] is None and summary["change"]["themes"]
    assert summary["questions"]["理由"]["nps"] is None and summary["questions"]["理由"]["drivers"] is None
    assert list(summary["quotes"]["slow_response"]) == ["all"]
    assert summary["signals"]["overall"]["n"] == 9
    assert any("サポート" in n for n in summary["notes"])


def test_no_date_column() -> None:
    info = replace(INFO, mapping=replace(MAPPING, date=None))
    summary = _build(_rows(dated=False), info)
    assert summary["periods"] is None and summary["change"] is None
    assert summary["signals"]["by_period"] is None
    assert any("日付列がない" in n for n in summary["notes"])


def test_no_rows_and_csat() -> None:
    empty = _build([])
    assert empty["nps"]["score"] is None and empty["nps"]["n"] == 0
    assert empty["drivers"] == [] and empty["change"] is None and empty["promoter_quotes"] == []
    assert all(t["mentions"] == 0 and t["share"] is None for t in empty["themes"])
    csat_rows = [replace(r, score=None if r.score is None else min(5, r.score // 2 + 1)) for r in _rows()]
    csat = _build(csat_rows, replace(INFO, metric="csat"))
    assert csat["metric"]["name"] == "csat" and csat["nps"]["method"] == "wilson"
    assert not any(n.startswith("日本のNPSについて") for n in csat["notes"])


def test_scores_off_the_scale_are_rejected() -> None:
    rows = _rows()
    rows[0] = replace(rows[0], score=11)
    with pytest.raises(ValueError, match="outside the nps scale"):
        _build(rows)


def test_split_segment_reads_column_and_value() -> None:
    assert split_segment("プラン:ベーシック") == ("プラン", "ベーシック")
    assert split_segment("時刻:10:30") == ("時刻", "10:30")  # the value keeps further colons
    assert split_segment("地域:") == ("地域", "")  # an empty value is a value (blank cells)
    for bad in ("nocolon", ":値"):
        with pytest.raises(ValueError, match="COLUMN:VALUE"):
            split_segment(bad)
