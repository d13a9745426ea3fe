"""The weekly report's content (pipelines/report/weekly.py) and its rendering, on hand-made rows.

Hand-worked numbers (z = 1.959964):

* W47: 6 promoters, 2 passives, 2 detractors -> NPS +40.0. Adjusted Wald: ñ = 13, p̃ = 6.75/13, d̃ = 2.75/13,
  centre 0.3077, Var = (p̃ + d̃ − centre²)/ñ = 0.04893, half = 0.4336 -> [−12.6, +74.1].
* W46: 2 / 2 / 6 -> NPS −40.0. Change W46 -> W47: +80.0; centres 0.3077 − (−0.3077) = 0.6154, variances add:
  half = z·√(2 × 0.04893) = 0.6131 -> [+0.2, +122.9]: the interval excludes 0, so the change is significant.
* 対応が遅い (slow_response): 8 of 10 answering responses in W47, 1 of 10 in W46: +0.7, Newcombe
  [0.266, 0.865] -> significant (rose). 価格 (price): 2 of 10 in both weeks: 0.0, [−0.341, +0.341] -> not flagged.
"""

from __future__ import annotations

import json
import re
import warnings
from datetime import date, datetime
from typing import Any

import pytest

from pipelines.errors import ConfigError
from pipelines.records import AnalyzedRow, ColumnMapping, IngestInfo, TextResult, ThemeHit
from pipelines.report.weekly import (
    build_weekly_report,
    last_complete_week,
    parse_week,
    weekly_report_from_rows,
    weekly_summaries,
)
from pipelines.report.weekly_render import (
    date_range_label,
    render_weekly_html,
    render_weekly_standalone,
    render_weekly_text,
    weekly_charts,
    weekly_subject,
)

TAXONOMY = [
    {"id": "gratitude", "name": "感謝", "name_en": "Gratitude", "polarity": "positive_signal"},
    {"id": "slow_response", "name": "対応が遅い", "name_en": "Slow response", "polarity": "negative_signal"},
    {"id": "price", "name": "価格・料金", "name_en": "Price", "polarity": "topic"},
]
INFO = IngestInfo(
    "survey.csv",
    "csv",
    "utf-8",
    1,
    ["回答ID", "推奨度", "理由", "改善点", "回答日時"],
    ColumnMapping("推奨度", ["理由", "改善点"], "回答ID", "回答日時", []),
    "survey",
    "nps",
)
MODEL = {"encoder": "test"}
PII_TEXT = "返信が三日も来ません。連絡は taro@example.com か 090-1234-5678 へお願いします"
SLOW = "問い合わせへの返信がとても遅くて困っています"
PRICE = "月額の料金がもう少し安ければ続けやすいと思います"
THANKS = "いつも丁寧に対応していただきありがとうございます"


def _answer(text: str, sentiment: str, themes: list[tuple[str, str]]) -> TextResult:
    scores = {"negative": 0.1, "neutral": 0.1, "positive": 0.1, sentiment: 0.8}
    hits = [ThemeHit(t, t, 0.9, s) for t, s in themes]
    return TextResult(text, sentiment, scores, hits)


