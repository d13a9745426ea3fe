"""``read_survey`` and ``sniff`` on the exports koe meets: every input file is built in ``tmp_path``."""

from __future__ import annotations

import csv
import gc
import io
import json
import tracemalloc
from datetime import datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from pipelines.errors import (
    ColumnError,
    ConfigError,
    EmptyFileError,
    EncodingError,
    FileTooLargeError,
    InputError,
)
from pipelines.ingest import encoding as encoding_module
from pipelines.ingest import read_survey, sniff
from pipelines.records import SurveyRow

HEADER = ["回答ID", "回答日時", "推奨度", "理由", "プラン"]
ROWS = [
    ["1", "2026/11/05 10:23", "9", "サポートがとても丁寧でした", "ベーシック"],
    ["2", "2026/11/06 11:00", "6", "価格が高いと感じます", "プロ"],
    ["3", "2026/11/07 12:30", "10", "画面が見やすく使いやすい", "ベーシック"],
]


def write_csv(
    path: Path, rows: list[list[str]], *, encoding: str = "utf-8", delimiter: str = ",", prefix: str = ""
) -> Path:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    path.write_bytes((prefix + buf.getvalue()).encode(encoding))
    return path


def read_all(path: Path, **kwargs: Any) -> tuple[Any, list[SurveyRow]]:
    info, rows = read_survey(path, **kwargs)
    return info, list(rows)


def write_xlsx(path: Path, sheets: dict[str, list[list[Any]]]) -> Path:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    wb.save(path)
    return path


# ----------------------------------------------------------------------------- encodings


@pytest.mark.parametrize(
    ("encoding", "reported"),
    [
        ("utf-8", "utf-8"),
        ("utf-8-sig", "utf-8-sig"),
        ("cp932", "cp932"),
        ("euc-jp", "euc-jp"),
        ("utf-16", "utf-16"),
    ],
)
def test_reads_each_encoding_of_japanese_exports(tmp_path: Path, encoding: str, reported: str) -> None:
    path = write_csv(tmp_path / "survey.csv", [HEADER, *ROWS], encoding=encoding)
    info, rows = read_all(path)
    assert info.encoding == reported
    assert info.columns == HEADER  # no BOM glued to the first header
    assert info.mapping.score == "推奨度"
    assert [r.texts["理由"] for r in rows] == [r[3] for r in ROWS]


def test_excel_cp932_export_with_windows_only_characters(tmp_path: Path) -> None:
    rows = [HEADER, ["1", "2026/11/05 10:23", "８", "①対応が早い ㈱ヤマダ様に感謝", "ベーシック"]]
    info, out = read_all(write_csv(tmp_path / "excel.csv", rows, encoding="cp932"))
    assert info.encoding == "cp932"
    assert out[0].score == 8
    assert out[0].texts["理由"] == "①対応が早い ㈱ヤマダ様に感謝"


def test_encoding_override_is_used_and_named_like_windows(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "survey.csv", [HEADER, *ROWS], encoding="cp932")
    info, rows = read_all(path, encoding="Shift_JIS")
    assert info.encoding == "cp932"
    assert rows[0].texts["理由"] == ROWS[0][3]
    with pytest.raises(ConfigError, match="'encoding'"):
        read_survey(path, encoding="no-such-codec")


def test_wrong_encoding_override_names_file_line_and_encoding(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "survey.csv", [HEADER, *ROWS], encoding="cp932")
    with pytest.raises(EncodingError) as err:
        read_survey(path, encoding="utf-8", display_name="11月調査.csv")
    assert err.value.file == "11月調査.csv"
    assert err.value.row == 1
    text = str(err.value)
    assert text.startswith("11月調査.csv, row 1: ")
    assert "utf-8" in text
    assert "--encoding" in text
    assert "cp932" in text  # suggested


def test_undecodable_bytes_late_in_the_file_raise_from_the_iterator(tmp_path: Path) -> None:
    lines = ["ID,推奨度,理由"] + [f"{i},{i % 11},とても良い{i}" for i in range(1, 1200)]
    data = "\n".join(lines).encode("utf-8") + b"\n"
    bad = data.replace(
        "とても良い1000\n".encode(), "とても良い1000".encode() + "ダメ".encode("cp932") + b"\n"
    )
    path = tmp_path / "late.csv"
    path.write_bytes(bad)
    _, rows = read_survey(path, encoding="utf-8")  # the first 500 rows are fine
    seen = []
    with pytest.raises(EncodingError) as err:
        for row in rows:
            seen.append(row.row)
    assert seen[-1] == 1000  # data row 999 sits on line 1000
    assert err.value.row == 1001
    assert "row 1001" in str(err.value) and "utf-8" in str(err.value) and "late.csv" in str(err.value)


