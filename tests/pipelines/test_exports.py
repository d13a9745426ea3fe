import csv
import json
from pathlib import Path

from pipelines.errors import RowIssue
from pipelines.exports import EXTRA_CELLS_COLUMN, ErrorsWriter, RowsWriter, neutralize_formula
from pipelines.records import SurveyRow, TextResult, ThemeHit


def test_formula_cells_are_neutralised_and_nothing_else_changes() -> None:
    for value in ("=1+1", "+81 3", "-1", "@SUM(A1)", "\tx"):
        assert neutralize_formula(value) == "'" + value
    assert neutralize_formula("遅い=困る") == "遅い=困る"
    assert neutralize_formula(None) == ""


def test_rows_writer_keeps_cells_beyond_the_header_and_results(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    writer = RowsWriter(path, ["ID", "理由"], ["理由"], group_column=True)
    row = SurveyRow(
        row=3,
        original={"ID": "1", "理由": "=遅い", "列3": "はみ出し"},
        issues=[RowIssue("f.csv", 3, "列3", "はみ出し", "見出しより列が多い行です")],
    )
    result = TextResult("遅い", "negative", {}, [ThemeHit("slow_response", "対応が遅い", 0.9, "negative")])
    writer.write(row, {"理由": result}, "detractors")
    writer.close()
    with path.open(encoding="utf-8-sig", newline="") as fh:
        (written,) = list(csv.DictReader(fh))
    assert written["理由"] == "'=遅い"
    assert written["koe_row"] == "3" and written["koe_group"] == "detractors"
    assert written["koe_themes[理由]"] == "対応が遅い"
    assert written["koe_theme_sentiment[理由]"] == "対応が遅い:negative"
    assert json.loads(written[EXTRA_CELLS_COLUMN]) == {"列3": "はみ出し"}
    assert "列3: 見出しより列が多い行です" in written["koe_issues"]


def test_errors_writer_streams_and_counts(tmp_path: Path) -> None:
    writer = ErrorsWriter(tmp_path / "errors.csv")
    writer.write([RowIssue("f.csv", 5, "推奨度", "11", "推奨度は0〜10の整数で入力してください")])
    writer.write([])
    writer.close()
    assert writer.count == 1
    with (tmp_path / "errors.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows == [
        ["file", "row", "column", "value", "message"],
        ["f.csv", "5", "推奨度", "11", "推奨度は0〜10の整数で入力してください"],
    ]