def _rows() -> list[AnalyzedRow]:
    rows: list[AnalyzedRow] = []

    def add(score: int | None, day: date | None, answers: dict[str, TextResult]) -> None:
        when = datetime(day.year, day.month, day.day, 12, 0) if day else None
        rows.append(AnalyzedRow(len(rows) + 2, score, when, {}, answers))

    slow = _answer(SLOW, "negative", [("slow_response", "negative")])
    price = _answer(PRICE, "neutral", [("price", "neutral")])
    thanks = _answer(THANKS, "positive", [("gratitude", "positive")])
    # W45 (one response, for the trend)
    add(9, date(2026, 11, 4), {"理由": thanks})
    # W46 (2026-11-09 .. 15): 2 promoters, 2 passives, 6 detractors; slow 1, price 2
    for i, score in enumerate([10, 9, 8, 7, 0, 0, 0, 0, 0, 0]):
        answers = {"理由": thanks} if score >= 9 else {"理由": _answer(f"{SLOW}（{i}）", "neutral", [])}
        if i == 4:
            answers = {"理由": slow}
        if i in (5, 6):
            answers = {"理由": price}
        add(score, date(2026, 11, 9 + i % 7), answers)
    # W47 (2026-11-16 .. 22): 6 promoters, 2 passives, 2 detractors; slow 8 (both detractors, both passives,
    # 4 promoters), price 2 (promoters)
    w47: list[tuple[int, dict[str, TextResult]]] = [
        (0, {"理由": _answer(PII_TEXT, "negative", [("slow_response", "negative")])}),
        (3, {"理由": slow, "改善点": _answer("返信を早くしてください、本当に困ります", "negative", [])}),
        (7, {"理由": _answer(SLOW + "。ほかは満足", "neutral", [("slow_response", "negative")])}),
        (8, {"理由": _answer(SLOW + "が、品物はよい", "neutral", [("slow_response", "negative")])}),
        (10, {"理由": _answer(THANKS + "。返信は遅いけれど", "positive", [("slow_response", "neutral")])}),
        (
            10,
            {
                "理由": _answer(
                    "返信は遅いが、商品の品質には満足しています", "positive", [("slow_response", "neutral")]
                )
            },
        ),
        (
            10,
            {
                "理由": _answer(
                    "少し返信が遅い。でも料理はおいしい", "positive", [("slow_response", "negative")]
                )
            },
        ),
        (
            10,
            {
                "理由": _answer(
                    "返信の遅さ以外は完璧なサービスです", "positive", [("slow_response", "negative")]
                )
            },
        ),
        (
            10,
            {"理由": _answer("料金がお手頃で、家族みんな喜んでいます", "positive", [("price", "positive")])},
        ),
        (
            10,
            {
                "理由": _answer(
                    "この値段でこの品質なら文句なしです、友人にも勧めました",
                    "positive",
                    [("price", "positive")],
                )
            },
        ),
    ]
    for i, (score, answers) in enumerate(w47):
        add(score, date(2026, 11, 16 + i % 7), answers)
    add(0, date(2026, 11, 24), {"理由": slow})  # W48: after the report week
    add(0, None, {"理由": slow})  # undated: cannot be placed in a week
    return rows


@pytest.fixture(scope="module")
def report() -> Any:
    return weekly_report_from_rows(_rows(), INFO, TAXONOMY, "2026-W47", model_info=MODEL, bootstrap=200)


def test_weeks_are_parsed_and_named() -> None:
    week = parse_week("2026-W47")
    assert (week.key, week.start, week.end) == ("2026-W47", date(2026, 11, 16), date(2026, 11, 22))
    assert parse_week("2026w01").start == date(2025, 12, 29)  # ISO week 1 starts in the previous year
    assert last_complete_week(date(2026, 11, 23)).key == "2026-W47"  # a Monday: the week that just ended
    assert last_complete_week(date(2026, 11, 22)).key == "2026-W46"  # a Sunday: its own week is not over
    for bad in ("2026-W54", "2026/11/16", "W47", ""):
        with pytest.raises(ConfigError, match=r"ISO week|exists"):
            parse_week(bad)
    assert date_range_label(date(2026, 11, 16), date(2026, 11, 22)) == "2026年11月16日（月）〜22日（日）"
    assert date_range_label(date(2026, 11, 30), date(2026, 12, 6)) == "2026年11月30日（月）〜12月6日（日）"
    assert (
        date_range_label(date(2026, 12, 28), date(2027, 1, 3)) == "2026年12月28日（月）〜2027年1月3日（日）"
    )