def test_auto_detection_checks_beyond_the_first_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ASCII for the first 64 KiB, then Shift_JIS: the larger pass must switch the guess to cp932
    monkeypatch.setattr(encoding_module, "SAMPLE_BYTES", 256)
    lines = ["ID,score,comment"] + [f"{i},{i % 11},ok" for i in range(1, 60)] + ["60,3,対応が遅い"]
    path = tmp_path / "late_japanese.csv"
    path.write_bytes("\r\n".join(lines).encode("cp932"))
    info, rows = read_all(path, mapping={"score": "score", "texts": ["comment"]})
    assert info.encoding == "cp932"
    assert rows[-1].texts["comment"] == "対応が遅い"


def test_detected_utf8_with_one_corrupted_byte_names_the_line(tmp_path: Path) -> None:
    lines = ["ID,推奨度,理由"] + [f"{i},9,とても使いやすいです" for i in range(1, 40)]
    path = tmp_path / "corrupt.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8") + b"40,9,\xff\xfe\n")
    with pytest.raises(EncodingError) as err:
        read_survey(path)
    assert err.value.row == 41
    assert "utf-8" in str(err.value)


# ----------------------------------------------------------------------------- formats


def test_tsv_and_semicolon_delimiters_are_sniffed(tmp_path: Path) -> None:
    rows = [HEADER, ["1", "2026/11/05", "9", "速い, 安い; 便利", "ベーシック"]]
    info, out = read_all(write_csv(tmp_path / "export.txt", rows, delimiter="\t"))
    assert info.format == "tsv"
    assert out[0].texts["理由"] == "速い, 安い; 便利"
    info, out = read_all(write_csv(tmp_path / "export.csv", rows, delimiter=";"))
    assert info.format == "csv"
    assert out[0].original == dict(zip(HEADER, rows[1], strict=True))


def test_utf16_tab_separated_excel_unicode_text(tmp_path: Path) -> None:
    info, out = read_all(
        write_csv(tmp_path / "unicode.txt", [HEADER, *ROWS], encoding="utf-16", delimiter="\t")
    )
    assert (info.format, info.encoding) == ("tsv", "utf-16")
    assert [r.score for r in out] == [9, 6, 10]


def test_xlsx_typed_values(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "survey.xlsx",
        {
            "Sheet1": [
                ["回答ID", "回答日時", "推奨度", "理由", "プラン"],
                [101, datetime(2026, 11, 5, 10, 23), 9.0, "とても良い", "ベーシック"],
                [102, datetime(2026, 11, 6), 10, "@サポート -1点の理由", "プロ"],
                [103, 46331.4375, 7.5, None, "プロ"],
            ]
        },
    )
    info, rows = read_all(path)
    assert (info.format, info.encoding) == ("xlsx", None)
    assert info.mapping.date == "回答日時"
    assert rows[0].original == {
        "回答ID": "101",
        "回答日時": "2026-11-05 10:23:00",
        "推奨度": "9",
        "理由": "とても良い",
        "プラン": "ベーシック",
    }
    assert rows[0].respondent_id == "101"
    assert rows[0].date == datetime(2026, 11, 5, 10, 23)
    assert rows[0].score == 9
    assert rows[1].texts["理由"] == "@サポート -1点の理由"  # verbatim; neutralised on export
    assert rows[2].date == datetime(2026, 11, 5, 10, 30)  # Excel serial day number
    assert rows[2].score is None
    assert [(i.row, i.column, i.value) for i in rows[2].issues] == [(4, "推奨度", "7.5")]


def test_xlsx_sheet_named_like_the_data_is_chosen(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "book.xlsx",
        {
            "説明": [["このブックは 2026年11月の調査です"]],
            "集計": [["プラン", "NPS"], ["ベーシック", 12]],
            "フォームの回答 1": [
                ["タイムスタンプ", "推奨度", "理由"],
                [datetime(2026, 11, 5, 9, 0), 8, "普通"],
            ],
        },
    )
    info, rows = read_all(path)
    assert info.columns == ["タイムスタンプ", "推奨度", "理由"]
    assert rows[0].score == 8


def test_xlsx_first_sheet_with_a_table_otherwise(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "book.xlsx",
        {
            "Empty": [],
            "Notes": [["メモ"]],
            "Sheet3": [["ID", "推奨度"], [1, 3]],
            "Sheet4": [["x", "y"], [1, 2]],
        },
    )
    info, rows = read_all(path)
    assert info.columns == ["ID", "推奨度"]
    assert rows[0].row == 2


