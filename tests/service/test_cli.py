"""The ``koe`` command end to end on the shipped models and example exports.

The NPS check recomputes the figure from the raw CP932 file with nothing but the csv module and the
textbook definition, so the pipeline's number is compared with an independent hand computation.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from pathlib import Path

import pytest

from service.cli import main

ROOT = Path(__file__).parents[2]
SURVEY = ROOT / "examples" / "survey_cp932.csv"
SUPPORT = ROOT / "examples" / "support_tickets.csv"

pytestmark = pytest.mark.slow


def _hand_nps(path: Path) -> tuple[int, int, int, float]:
    """(n, promoters, detractors, NPS) straight from the file: NFKC, strip 点, keep integers 0–10."""
    with path.open(encoding="cp932", newline="") as fh:
        rows = list(csv.DictReader(fh))
    column = next(c for c in rows[0] if c.startswith("推奨度"))
    scores = []
    for row in rows:
        raw = unicodedata.normalize("NFKC", row[column]).strip().removesuffix("点")
        if raw.lstrip("-").isdigit() and 0 <= int(raw) <= 10:
            scores.append(int(raw))
    promoters = sum(s >= 9 for s in scores)
    detractors = sum(s <= 6 for s in scores)
    return len(scores), promoters, detractors, 100 * (promoters - detractors) / len(scores)


@pytest.fixture(scope="module")
def survey_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("survey")
    assert main(["analyze", str(SURVEY), "--out", str(out), "--quiet"]) == 0
    return out


def test_nps_matches_the_hand_computation(survey_out: Path) -> None:
    summary = json.loads((survey_out / "summary.json").read_text(encoding="utf-8"))
    n, promoters, detractors, nps = _hand_nps(SURVEY)
    assert (summary["nps"]["n"], summary["nps"]["promoters"], summary["nps"]["detractors"]) == (
        n,
        promoters,
        detractors,
    )
    assert summary["nps"]["score"] == pytest.approx(nps, abs=0.05)
    lo, hi = summary["nps"]["ci95"]
    assert lo < nps < hi
    assert summary["input"]["rows"] == 320 and summary["input"]["rows_without_score"] == 3  # blank, 11, -1


def test_every_row_is_kept_with_its_original_cells(survey_out: Path) -> None:
    with SURVEY.open(encoding="cp932", newline="") as fh:
        source = list(csv.DictReader(fh))
    with (survey_out / "rows.csv").open(encoding="utf-8-sig", newline="") as fh:
        written = list(csv.DictReader(fh))
    assert len(written) == len(source) == 320
    assert [r["回答ID"] for r in written] == [r["回答ID"] for r in source]
    multi = next(r for r in source if "\n" in r["理由"])
    assert any(w["理由"] == multi["理由"] for w in written)  # multi-line cell intact
    injected = next(w for w in written if w["改善してほしい点"].startswith("'="))
    assert injected["改善してほしい点"] == "'=すぐ直して"  # neutralised, otherwise unchanged
    assert {w["koe_group"] for w in written} >= {"promoters", "passives", "detractors"}
    answered = [w for w in written if w["理由"].strip()]
    assert all(w["koe_sentiment[理由]"] in {"positive", "neutral", "negative"} for w in answered)


def test_bad_cells_are_reported_with_file_row_and_column(survey_out: Path) -> None:
    with (survey_out / "errors.csv").open(encoding="utf-8-sig", newline="") as fh:
        errors = list(csv.DictReader(fh))
    by_value = {e["value"]: e for e in errors}
    assert {"11", "'-1", "2026/10/30 夕方"} <= set(by_value)
    eleven = by_value["11"]
    assert eleven["file"] == "survey_cp932.csv" and eleven["column"].startswith("推奨度")
    assert "0〜10" in eleven["message"]
    with SURVEY.open(encoding="cp932", newline="") as fh:
        lines = fh.read().split("\r\n")
    assert ",11," in lines[int(eleven["row"]) - 1]  # the row number is the file's own line


def test_pii_never_reaches_summary_or_report(survey_out: Path) -> None:
    with SURVEY.open(encoding="cp932", newline="") as fh:
        source = list(csv.DictReader(fh))
    with_pii = next(r for r in source if "@" in r["理由"])
    email = next(tok for tok in with_pii["理由"].replace("、", " ").replace("。", " ").split() if "@" in tok)
    for name in ("summary.json", "report.html"):
        text = (survey_out / name).read_text(encoding="utf-8")
        assert email.split("@")[0] not in text, name
    assert "<script src=" not in (survey_out / "report.html").read_text(encoding="utf-8")  # no CDN


def test_analyze_adds_emerging_themes_and_theme_summaries(survey_out: Path) -> None:
    summary = json.loads((survey_out / "summary.json").read_text(encoding="utf-8"))
    found = summary["discovery"]
    assert found["llm"] is None and found["clusters"] and found["method"]["candidates"] > 0
    for c in found["clusters"]:
        assert c["keywords"] and 1 <= len(c["representatives"]) <= 3 and c["named_by"] == "keywords"
        assert c["size"]["responses"] > 0 and c["size"]["n"] == 308 and c["trend"]["by_period"]
    items = summary["summaries"]["items"]
    assert {i["group"] for i in items} == {"all", "detractors", "passives", "promoters"}
    for item in items:
        assert item["method"] == "extractive" and item["fallback"] == "no_llm" and item["keywords"]
        assert {q for s in item["sentences"] for q in s["quote_ids"]} <= {q["id"] for q in item["quotes"]}
    html = (survey_out / "report.html").read_text(encoding="utf-8")
    assert "新しく見つかったテーマ" in html and "テーマ別の要約" in html
    assert found["clusters"][0]["name"] in html and items[0]["quotes"][0]["text"] in html


def test_no_insights_leaves_them_out_and_koe_insights_finds_the_same_themes(
    survey_out: Path, tmp_path: Path
) -> None:
    assert main(["analyze", str(SURVEY), "--out", str(tmp_path), "--quiet", "--no-insights"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert "discovery" not in summary and "summaries" not in summary
    assert "新しく見つかったテーマ" not in (tmp_path / "report.html").read_text(encoding="utf-8")
    # `koe insights discover --input` adds them afterwards: the same function, so the same clusters
    assert main(["insights", "discover", "--input", str(SURVEY), "--out", str(tmp_path)]) == 0
    added = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))["discovery"]
    analysed = json.loads((survey_out / "summary.json").read_text(encoding="utf-8"))["discovery"]
    assert added == analysed
    assert "新しく見つかったテーマ" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_support_kind_analyses_text_without_scores(tmp_path: Path) -> None:
    assert main(["analyze", str(SUPPORT), "--out", str(tmp_path), "--kind", "support", "--quiet"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["nps"] is None and summary["input"]["rows"] == 120
    assert sum(t["mentions"] for t in summary["themes"]) > 0


def test_classify_jsonl_and_plain_lines_in_order(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    lines = ['{"id": "t-1", "text": "配送が遅くて困りました。でもスタッフは親切でした"}', "特になし", ""]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    assert main(["classify"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["id"] for o in out] == ["t-1", 2]  # blank lines skipped, ids default to the line number
    first = out[0]
    assert set(first) >= {"id", "text", "sentiment", "themes", "needs_review"}
    assert {t["id"] for t in first["themes"]} >= {"delivery", "support_staff"}
    by_id = {t["id"]: t["sentiment"] for t in first["themes"]}
    assert by_id["delivery"] == "negative" and by_id["support_staff"] == "positive"
    assert out[1]["themes"] == []


def test_broken_json_names_the_line(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO('{"text": "ok"}\n{"text": \n'))
    assert main(["classify"]) == 2
    err = capsys.readouterr().err
    assert "<stdin>, row 2" in err and "not valid JSON" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "空"),
        ("名前,メール\nA,a@example.com\n".encode(), "--score-column"),
        ("推奨度,理由\n".encode(), "行"),
    ],
)
def test_unusable_files_exit_2_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    path = tmp_path / "upload.csv"
    path.write_bytes(content)
    assert main(["analyze", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "upload.csv" in err and message in err


def test_dry_run_shows_detected_columns(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(SURVEY), "--dry-run"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["encoding"] == "cp932"
    assert found["mapping"]["texts"] == ["理由", "改善してほしい点"]
    assert found["mapping"]["score"].startswith("推奨度")


def test_train_learns_a_custom_theme_from_labelled_comments(tmp_path: Path, capsys) -> None:
    """A team adds a theme to its taxonomy, labels comments for it, and `koe train` makes it a trained theme."""
    import shutil

    from models.bundle import load_bundle
    from models.taxonomy import default_taxonomy

    corpus = tmp_path / "corpus"
    shutil.copytree(ROOT / "tests" / "fixtures" / "mini_corpus", corpus)
    texts = [
        "箱がつぶれて届きました。",
        "梱包が雑で中身が偏っていました。",
        "緩衝材がほとんど入っていなかった。",
        "過剰包装でゴミが多すぎます。",
        "段ボールが濡れていて破れていました。",
        "袋が破れて中身がこぼれていた。",
        "梱包がとても丁寧で感心しました。",
        "プチプチで厳重に包まれていて安心でした。",
        "外箱がへこんでいました。",
        "テープがはがれて箱が開いていました。",
    ]
    with (corpus / "part-packaging.jsonl").open("w", encoding="utf-8") as fh:
        for i, text in enumerate(texts, start=1):
            label = "positive" if "丁寧" in text or "安心" in text else "negative"
            record = {
                "id": f"ec-9{i:03d}", "industry": "ec", "kind": "survey", "channel": "survey", "score": 5,
                "sentences": [{"text": text, "sentiment": label}], "sentiment": label,
                "themes": {"packaging": label}, "phenomena": [],
            }  # fmt: skip
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    taxonomy = (
        default_taxonomy().add_theme("packaging", "梱包", examples=texts[:3]).save(tmp_path / "tax.yaml")
    )
    args = ["train", "--out", str(tmp_path / "art"), "--corpus", str(corpus), "--taxonomy", str(taxonomy)]
    assert main([*args, "--no-chabsa", "--quiet", "--cache-dir", str(tmp_path / "cache")]) == 0
    assert "themes_test" in capsys.readouterr().out
    bundle = load_bundle(tmp_path / "art", taxonomy_path=taxonomy)
    assert "packaging" in bundle.themes.theme_ids_  # trained, no longer a prototype-only theme


def test_headline_lists_only_themes_that_were_found(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from service.cli import _print_headline

    themes = [{"label": "品質", "mentions": 3}, {"label": "感謝", "mentions": 0}]
    summary = {"nps": {"score": None}, "themes": themes, "issues": {"count": 1}, "input": {"rows": 4}}
    _print_headline(summary, tmp_path)
    assert "top themes: 品質 3\n" in capsys.readouterr().out
    _print_headline({**summary, "themes": [{"label": "感謝", "mentions": 0}]}, tmp_path)
    assert "top themes: (no theme found in any answer)" in capsys.readouterr().out


def test_insights_segment_without_a_column_is_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_work(*_: object) -> None:
        raise AssertionError("the file was read before --segment was checked")

    monkeypatch.setattr("service.insights_cli._file_results", no_work)
    args = ["insights", "summaries", "--input", str(SURVEY), "--segment", "nocolon", "--out", str(tmp_path)]
    assert main(args) != 0
    err = capsys.readouterr().err
    assert "--segment: use COLUMN:VALUE" in err and "nocolon" in err
    assert not list(tmp_path.iterdir())