def test_the_week_and_its_change_come_from_the_pipeline(report: Any) -> None:
    assert report.headline["score"] == 40.0 and report.headline["ci95"] == [-12.6, 74.1]
    assert (report.headline["n"], report.headline["promoters"], report.headline["detractors"]) == (10, 6, 2)
    assert report.change == {
        "previous": "2026-W46",
        "previous_is_last_week": True,
        "delta": 80.0,
        "ci95": [0.2, 122.9],
        "significant": True,
        "volume": {"current": 10, "previous": 10},
    }
    assert report.volume == {
        "responses": 10,
        "with_text": 10,
        "scored": 10,
        "previous": 10,
    }  # W48, undated out
    assert [w["period"] for w in report.trend] == ["2026-W45", "2026-W46", "2026-W47"]
    assert report.trend[-1]["score"] == 40.0 and report.trend[1]["ci95"] == [-74.1, 12.6]


def test_only_changes_outside_the_interval_are_flagged_with_their_counts(report: Any) -> None:
    (rose,) = report.theme_changes["rose"]
    assert rose["theme"] == "slow_response" and rose["label"] == "対応が遅い"
    assert rose["current"] == {"mentions": 8, "n": 10, "share": 0.8}
    assert rose["previous"] == {"mentions": 1, "n": 10, "share": 0.1}
    assert rose["delta"] == 0.7 and rose["ci95"] == [0.266, 0.865]
    assert report.theme_changes["fell"] == []
    price = next(t for t in report.theme_changes["all"] if t["theme"] == "price")
    assert price["delta"] == 0.0 and price["ci95"] == [-0.341, 0.341] and not price["significant"]
    assert report.theme_changes["within_interval"] == 2  # price and gratitude (4 of 10 -> 0 of 10)


def test_groups_quotes_and_signals(report: Any) -> None:
    detractors = report.groups["detractors"]
    assert detractors["n"] == 2 and detractors["themes"][0]["theme"] == "slow_response"
    assert (detractors["themes"][0]["mentions"], detractors["themes"][0]["n"]) == (2, 2)
    assert detractors["themes"][0]["promoters"] == {"mentions": 4, "n": 6, "share": 0.667}
    # passives mention slow_response 2/2 vs promoters 4/6: ratio > 1, so it is what holds them back
    assert [t["theme"] for t in report.groups["passives"]["themes"]] == ["slow_response"]
    assert {t["theme"] for t in report.groups["promoters"]["themes"]} == {"slow_response", "price"}
    assert report.promoter_quotes and all(q["score"] >= 9 for q in report.promoter_quotes)
    assert report.themes[0]["theme"] == "slow_response" and report.themes[0]["quotes"]
    # slow_response counts as a negative signal unless its sentiment is positive: all 8 mentions (6 negative,
    # 2 neutral); gratitude is not mentioned in W47
    assert report.signals["week"] == {"n": 10, "positive": 0, "negative": 8, "index": -0.8}
    assert [p["period"] for p in report.signals["trend"]] == ["2026-W45", "2026-W46", "2026-W47"]
    assert [q["name"] for q in report.questions] == ["理由", "改善点"]


def test_quotes_are_masked_even_when_the_summary_was_not(report: Any) -> None:
    dumped = json.dumps(report.to_dict(), ensure_ascii=False, default=str)
    assert "taro@example.com" not in dumped and "090-1234-5678" not in dumped
    quote = report.groups["detractors"]["themes"][0]["quotes"]
    assert any("[メール]" in q["text"] and "[電話番号]" in q["text"] for q in quote)


def test_without_a_previous_week_there_is_no_change_and_no_flag() -> None:
    rows = [
        r for r in _rows() if r.date is None or r.date.day >= 16 or (r.date.month == 11 and r.date.day < 9)
    ]
    report = weekly_report_from_rows(rows, INFO, TAXONOMY, "2026-W47", model_info=MODEL, bootstrap=0)
    assert report.change is not None and report.change["previous"] == "2026-W45"
    assert report.change["previous_is_last_week"] is False  # W46 had no response: compared with W45, said so
    assert "前週は回答なし" in render_weekly_text(report)
    empty = weekly_report_from_rows(rows, INFO, TAXONOMY, "2026-W40", model_info=MODEL, bootstrap=0)
    assert empty.headline is not None and empty.headline["n"] == 0 and empty.headline["score"] is None
    assert empty.change is None and empty.volume["responses"] == 0
    assert "スコアのある回答はありませんでした" in render_weekly_text(empty)