def test_format_comes_from_the_content_not_the_extension(tmp_path: Path) -> None:
    xlsx = write_xlsx(tmp_path / "real.xlsx", {"Sheet1": [HEADER, [1, "2026/11/05", 9, "良い", "プロ"]]})
    disguised = tmp_path / "export.csv"
    disguised.write_bytes(xlsx.read_bytes())
    info, rows = read_all(disguised)
    assert info.format == "xlsx"
    assert rows[0].score == 9

    text_named_xlsx = write_csv(tmp_path / "export.xlsx", [HEADER, *ROWS])
    info, rows = read_all(text_named_xlsx)
    assert info.format == "csv"
    assert len(rows) == 3


def test_legacy_xls_and_html_exports_are_refused_with_what_to_do(tmp_path: Path) -> None:
    xls = tmp_path / "old.xls"
    xls.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600)
    with pytest.raises(InputError, match=r"old\.xls: .*\.xlsx"):
        read_survey(xls)
    html = tmp_path / "web.xls"
    html.write_bytes(b"<html><body><table><tr><td>1</td></tr></table></body></html>")
    with pytest.raises(InputError, match="HTML"):
        read_survey(html)
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError, match=r"broken\.xlsx: .*xlsx"):
        read_survey(broken)


# ----------------------------------------------------------------------------- real exports


def test_google_forms_export(tmp_path: Path) -> None:
    header = [
        "タイムスタンプ",
        "メールアドレス",
        "当社のサービスを友人や同僚にすすめる可能性はどのくらいありますか？（0〜10）",
        "そのように評価した理由を教えてください",
        "ご利用のプランを教えてください",
        "最も役に立った機能",
    ]
    rows = [
        [f"2026/11/{5 + i % 3:02d} 10:23:{i:02d}", f"user{i}@example.jp", str(i % 11),
         f"サポートの対応が早くて助かりました（{i}）", ["無料", "有料"][i % 2], ["レポート", "通知"][i % 2]]
        for i in range(12)
    ]  # fmt: skip
    info, out = read_all(write_csv(tmp_path / "フォームの回答.csv", [header, *rows]))
    m = info.mapping
    assert m.date == "タイムスタンプ"
    assert m.score == header[2]
    assert m.texts == [header[3], header[5]]
    assert m.segments == [header[4]]
    assert "メールアドレス" not in m.texts + m.segments  # PII
    assert out[0].original["メールアドレス"] == "user0@example.jp"  # but kept
    assert out[0].date == datetime(2026, 11, 5, 10, 23, 0)


def test_qualtrics_three_header_rows(tmp_path: Path) -> None:
    ids = ["StartDate", "EndDate", "Status", "IPAddress", "Progress", "Duration (in seconds)", "Finished",
           "RecordedDate", "ResponseId", "RecipientEmail", "DistributionChannel", "UserLanguage", "Q1",
           "Q1_NPS_GROUP", "Q2", "Q3"]  # fmt: skip
    texts = ["Start Date", "End Date", "Response Type", "IP Address", "Progress", "Duration (in seconds)",
             "Finished", "Recorded Date", "Response ID", "Recipient Email", "Distribution Channel",
             "User Language", "How likely are you to recommend us to a friend or colleague?",
             "How likely are you to recommend us to a friend or colleague? - Group",
             "Why did you give that score?", "ご利用のプランを教えてください"]  # fmt: skip
    import_ids = [json.dumps({"ImportId": i}) for i in ids]
    import_ids[0] = '{"ImportId":"startDate","timeZone":"America/Denver"}'
    data = [
        [f"2026-11-05 10:{i:02d}:00", f"2026-11-05 10:{i:02d}:30", "IP Address", f"10.0.0.{i}", "100", "30",
         "True", f"2026-11-05 10:{i:02d}:31", f"R_{i:05d}", "", "anonymous", "JA", str(i % 11),
         ["Detractor", "Passive", "Promoter"][i % 3], f"使いやすかったです。理由{i}", ["ベーシック", "プロ"][i % 2]]
        for i in range(12)
    ]  # fmt: skip
    info, rows = read_all(write_csv(tmp_path / "qualtrics.csv", [ids, texts, import_ids, *data]))
    assert info.header_row == 2
    assert info.columns == texts
    m = info.mapping
    assert m.score == texts[12]
    assert m.respondent_id == "Response ID"
    assert m.date == "Start Date"
    assert m.texts == ["Why did you give that score?"]
    assert m.segments == ["ご利用のプランを教えてください"]  # not the NPS group, not metadata
    assert rows[0].row == 4  # the ImportId row is skipped, not read as data
    assert (rows[0].score, rows[0].respondent_id) == (0, "R_00000")
    assert len(rows) == 12
    # the short ids work in a mapping
    info, _ = read_survey(tmp_path / "qualtrics.csv", mapping={"score": "Q1", "segments": ["Q3"]})
    assert info.mapping.score == texts[12]
    assert info.mapping.segments == [texts[15]]
    report = sniff(tmp_path / "qualtrics.csv")
    assert report["layout"] == "qualtrics"
    assert report["aliases"]["Response ID"] == "ResponseId"


