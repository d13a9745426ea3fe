import base64
import copy
import json
import re
import warnings
from pathlib import Path
from typing import Any

import matplotlib
import pytest
from fontTools.ttLib import TTFont
from matplotlib.font_manager import FontProperties, findfont

from pipelines.aggregate import _NOTE_SUPPORT
from pipelines.report import render_chart_pngs, render_report
from pipelines.report.charts import japanese_font_family

FIXTURE = Path(__file__).parents[1] / "fixtures" / "summary_example.json"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SURVEY_CHARTS = {
    "score_distribution",
    "segment_1",
    "segment_2",
    "segment_3",
    "trend_week",
    "themes",
    "drivers",
    "signals",
}


def _png_width(png: bytes) -> int:
    return int.from_bytes(png[16:20], "big")  # IHDR: width is the first field after the chunk header


def _images(html: str) -> list[dict[str, str]]:
    return [dict(re.findall(r'(\w+)="([^"]*)"', tag)) for tag in re.findall(r"<img\b[^>]*>", html)]


def _as_support(summary: dict[str, Any]) -> dict[str, Any]:
    """The fixture as ``--kind support`` would write it (schema: no score, so no NPS, drivers or groups)."""
    s = copy.deepcopy(summary)
    s["input"].update(kind="support", metric=None)
    s["input"]["mapping"]["score"] = None
    s.update(nps=None, metric=None, score_distribution=None, drivers=None, promoter_quotes=[])
    s["notes"] = [_NOTE_SUPPORT, *s.get("notes", [])]
    for entries in s["segments"].values():
        for entry in entries:
            entry["nps"] = None
    for items in s["periods"].values():
        for item in items:
            item["nps"] = None
    s["change"].update(nps_delta=None, ci95=None, significant=None)
    for theme in s["themes"]:
        theme["by_group"] = None
    for question in s["questions"].values():
        question.update(nps=None, drivers=None)
        for theme in question["themes"]:
            theme["by_group"] = None
    s["quotes"] = {
        theme: {"all": [q for group in groups.values() for q in group]}
        for theme, groups in s["quotes"].items()
    }
    return s


@pytest.fixture(scope="module")
def summary() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def chart_pngs(summary: dict[str, Any]) -> dict[str, bytes]:
    before = list(matplotlib.rcParams["font.family"])
    # matplotlib warns "Glyph ... missing from font" when it draws tofu: fail on any warning while drawing
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pngs = render_chart_pngs(summary)
    assert list(matplotlib.rcParams["font.family"]) == before, (
        "drawing the charts changed matplotlib's settings"
    )
    return pngs


