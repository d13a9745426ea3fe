"""Cell-level reading (scores, dates, spreadsheet text) and encoding detection of ``pipelines.ingest``."""

from datetime import date, datetime, time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.errors import ConfigError
from pipelines.ingest import detect_encoding
from pipelines.ingest.encoding import resolve_encoding
from pipelines.ingest.values import CellError, cell_text, looks_like_date, parse_date, parse_score
from pipelines.nps import Metric, get_metric

NPS, CSAT, CES = get_metric("nps"), get_metric("csat"), get_metric("ces")

# ----------------------------------------------------------------------------- scores


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("9", 9),
        (" 9 ", 9),
        ("\u30009\u3000", 9),  # full-width spaces around
        ("１０", 10),
        ("10点", 10),
        ("１０点", 10),
        ("9.0", 9),
        ("0", 0),
        ("10 - Extremely likely", 10),  # Qualtrics choice text
        ("0 - Not at all likely", 0),
        ("7（どちらでもない）", 7),
        (9, 9),
        (9.0, 9),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_parse_score_accepts_what_respondents_and_tools_write(value: object, expected: int | None) -> None:
    assert parse_score(value, NPS) == expected


@pytest.mark.parametrize("value", ["11", "-1", "abc", "9.5", "とても", "3-4", "10/10", 11, 9.5, True, "1e1"])
def test_parse_score_rejects_with_a_message_an_analyst_understands(value: object) -> None:
    with pytest.raises(CellError) as err:
        parse_score(value, NPS)
    shown = cell_text(value)
    assert str(err.value) == f"推奨度は0〜10の整数で入力してください（値: {shown}）"


@pytest.mark.parametrize(
    ("metric", "ok", "bad", "message"),
    [
        (CSAT, ["1", "5", "５"], ["0", "6", "10"], "満足度は1〜5の整数で入力してください（値: {}）"),
        (CES, ["1", "7"], ["0", "8"], "CES（顧客努力）のスコアは1〜7の整数で入力してください（値: {}）"),
    ],
)
def test_parse_score_uses_the_metric_scale(
    metric: Metric, ok: list[str], bad: list[str], message: str
) -> None:
    for value in ok:
        assert parse_score(value, metric) is not None
    for value in bad:
        with pytest.raises(CellError, match=message.format(value).replace("(", r"\(")):
            parse_score(value, metric)


@given(st.integers(min_value=0, max_value=10))
def test_parse_score_round_trips_every_nps_value_in_any_width(score: int) -> None:
    full_width = str(score).translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert (
        parse_score(str(score), NPS)
        == parse_score(full_width, NPS)
        == parse_score(f"{score}点", NPS)
        == score
    )


# ----------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026/11/05 10:23", datetime(2026, 11, 5, 10, 23)),
        ("2026/11/5 9:05:07", datetime(2026, 11, 5, 9, 5, 7)),
        ("2026-11-05", datetime(2026, 11, 5)),
        ("2026-11-05 10:23:00", datetime(2026, 11, 5, 10, 23)),
        ("2026-11-05T10:23:00+09:00", datetime(2026, 11, 5, 10, 23)),
        ("2026-11-05T01:23:00Z", datetime(2026, 11, 5, 10, 23)),  # converted to Tokyo wall-clock
        ("2026-11-05T10:23:00-05:00", datetime(2026, 11, 6, 0, 23)),
        ("2026年11月5日", datetime(2026, 11, 5)),
        ("2026年11月5日(木) 10:23", datetime(2026, 11, 5, 10, 23)),
        ("2026年11月5日10時23分", datetime(2026, 11, 5, 10, 23)),
        ("２０２６／１１／０５", datetime(2026, 11, 5)),
        ("2026.11.05", datetime(2026, 11, 5)),
        ("令和8年11月5日", datetime(2026, 11, 5)),
        ("11/05/2026 10:23:45 AM", datetime(2026, 11, 5, 10, 23, 45)),  # SurveyMonkey
        ("11/05/2026 01:05:00 PM", datetime(2026, 11, 5, 13, 5)),
        ("11/5/2026", datetime(2026, 11, 5)),
        ("2026/11/05 午後3:05", datetime(2026, 11, 5, 15, 5)),
        ("", None),
    ],
)
def test_parse_date_formats(text: str, expected: datetime | None) -> None:
    parsed = parse_date(text)
    assert parsed == expected
    assert parsed is None or parsed.tzinfo is None  # naive = Asia/Tokyo wall-clock