def test_surveymonkey_two_header_rows(tmp_path: Path) -> None:
    top = ["Respondent ID", "Collector ID", "Start Date", "End Date", "IP Address", "Email Address",
           "First Name", "Last Name", "Custom Data 1",
           "How likely is it that you would recommend this company to a friend or colleague?",
           "What is the main reason for your score?", "Which plan are you on?", "Which features do you use?", "",
           ""]  # fmt: skip
    sub = ["", "", "", "", "", "", "", "", "", "Response", "Open-Ended Response", "Response", "Reports",
           "Dashboards", "Other (please specify)"]  # fmt: skip
    data = [
        [str(114000 + i), "4242", f"11/{5 + i % 2:02d}/2026 10:23:45 AM", "11/05/2026 10:30:00 AM", "203.0.113.9",
         f"r{i}@example.com", "Taro", "Yamada", "", str(i % 11), f"Support answered quickly ({i})",
         ["Basic", "Pro"][i % 2], "Reports", "", "CSV export" if i == 3 else ""]
        for i in range(10)
    ]  # fmt: skip
    info, rows = read_all(write_csv(tmp_path / "monkey.csv", [top, sub, *data]))
    assert info.header_row == 1
    assert info.columns[9] == top[9]
    assert info.columns[12:] == [
        "Which features do you use? - Reports",
        "Which features do you use? - Dashboards",
        "Which features do you use? - Other (please specify)",
    ]
    m = info.mapping
    assert m.score == top[9]
    assert m.respondent_id == "Respondent ID"
    assert m.date == "Start Date"
    assert m.texts == [
        "What is the main reason for your score?",
        "Which features do you use? - Other (please specify)",
    ]
    assert "Which plan are you on?" in m.segments
    assert not {"Email Address", "First Name", "Last Name", "IP Address", "Collector ID"} & set(
        m.segments + m.texts
    )
    assert rows[0].row == 3
    assert rows[1].date == datetime(2026, 11, 6, 10, 23, 45)  # US month/day/year
    assert rows[3].texts["Which features do you use? - Other (please specify)"] == "CSV export"


def test_title_rows_above_the_header(tmp_path: Path) -> None:
    rows = [["2026年11月 顧客満足度調査"], [], ["出力日: 2026/12/01"], HEADER, *ROWS]
    path = write_csv(tmp_path / "titled.csv", rows, encoding="cp932")
    info, out = read_all(path)
    assert info.header_row == 4
    assert info.columns == HEADER
    assert [r.row for r in out] == [5, 6, 7]
    assert sniff(path)["title_rows"] == ["2026年11月 顧客満足度調査", "出力日: 2026/12/01"]


def test_multiline_cells_keep_their_text_and_the_row_where_they_start(tmp_path: Path) -> None:
    rows = [
        HEADER,
        ["1", "2026/11/05", "9", "良い点:\n・速い\n・安い", "プロ"],
        ["2", "2026/11/05", "3", "遅い", "プロ"],
        ["3", "2026/11/05", "11", "改行\r\nCRLF", "プロ"],
    ]
    _, out = read_all(write_csv(tmp_path / "multi.csv", rows))
    # Excel shows a quoted cell with line breaks as one row: the rows stay 2, 3, 4
    assert [r.row for r in out] == [2, 3, 4]
    assert out[0].original["理由"] == "良い点:\n・速い\n・安い"
    assert out[0].texts["理由"] == "良い点:\n・速い\n・安い"
    assert out[2].issues[0].row == 4


def test_trailing_empty_columns_and_rows_are_ignored_but_content_never_is(tmp_path: Path) -> None:
    body = "回答ID,推奨度,理由,,,\r\n1,9,良い,,,\r\n,,,,,\r\n2,,,,,\r\n\r\n3,8,,,,\r\n,,,,,\r\n\r\n"
    path = tmp_path / "trailing.csv"
    path.write_text(body, encoding="utf-8")
    info, out = read_all(path)
    assert info.columns == ["回答ID", "推奨度", "理由"]
    assert [(r.row, r.respondent_id, r.score) for r in out] == [(2, "1", 9), (4, "2", None), (6, "3", 8)]
    assert out[1].issues == []  # a blank score is no answer, not an error
    assert all(list(r.original) == info.columns for r in out)