@pytest.fixture(scope="module")
def report(summary: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> str:
    out = render_report(summary, tmp_path_factory.mktemp("report") / "out" / "report.html")
    assert out.is_file()
    return out.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def support_report(summary: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> str:
    out = render_report(_as_support(summary), tmp_path_factory.mktemp("support") / "report.html")
    return out.read_text(encoding="utf-8")


def test_report_is_one_japanese_html_page(report: str) -> None:
    assert report.startswith("<!DOCTYPE html>")
    assert '<html lang="ja">' in report
    assert "<style>" in report


@pytest.mark.parametrize("kind", ["survey", "support"])
def test_report_loads_nothing_from_outside(kind: str, report: str, support_report: str) -> None:
    html = report if kind == "survey" else support_report
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.IGNORECASE)
    assert not re.search(r"url\(\s*['\"]?\s*(?:https?:)?//|@import", html, re.IGNORECASE)
    assert "<script" not in html.lower()  # no script needed; and a comment's <script> must arrive escaped
    assert "<link" not in html.lower()


def test_every_image_is_an_inline_png_with_alt_text(report: str) -> None:
    images = _images(report)
    assert len(images) == len(SURVEY_CHARTS)
    for img in images:
        assert img["src"].startswith("data:image/png;base64,")
        png = base64.b64decode(img["src"].removeprefix("data:image/png;base64,"), validate=True)
        assert png.startswith(PNG_SIGNATURE)
        assert 880 <= _png_width(png) <= 910  # drawn for the 900 px content column
        assert len(img["alt"]) > 20


def test_user_text_is_escaped(report: str) -> None:
    assert "<script>alert(1)</script>" not in report
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report
    assert "A&amp;Bプラン" in report
    assert "&lt;未設定&gt;" in report  # a segment value
    assert "<未設定>" not in report


def test_japanese_labels_and_numbers_from_the_summary(report: str, summary: dict[str, Any]) -> None:
    for theme in summary["themes"]:
        assert theme["label"] in report
    for word in ("推奨者", "中立者", "批判者", "95%区間", "影響度", "リフト", "日本のNPSについて"):
        assert word in report
    assert "+6.0" in report  # the headline score, signed
    assert "−3.3〜+15.3" in report  # its interval, with real minus signs
    assert 'href="errors.csv"' in report


def test_missing_values_read_no_data(report: str) -> None:
    assert "データなし" in report  # the <未設定> segment has too few responses for an NPS


def test_too_few_drivers_are_greyed(report: str, summary: dict[str, Any]) -> None:
    too_few = [d for d in summary["drivers"] if d["gate"] == "too_few"]
    assert too_few
    assert report.count('<tr class="too-few">') == len(too_few)


def test_week_over_week_block(report: str) -> None:
    section = report[report.index('id="change"') : report.index('id="segments"')]
    assert "2026-W46 → 2026-W47" in section
    assert "有意でない" in section
    assert "対応が遅い" in section and "配送・納期" in section  # the significant riser and faller
    assert "価格・料金" not in section  # changed, but not significantly


def test_support_summary_renders_without_scores(support_report: str, summary: dict[str, Any]) -> None:
    assert support_report.count(_NOTE_SUPPORT) == 1  # said once, in the summary's own words
    assert 'id="drivers"' not in support_report and 'href="#drivers"' not in support_report
    assert 'class="score-card"' not in support_report
    assert 'id="segments"' not in support_report
    assert "全件" in support_report  # the quotes' "all" group
    for theme in summary["themes"]:
        assert theme["label"] in support_report
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in support_report
    assert all(img["src"].startswith("data:image/png;base64,") for img in _images(support_report))


def test_chart_pngs_for_email(chart_pngs: dict[str, bytes], summary: dict[str, Any]) -> None:
    assert set(chart_pngs) == SURVEY_CHARTS
    assert all(key.isascii() for key in chart_pngs)  # usable as Content-IDs and file names
    assert all(png.startswith(PNG_SIGNATURE) for png in chart_pngs.values())
    assert set(render_chart_pngs(_as_support(summary))) == {"themes", "signals"}


def _section(html: str, section_id: str) -> str:
    start = html.index(f'<section id="{section_id}">')
    return html[start : html.index("</section>", start)]


def test_emerging_themes_with_keywords_sentences_size_and_trend(report: str) -> None:
    part = _section(report, "emerging")
    assert "新しく見つかったテーマ" in part and 'href="#emerging"' in report
    assert "置き配の不安" in part and "名前: LLM" in part and "ネガティブな声" in part
    assert "&lt;b&gt;箱&lt;/b&gt;" in part and "<b>箱</b>" not in part  # a keyword is user text
    assert "<strong>26件</strong>の回答（28文、回答のある 308件の 8.4%）" in part
    assert (
        "2026-W47 は 2026-W46..2026-W46 に比べて +8.0pt（95%区間 +1.0pt〜+15.0pt）: <strong>増加</strong>"
        in part
    )
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in part and "行 77" in part
    assert "日付列がないため" in part  # c2 has no trend
    assert part.index("置き配の不安") < part.index("メニュー・料理")  # the summary's order: largest first


def test_theme_summaries_cite_their_quotes(report: str) -> None:
    part = _section(report, "theme-summaries")
    assert "テーマ別の要約" in part and 'href="#theme-summaries"' in report
    assert "LLMによる要約（gpt-4o-mini）" in part and "抽出（LLMの要約が引用に基づかなかったため）" in part
    # the LLM sentence links to the two quotes it cites, which are shown; the uncited q3 is not
    assert (
        'たらい回しや同じ説明の繰り返しへの不満が多い。 <a href="#sum1-q1">[q1]</a> <a href="#sum1-q2">[q2]</a>'
        in part
    )
    assert 'id="sum1-q1"' in part and 'id="sum1-q2"' in part and "sum1-q3" not in part
    assert "alert(3)" not in part
    # an extractive summary shows its quotes once, escaped
    assert part.count("スタッフの皆さんがいつも笑顔で") == 1 and "&lt;i&gt;とても&lt;/i&gt;" in part
    assert "特徴語: 笑顔・分かりやすい" in part


def test_a_summary_without_insights_has_no_such_sections(tmp_path: Path, summary: dict[str, Any]) -> None:
    plain = {k: v for k, v in summary.items() if k not in ("discovery", "summaries")}
    html = render_report(plain, tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'id="emerging"' not in html and 'id="theme-summaries"' not in html and "#emerging" not in html
    empty = {**summary, "discovery": {**summary["discovery"], "clusters": []}, "summaries": {"items": []}}
    html = render_report(empty, tmp_path / "empty.html").read_text(encoding="utf-8")
    assert "見つかりませんでした" in html and "要約できるテーマ" in html


def test_an_almost_empty_summary_still_renders(tmp_path: Path) -> None:
    html = render_report({"schema_version": "1.0"}, tmp_path / "report.html").read_text(encoding="utf-8")
    assert "データなし" in html
    assert "データなし行" not in html  # no unit after a missing count
    assert "<img" not in html


def test_only_a_plain_csv_name_is_linked(tmp_path: Path) -> None:
    summary = {"input": {"rows_with_issues": 2}, "issues": {"count": 2, "file": "javascript:alert(1)"}}
    html = render_report(summary, tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'href="errors.csv"' in html
    assert "javascript:" not in html


def test_chart_font_has_japanese_glyphs() -> None:
    family = japanese_font_family()
    path = findfont(FontProperties(family=family), fallback_to_default=False)
    font = TTFont(path, fontNumber=0) if path.lower().endswith((".ttc", ".otc")) else TTFont(path)
    cmap = font.getBestCmap()
    assert all(ord(ch) in cmap for ch in "感謝推奨者批判"), (
        f"{path} has no Japanese glyphs: charts would show tofu"
    )


def test_csat_reads_as_a_percentage_and_a_long_series_adds_a_monthly_chart(tmp_path: Path) -> None:
    def block(score: float) -> dict[str, Any]:
        return {"score": score, "n": 120, "ci95": [score - 8.5, score + 8.5]}

    summary = {
        "input": {"kind": "survey", "metric": "csat"},
        "metric": {
            "name": "csat",
            "scale": [1, 5],
            "groups": {"promoters": [4, 5], "passives": [3, 3], "detractors": [1, 2]},
        },
        "nps": {**block(59.0), "promoters": 71, "passives": 25, "detractors": 24},
        "periods": {
            "week": [{"period": f"2026-W{w:02d}", "nps": block(50.0 + w % 7)} for w in range(10, 40)],
            "month": [{"period": f"2026-{m:02d}", "nps": block(55.0 + m)} for m in range(3, 9)],
        },
    }
    assert {"trend_week", "trend_month"} <= set(render_chart_pngs(summary))
    html = render_report(summary, tmp_path / "report.html").read_text(encoding="utf-8")
    assert "59.0%" in html and "50.5%〜67.5%" in html
    assert "+59.0" not in html  # a CSAT is a share of satisfied customers, not a signed score
    assert "どちらでもない（3点）" in html