def test_a_weekly_report_needs_dates() -> None:
    undated = IngestInfo(**{**INFO.__dict__, "mapping": ColumnMapping("推奨度", ["理由"])})
    with pytest.raises(ConfigError, match="date column"):
        weekly_summaries(_rows(), undated, TAXONOMY, parse_week("2026-W47"), model_info=MODEL)


def test_support_data_gets_its_own_section(report: Any) -> None:
    support_info = IngestInfo(
        **{**INFO.__dict__, "kind": "support", "mapping": ColumnMapping(None, ["本文"], None, "日時")}
    )
    tickets = [
        AnalyzedRow(
            i + 2,
            None,
            datetime(2026, 11, 10 + i, 9),
            {},
            {"本文": _answer(SLOW, "negative", [("slow_response", "negative")])},
        )
        for i in range(10)
    ]
    summaries = weekly_summaries(
        _rows(), INFO, TAXONOMY, parse_week("2026-W47"), model_info=MODEL, bootstrap=0
    )
    support = weekly_summaries(tickets, support_info, TAXONOMY, parse_week("2026-W47"), model_info=MODEL)
    with_support = build_weekly_report(summaries, "2026-W47", support=support)
    assert with_support.support is not None
    # tickets on Nov 10..19: 6 in W46 (10th to 15th), 4 in W47
    assert (
        with_support.support["volume"]["responses"] == 4 and with_support.support["volume"]["previous"] == 6
    )
    assert with_support.support["themes"][0]["quotes"][0]["group"] == "all"
    assert "サポートへの問い合わせ" in render_weekly_text(with_support)


def test_rendering_subject_text_html_and_charts(report: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns on a glyph missing from the font (tofu)
        charts = weekly_charts(report)
    assert [c.key for c in charts] == ["trend_week", "theme_change", "signals"]
    assert all(c.png.startswith(b"\x89PNG") and c.alt for c in charts)
    subject = weekly_subject(report)
    assert subject.startswith("【週次レポート】") and "2026年11月16日（月）〜22日（日）" in subject
    assert "2026-W47" in subject

    text = render_weekly_text(report, unsubscribe_url="https://koe.example/u")
    assert "NPS +40.0（95%区間 −12.6〜+74.1、n=10）" in text
    assert "区間が0を含まないため" in text and "+80.0" in text
    assert "▲ 対応が遅い: 10.0%（1/10件）→ 80.0%（8/10件）、+70.0pt（95%区間 +26.6pt〜+86.5pt）" in text
    assert "[メール]" in text and "taro@example.com" not in text and "https://koe.example/u" in text

    html = render_weekly_html(report, charts, {c.key: f"cid:{c.key}@test" for c in charts})
    assert set(re.findall(r'<img src="([^"]+)"', html)) == {f"cid:{c.key}@test" for c in charts}
    assert "<script" not in html.lower() and "<style" not in html.lower() and "@font-face" not in html
    assert "<table" in html and 'lang="ja"' in html and "http://" not in html and "https://" not in html
    assert "taro@example.com" not in html and "[電話番号]" in html

    standalone = render_weekly_standalone(report, charts)
    assert standalone.count('src="data:image/png;base64,') == len(charts)


def test_user_text_is_escaped_in_html() -> None:
    rows = _rows()
    rows[12].answers["理由"] = _answer(
        "<script>alert(1)</script>の返信が遅いです、本当に困っています",
        "negative",
        [("slow_response", "negative")],
    )
    report = weekly_report_from_rows(rows, INFO, TAXONOMY, "2026-W47", model_info=MODEL, bootstrap=0)
    html = render_weekly_standalone(report)
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)" in html