def test_duplicate_and_blank_header_names(tmp_path: Path) -> None:
    rows = [["ID", "推奨度", "理由", "理由", "", "理由_2", "理由"], ["1", "9", "a", "b", "c", "d", "e"]]
    info, out = read_all(write_csv(tmp_path / "dup.csv", rows))
    assert info.columns == ["ID", "推奨度", "理由", "理由_3", "列5", "理由_2", "理由_4"]
    assert list(out[0].original.values()) == ["1", "9", "a", "b", "c", "d", "e"]


def test_blank_trailing_header_over_data_is_a_named_column_not_an_extra(tmp_path: Path) -> None:
    body = "ID,推奨度,理由,,\r\n1,9,良い,メモあり,\r\n2,8,普通,,\r\n"
    path = tmp_path / "memo.csv"
    path.write_text(body, encoding="utf-8")
    info, out = read_all(path)
    assert info.columns == ["ID", "推奨度", "理由", "列4"]  # the empty 5th column is dropped
    assert out[0].original["列4"] == "メモあり"
    assert out[0].issues == []


def test_extra_cells_are_kept_under_positional_names_with_an_issue(tmp_path: Path) -> None:
    rows = [["ID", "推奨度", "理由"], ["1", "9", "良い", "", "はみ出し"], ["2", "8", "普通", "", ""]]
    info, out = read_all(write_csv(tmp_path / "extra.csv", rows), display_name="extra.csv")
    assert info.columns == ["ID", "推奨度", "理由"]
    assert out[0].original == {"ID": "1", "推奨度": "9", "理由": "良い", "列4": "", "列5": "はみ出し"}
    [issue] = out[0].issues
    assert (issue.file, issue.row, issue.column, issue.value) == ("extra.csv", 2, "列5", "はみ出し")
    assert "見出しのない列" in issue.message
    assert out[1].issues == [] and "列4" not in out[1].original


# ----------------------------------------------------------------------------- scores and row issues


@pytest.mark.parametrize(
    ("cell", "score"),
    [("10", 10), ("１０", 10), ("10点", 10), (" 9 ", 9), ("9.0", 9), ("0", 0), ("", None)],
)
def test_score_cells(tmp_path: Path, cell: str, score: int | None) -> None:
    _, out = read_all(write_csv(tmp_path / "s.csv", [["ID", "推奨度"], ["1", cell], ["2", "5"]]))
    assert out[0].score == score
    assert out[0].issues == []


@pytest.mark.parametrize("cell", ["11", "-1", "abc", "9.5", "とても"])
def test_bad_score_is_a_row_issue_naming_file_row_and_column(tmp_path: Path, cell: str) -> None:
    path = write_csv(tmp_path / "s.csv", [["ID", "推奨度", "理由"], ["1", "5", "普通"], ["2", cell, "高い"]])
    _, out = read_all(path)
    row = out[1]
    assert row.score is None
    assert row.texts == {"理由": "高い"}  # the row is still there, with its answer
    [issue] = row.issues
    assert (issue.file, issue.row, issue.column, issue.value) == ("s.csv", 3, "推奨度", cell)
    assert issue.message == f"推奨度は0〜10の整数で入力してください（値: {cell.strip()}）"