@pytest.mark.parametrize(
    "text", ["あした", "2026/02/30", "2026/11/05 25:00", "46331", "11/05/26", "2026/11/051"]
)
def test_parse_date_rejects_with_a_message(text: str) -> None:
    with pytest.raises(CellError, match=r"日付として読み取れません（値: .*）"):
        parse_date(text)


def test_parse_date_reads_excel_values_only_from_spreadsheets() -> None:
    epoch = datetime(1899, 12, 30)
    assert parse_date(46331.4375, epoch=epoch) == datetime(2026, 11, 5, 10, 30)
    assert parse_date(datetime(2026, 11, 5, 10, 23)) == datetime(2026, 11, 5, 10, 23)
    assert parse_date(date(2026, 11, 5)) == datetime(2026, 11, 5)
    with pytest.raises(CellError):
        parse_date(46331)  # a number from a text file is not a date
    with pytest.raises(CellError):
        parse_date(-3, epoch=epoch)


def test_looks_like_date_ignores_plain_numbers() -> None:
    assert looks_like_date("2026/11/05")
    assert looks_like_date(datetime(2026, 11, 5))
    assert not looks_like_date("20261105")
    assert not looks_like_date("9")
    assert not looks_like_date(9)


# ----------------------------------------------------------------------------- spreadsheet text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        ("=1+1", "=1+1"),  # kept verbatim; exports neutralise formulas
        (9, "9"),
        (9.0, "9"),
        (9.5, "9.5"),
        (True, "TRUE"),
        (datetime(2026, 11, 5, 10, 23), "2026-11-05 10:23:00"),
        (datetime(2026, 11, 5), "2026-11-05"),
        (date(2026, 11, 5), "2026-11-05"),
        (time(10, 23), "10:23:00"),
    ],
)
def test_cell_text(value: object, text: str) -> None:
    assert cell_text(value) == text


# ----------------------------------------------------------------------------- encodings

JAPANESE = "回答ID,推奨度,理由\n1,9,とても使いやすいです。サポートの対応も丁寧でした。①㈱\n"


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        ("utf-8", "utf-8"),
        ("utf-8-sig", "utf-8-sig"),
        ("cp932", "cp932"),
        ("euc-jp", "euc-jp"),
        ("utf-16", "utf-16"),
        ("utf-16-le", "utf-16-le"),  # no BOM
    ],
)
def test_detect_encoding(encoding: str, expected: str) -> None:
    text = JAPANESE if encoding != "euc-jp" else JAPANESE.replace("①㈱", "")
    assert detect_encoding(text.encode(encoding)) == expected


def test_detect_encoding_prefers_natural_japanese_when_both_decode() -> None:
    # Pure hiragana in EUC-JP also decodes as CP932 (as half-width katakana); the Japanese reading wins.
    sample = "ありがとうございました\n".encode("euc-jp") * 3
    sample.decode("cp932")  # really ambiguous
    assert detect_encoding(sample) == "euc-jp"


def test_detect_encoding_tolerates_a_sample_cut_inside_a_character() -> None:
    data = ("とても良い" * 50).encode("utf-8")
    assert detect_encoding(data[:-1]) == "utf-8"
    assert detect_encoding(("とても良い" * 50).encode("cp932")[:-1]) == "cp932"


def test_detect_encoding_keeps_a_nearly_clean_file_in_its_encoding() -> None:
    # one corrupted byte must not turn a UTF-8 file into mojibake: the reader reports the bad line instead
    data = ("とても使いやすいです\n" * 30).encode("utf-8") + b"\xff\n"
    assert detect_encoding(data) == "utf-8"


def test_detect_encoding_of_ascii_and_iso2022jp() -> None:
    assert detect_encoding(b"id,score\n1,9\n") == "utf-8"
    assert detect_encoding("推奨度\n".encode("iso-2022-jp")) == "iso-2022-jp"


@pytest.mark.parametrize(
    ("name", "codec"),
    [
        ("Shift_JIS", "cp932"),
        ("sjis", "cp932"),
        ("windows-31j", "cp932"),
        ("EUC-JP", "euc-jp"),
        ("UTF8", "utf-8"),
    ],
)
def test_resolve_encoding_aliases(name: str, codec: str) -> None:
    assert resolve_encoding(name) == codec


@pytest.mark.parametrize("name", ["klingon", "base64", "rot13", "zlib", "idna", "utf\x00-8"])
def test_resolve_encoding_rejects_what_decodes_no_text(name: str) -> None:
    with pytest.raises(ConfigError, match=r"The 'encoding' parameter must be a text encoding") as info:
        resolve_encoding(name)
    assert info.value.column == "encoding" and info.value.value == name