def test_bad_date_is_a_row_issue(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", [["回答日時", "推奨度"], ["2026/11/05", "9"], ["来週", "8"]])
    info, out = read_all(path)
    assert info.mapping.date == "回答日時"
    [issue] = out[1].issues
    assert (issue.file, issue.row, issue.column, issue.value) == ("d.csv", 3, "回答日時", "来週")
    assert issue.message.startswith("日付として読み取れません（値: 来週）")
    assert out[1].score == 8


@pytest.mark.parametrize(
    ("metric", "header", "good", "bad", "label"),
    [
        ("csat", "満足度", ["1", "5", "３"], ["0", "6"], "満足度は1〜5の整数で"),
        ("ces", "手間の少なさ", ["1", "7"], ["0", "8"], "CES（顧客努力）のスコアは1〜7の整数で"),
        ("nps", "推奨度", ["0", "10"], ["11", "-1"], "推奨度は0〜10の整数で"),
    ],
)
def test_metric_ranges(
    tmp_path: Path, metric: str, header: str, good: list[str], bad: list[str], label: str
) -> None:
    rows = [["ID", header], *[[str(i), v] for i, v in enumerate(good + bad, 1)]]
    info, out = read_all(write_csv(tmp_path / "m.csv", rows), metric=metric)
    assert info.metric == metric
    assert info.mapping.score == header
    assert [r.score is not None for r in out] == [True] * len(good) + [False] * len(bad)
    assert all(label in r.issues[0].message for r in out[len(good) :])


def test_formula_like_values_are_kept_verbatim(tmp_path: Path) -> None:
    _, out = read_all(
        write_csv(tmp_path / "f.csv", [["ID", "推奨度", "理由"], ["1", "9", '=HYPERLINK("x")']])
    )
    assert out[0].original["理由"] == '=HYPERLINK("x")'


# ----------------------------------------------------------------------------- column roles and mapping


def test_roles_from_headers_and_values(tmp_path: Path) -> None:
    header = [
        "No.",
        "日付",
        "おすすめ度",
        "ご意見・ご要望",
        "年代",
        "性別",
        "店舗",
        "氏名",
        "電話番号",
        "連絡先",
        "今後への期待",
    ]
    rows = [
        [str(i), f"2026-11-{i + 1:02d}", str(i % 11), f"意見{i}", ["20代", "30代"][i % 2], ["男性", "女性"][i % 2],
         ["渋谷店", "新宿店", "池袋店"][i % 3], "山田太郎", "090-1234-5678", f"u{i}@example.com",
         f"もっと店舗を増やしてほしいです。近くにあると嬉しい（{i}）"]
        for i in range(20)
    ]  # fmt: skip
    info, _ = read_all(write_csv(tmp_path / "roles.csv", [header, *rows]))
    m = info.mapping
    assert (m.respondent_id, m.date, m.score) == ("No.", "日付", "おすすめ度")
    assert m.texts == ["ご意見・ご要望", "今後への期待"]  # keyword, and long unique Japanese answers
    assert m.segments == ["年代", "性別", "店舗"]
    # PII (by header, and by values for 連絡先) is neither text nor segment
    assert not {"氏名", "電話番号", "連絡先"} & set(m.texts + m.segments)


def test_a_date_header_over_numbers_is_not_a_date_in_text_files(tmp_path: Path) -> None:
    rows = [["ID", "Time spent (min)", "推奨度"], ["1", "12", "9"], ["2", "7", "8"], ["3", "30", "6"]]
    info, out = read_all(write_csv(tmp_path / "t.csv", rows))
    assert info.mapping.date is None
    assert all(r.issues == [] for r in out)


def test_mapping_overrides_only_the_keys_given(tmp_path: Path) -> None:
    header = ["ID", "Q1", "Q2", "満足度", "プラン"]
    rows = [[str(i), f"コメント{i}", str(i % 11), str(i % 5 + 1), ["A", "B"][i % 2]] for i in range(10)]
    path = write_csv(tmp_path / "custom.csv", [header, *rows])
    info, out = read_all(path, mapping={"score": "Q2", "texts": "Q1"})
    assert info.mapping.score == "Q2"
    assert info.mapping.texts == ["Q1"]
    assert info.mapping.respondent_id == "ID"  # still detected
    assert "Q2" not in info.mapping.segments
    assert out[3].score == 3 and out[3].texts == {"Q1": "コメント3"}
    info, _ = read_all(path, mapping={"score": "Q2", "segments": []})
    assert info.mapping.segments == []


def test_unknown_mapping_column_lists_the_available_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "survey.csv", [HEADER, *ROWS])
    with pytest.raises(ColumnError) as err:
        read_survey(path, mapping={"score": "NPS"})
    assert err.value.file == "survey.csv"
    assert err.value.column == "NPS"
    assert "使える列: 回答ID, 回答日時, 推奨度, 理由, プラン" in str(err.value)
    assert str(err.value).startswith("survey.csv, column 'NPS': ")
    with pytest.raises(ColumnError, match="理由2"):
        read_survey(path, mapping={"texts": ["理由", "理由2"]})
    with pytest.raises(ConfigError, match="'mapping' parameter keys"):
        read_survey(path, mapping={"comment": "理由"})


def test_survey_without_a_score_column_says_which_flag_to_use(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "noscore.csv", [["ID", "ご意見"], ["1", "良い"], ["2", "悪い"]])
    with pytest.raises(ColumnError, match="--score-column") as err:
        read_survey(path)
    assert "noscore.csv" in str(err.value) and "ID, ご意見" in str(err.value)
    report = sniff(path)
    assert report["mapping"]["score"] is None
    assert any("--score-column" in w for w in report["warnings"])


def test_support_tickets(tmp_path: Path) -> None:
    header = ["チケット番号", "作成日時", "チャネル", "件名", "問い合わせ内容", "顧客名", "メールアドレス"]
    rows = [
        [f"T-{i}", f"2026-11-0{i % 9 + 1} 09:00", ["メール", "電話", "チャット"][i % 3], f"ログインできない{i}",
         f"パスワードを変更したらログインできなくなりました（{i}）", "山田", f"c{i}@example.com"]
        for i in range(10)
    ]  # fmt: skip
    info, out = read_all(write_csv(tmp_path / "tickets.csv", [header, *rows]), kind="support")
    m = info.mapping
    assert info.kind == "support"
    assert m.score is None
    assert (m.respondent_id, m.date) == ("チケット番号", "作成日時")
    assert m.texts == ["問い合わせ内容"]
    assert m.segments == ["チャネル"]
    assert out[0].score is None and out[0].segments == {"チャネル": "メール"}
    assert out[0].original["顧客名"] == "山田"
    with pytest.raises(ConfigError, match="support"):
        read_survey(tmp_path / "tickets.csv", kind="support", mapping={"score": "チャネル"})
    with pytest.raises(ConfigError, match="'kind'"):
        read_survey(tmp_path / "tickets.csv", kind="tickets")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="'metric'"):
        read_survey(tmp_path / "tickets.csv", metric="ltv")  # type: ignore[arg-type]


def test_support_with_english_headers(tmp_path: Path) -> None:
    header = ["ticket id", "created_at", "channel", "body"]
    rows = [
        [str(i), "2026-11-05T09:00:00Z", ["email", "chat"][i % 2], f"I cannot log in ({i})"] for i in range(6)
    ]
    info, out = read_all(write_csv(tmp_path / "t.csv", [header, *rows]), kind="support")
    assert info.mapping.to_dict() == {
        "score": None,
        "texts": ["body"],
        "respondent_id": "ticket id",
        "date": "created_at",
        "segments": ["channel"],
    }
    assert out[0].date == datetime(2026, 11, 5, 18, 0)  # UTC -> Tokyo wall-clock


# ----------------------------------------------------------------------------- whole-file problems


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(EmptyFileError, match=r"^empty\.csv: "):
        read_survey(path)
    path.write_text("\r\n , \r\n\r\n", encoding="utf-8")
    with pytest.raises(EmptyFileError):
        read_survey(path)


def test_header_only_file(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "header.csv", [["2026年11月 調査"], [], HEADER, [""] * 5, []])
    with pytest.raises(EmptyFileError, match=r"header\.csv: .*見出し行（3行目）だけで"):
        read_survey(path)
    xlsx = write_xlsx(tmp_path / "header.xlsx", {"Sheet1": [HEADER]})
    with pytest.raises(EmptyFileError):
        read_survey(xlsx)


def test_too_large_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "big.csv", [HEADER, *ROWS])
    size = path.stat().st_size
    with pytest.raises(FileTooLargeError) as err:
        read_survey(path, max_bytes=100)
    assert err.value.file == "big.csv"
    assert f"{size:,} バイト" in str(err.value) and "100 バイト" in str(err.value)
    read_survey(path, max_bytes=size)  # at the limit is fine


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nothere\.csv: "):
        read_survey(tmp_path / "nothere.csv")


def test_unclosed_quote_is_reported_at_its_row(tmp_path: Path) -> None:
    path = tmp_path / "quote.csv"
    path.write_text('ID,推奨度,理由\n1,9,良い\n2,3,"閉じていない\n' + "あ" * 140_000 + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"quote\.csv, row 3: .*引用符") as err:
        _, rows = read_survey(path)
        list(rows)
    assert err.value.row == 3


# ----------------------------------------------------------------------------- sniff


def test_sniff_reports_detection_preview_and_a_full_pass(tmp_path: Path) -> None:
    rows = [["2026年11月 調査"], [], HEADER]
    rows += [[str(i), "2026/11/05 10:00", ["9", "", "11", "x"][i % 4], f"理由{i}", "プロ"] for i in range(40)]
    path = write_csv(tmp_path / "dry.csv", rows, encoding="cp932")
    report = sniff(path, preview_rows=3)
    json.dumps(report)  # plain JSON types only
    assert (report["format"], report["encoding"], report["delimiter"]) == ("csv", "cp932", ",")
    assert (report["header_row"], report["data_starts_at"]) == (3, 4)
    assert report["columns"] == HEADER
    assert report["mapping"]["score"] == "推奨度"
    assert [p["row"] for p in report["preview"]] == [4, 5, 6]
    assert report["preview"][0]["date"] == "2026-11-05T10:00:00"
    problems = report["problems"]
    assert problems["rows"] == 40
    assert problems["blank_scores"] == 10
    assert problems["issue_count"] == problems["rows_with_issues"] == 20
    assert problems["issues_by_column"] == {"推奨度": 20}
    assert len(problems["issues"]) == 20
    assert problems["issues"][0] == {
        "file": "dry.csv",
        "row": 6,
        "column": "推奨度",
        "value": "11",
        "message": "推奨度は0〜10の整数で入力してください（値: 11）",
    }
    assert problems["error"] is None


def test_sniff_reports_a_late_encoding_error_instead_of_raising(tmp_path: Path) -> None:
    lines = ["ID,推奨度,理由"] + [f"{i},9,良い" for i in range(1, 700)]
    path = tmp_path / "late.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode() + "悪い".encode("cp932") + b"\n")
    report = sniff(path, encoding="utf-8")
    assert report["problems"]["rows"] == 699
    assert report["problems"]["error"]["row"] == 701
    assert "--encoding" in report["problems"]["error"]["message"]


# ----------------------------------------------------------------------------- streaming


def _big_csv(path: Path, n: int) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for i in range(n):
            writer.writerow(
                [str(i), "2026/11/05 10:23", str(i % 11), f"とても使いやすいです。番号{i}", "プロ"]
            )
    return path


def test_first_row_comes_without_reading_the_whole_file(tmp_path: Path) -> None:
    path = _big_csv(tmp_path / "big.csv", 100_000)
    # A byte that cannot be decoded at the very end: reaching it would raise.
    with path.open("ab") as fh:
        fh.write(b"\xff\xfe,9,x\n")
    tracemalloc.start()
    try:
        _, rows = read_survey(path, encoding="utf-8")
        first = next(rows)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert first.row == 2
    assert peak < 3 * 1024 * 1024, peak  # the file is ~6 MB
    with pytest.raises(EncodingError):
        for _ in rows:
            pass


def test_memory_stays_flat_while_streaming(tmp_path: Path) -> None:
    path = _big_csv(tmp_path / "big.csv", 20_000)
    _, rows = read_survey(path)
    tracemalloc.start()
    try:
        count = sum(1 for _ in rows)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 20_000
    assert peak < 1024 * 1024, peak  # holding the rows would take ~20 MB


def test_an_unconsumed_iterator_holds_no_open_file(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "survey.csv", [HEADER, *ROWS])
    _, rows = read_survey(path)
    del rows
    _, rows = read_survey(path)
    assert next(rows).row == 2
    del rows  # abandoned mid-way: the generator closes its file (warnings are errors in this suite)
    gc.collect()
    xlsx = write_xlsx(tmp_path / "s.xlsx", {"Sheet1": [HEADER, [1, "2026/11/05", 9, "良い", "プロ"]] * 3})
    _, rows = read_survey(xlsx)
    assert next(rows).score == 9
    del rows
    gc.collect()


def test_xlsx_formula_without_a_cached_value_is_reported_not_blank(tmp_path: Path) -> None:
    """A workbook written by a program (here openpyxl) stores formulas without their results; the cached
    value reads as empty. The cell is reported with its formula, kept in the row, and not read as an answer."""
    path = write_xlsx(
        tmp_path / "generated.xlsx",
        {
            "回答": [
                ["推奨度", "理由"],
                [9, "とても良い"],
                ["=4+5", '="配送が"&"遅い"'],
                [3, "遅い"],
            ]
        },
    )
    info, rows = read_all(path)
    assert info.mapping.score == "推奨度" and info.mapping.texts == ["理由"]
    assert [r.score for r in rows] == [9, None, 3]
    assert rows[1].texts == {} and rows[1].original == {"推奨度": "=4+5", "理由": '="配送が"&"遅い"'}
    issues = [(i.row, i.column, i.value) for i in rows[1].issues]
    assert issues == [(3, "推奨度", "=4+5"), (3, "理由", '="配送が"&"遅い"')]
    assert "数式の計算結果" in rows[1].issues[0].message
    assert rows[0].issues == [] and rows[2].issues == []


def test_xlsx_without_formulas_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.ingest import tables

    path = write_xlsx(tmp_path / "plain.xlsx", {"回答": [["推奨度", "理由"], [9, "料金=高い <f> ではない"]]})
    assert not tables._has_formulas(path)
    opened: list[bool] = []
    real_open = tables.XlsxTable._open

    def counting(self: Any, *, data_only: bool = True) -> Any:
        opened.append(data_only)
        return real_open(self, data_only=data_only)

    monkeypatch.setattr(tables.XlsxTable, "_open", counting)
    _, rows = read_all(path)
    assert False not in opened and rows[0].issues == []
