"""Reading one cell: the score, the date, and the text a spreadsheet value stands for.

Scores arrive as respondents and survey tools write them: ``9``, `` 9 ``, ``１０``, ``10点``, ``9.0``,
``10 - Extremely likely`` (Qualtrics choice text), ``7（どちらでもない）``. Anything else is a
:class:`CellError` whose message a CX analyst can act on; the caller turns it into a ``RowIssue``.

Dates arrive as ISO 8601 (with or without an offset), ``2026/11/05 10:23``, ``2026年11月5日(木)``,
``令和8年11月5日``, US ``11/05/2026 10:23:45 AM`` (SurveyMonkey, English Google Forms) and, in XLSX
files, as datetimes or Excel serial numbers. Naive values are Asia/Tokyo wall-clock time and stay naive;
values with an offset are converted to Tokyo time and made naive, so that every date compares alike.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from datetime import UTC, date, datetime, time, timedelta, timezone

from pipelines.nps import Metric

__all__ = ["JST", "SCORE_LABELS", "CellError", "cell_text", "looks_like_date", "parse_date", "parse_score"]

# Japan has had no daylight saving time since 1951, so a fixed offset is exact (and needs no tzdata).
JST = timezone(timedelta(hours=9), "Asia/Tokyo")

# What the score is called in messages, per metric.
SCORE_LABELS: dict[str, str] = {"nps": "推奨度", "csat": "満足度", "ces": "CES（顧客努力）のスコア"}


class CellError(ValueError):
    """One cell's value cannot be read; ``str()`` is the message for the analyst."""


# --------------------------------------------------------------------------- spreadsheet values as text


def cell_text(value: object) -> str:
    """The text of a spreadsheet value as a user reads it (integral numbers without ``.0``)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, datetime):
        if value.time() == time(0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds" if not value.microsecond else "auto")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


# --------------------------------------------------------------------------- scores

# An integer, optionally ".0", optionally 点, optionally followed by a label without digits:
# "10 - Extremely likely", "0（全く思わない）", "7: どちらでもない".
_SCORE = re.compile(r"(\d{1,3})(?:\.0+)?\s*点?\s*(?:[-:(/|]\s*[^\d]*|\s+[^\d]*)?")


def parse_score(value: object, metric: Metric) -> int | None:
    """The integer score in ``value``, or ``None`` for a blank cell (no answer; not an error).

    Raises :class:`CellError` for anything that is not an integer on the metric's scale.
    """
    if value is None:
        return None
    lo, hi = metric.scale
    if isinstance(value, bool):
        raise CellError(_score_message(metric, cell_text(value)))
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
            raise CellError(_score_message(metric, cell_text(value)))
        number = int(value)
        if lo <= number <= hi:
            return number
        raise CellError(_score_message(metric, cell_text(value)))
    if not isinstance(value, str):
        raise CellError(_score_message(metric, cell_text(value)))
    text = value.strip()
    if not text:
        return None
    folded = unicodedata.normalize("NFKC", text).replace("（", "(").strip()
    match = _SCORE.fullmatch(folded)
    if match:
        number = int(match.group(1))
        if lo <= number <= hi:
            return number
    raise CellError(_score_message(metric, text))


def _score_message(metric: Metric, shown: str) -> str:
    lo, hi = metric.scale
    label = SCORE_LABELS.get(metric.name, "スコア")
    return f"{label}は{lo}〜{hi}の整数で入力してください（値: {shown}）"


# --------------------------------------------------------------------------- dates

_ERAS = {"令和": 2018, "R": 2018, "平成": 1988, "H": 1988, "昭和": 1925, "S": 1925}
_WEEKDAY = re.compile(
    r"\(\s*[月火水木金土日](?:曜日?)?\s*\)|[月火水木金土日]曜日?|"
    r"\b(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\b\.?,?",
    re.IGNORECASE,
)
# The time part, after the date: "10:23", "10:23:45.123", "10時23分", "午後3:05", "10:23:45 AM", "+09:00".
_TIME = re.compile(
    r"(?P<ampm1>午前|午後|am|pm)?\s*(?P<h>\d{1,2})\s*(?:[:時]\s*(?P<m>\d{1,2})?\s*分?"
    r"(?:\s*:?\s*(?P<s>\d{1,2})(?:\.(?P<f>\d{1,6}))?\s*秒?)?)?"
    r"\s*(?P<ampm2>午前|午後|am|pm)?\s*(?P<tz>z|[+-]\d{2}:?\d{2}|jst|utc|gmt)?",
    re.IGNORECASE,
)
# date, then the time after a space, a "T" or 日 ("2026年11月5日10時23分")
_YMD = re.compile(
    r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})(?:\s*日)?(?:(?:\s+|\s*[tT]\s*|(?<=日))(.*))?"
)
_MDY = re.compile(r"(\d{1,2})\s*/\s*(\d{1,2})\s*/\s*(\d{4})(?:\s+(.*))?")
_ERA_DATE = re.compile(
    r"(令和|平成|昭和|[RHS])\s*(\d{1,2}|元)\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:\s+(.*))?"
)
_EXCEL_SERIAL_MAX = 2958465  # 9999-12-31


def parse_date(value: object, *, epoch: datetime | None = None) -> datetime | None:
    """A naive Tokyo-time datetime, or ``None`` for a blank cell; raises :class:`CellError` otherwise.

    ``epoch``: the workbook's date system when ``value`` comes from an XLSX cell; numbers are then
    Excel serial day numbers. Numbers from text files are never read as serials.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return _naive_tokyo(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, int | float) and not isinstance(value, bool) and epoch is not None:
        if 0 < value <= _EXCEL_SERIAL_MAX:
            from openpyxl.utils.datetime import from_excel

            converted = from_excel(value, epoch=epoch)
            if isinstance(converted, datetime):
                return converted
        raise CellError(_date_message(cell_text(value)))
    text = cell_text(value).strip()
    if not text:
        return None
    parsed = _parse_date_text(text)
    if parsed is None:
        raise CellError(_date_message(text))
    return parsed


def looks_like_date(value: object) -> bool:
    """True for a datetime, or a text that parses as a date and is not just digits (for column detection)."""
    if isinstance(value, datetime | date):
        return True
    if not isinstance(value, str):
        return False
    text = value.strip()
    if not text or text.isdigit():
        return False
    return _parse_date_text(text) is not None


def _date_message(shown: str) -> str:
    return f"日付として読み取れません（値: {shown}）。2026/11/05 10:23 や 2026-11-05 のような形式で入力してください"


def _naive_tokyo(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(JST).replace(tzinfo=None)


@functools.lru_cache(maxsize=4096)  # a date column repeats its days; keeps 1M-row files quick
def _parse_date_text(text: str) -> datetime | None:
    # fast path: ISO 8601, and Excel's zero-padded 2026/11/05 10:23 read as ISO
    for candidate in (text, text.replace("/", "-")):
        try:
            return _naive_tokyo(datetime.fromisoformat(candidate))
        except ValueError:
            pass
    folded = unicodedata.normalize("NFKC", text)
    folded = _WEEKDAY.sub(" ", folded).strip().rstrip(",").strip()
    try:
        if m := _YMD.fullmatch(folded):
            return _with_time(int(m[1]), int(m[2]), int(m[3]), m[4])
        if m := _ERA_DATE.fullmatch(folded):
            year = _ERAS[m[1]] + (1 if m[2] == "元" else int(m[2]))
            return _with_time(year, int(m[3]), int(m[4]), m[5])
        if m := _MDY.fullmatch(folded):
            first, second = int(m[1]), int(m[2])
            # US exports write month/day/year; a first number over 12 can only be a day.
            month, day = (second, first) if first > 12 else (first, second)
            return _with_time(int(m[3]), month, day, m[4])
    except ValueError:  # e.g. 2026/02/30
        return None
    return None


def _with_time(year: int, month: int, day: int, rest: str | None) -> datetime | None:
    base = datetime(year, month, day)
    rest = (rest or "").strip()
    if not rest:
        return base
    m = _TIME.fullmatch(rest)
    if not m:
        return None
    hour = int(m["h"])
    minute = int(m["m"] or 0)
    second = int(m["s"] or 0)
    micro = int((m["f"] or "0").ljust(6, "0"))
    ampm = (m["ampm1"] or m["ampm2"] or "").lower()
    if ampm:
        if not 1 <= hour <= 12 and not (hour == 0 and ampm in ("am", "午前")):
            return None
        if ampm in ("pm", "午後") and hour < 12:
            hour += 12
        elif ampm in ("am", "午前") and hour == 12:
            hour = 0
    result = base.replace(hour=hour, minute=minute, second=second, microsecond=micro)
    tz = (m["tz"] or "").lower()
    if tz in ("", "jst"):
        return result
    if tz in ("z", "utc", "gmt"):
        return _naive_tokyo(result.replace(tzinfo=UTC))
    sign = 1 if tz[0] == "+" else -1
    digits = tz[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return _naive_tokyo(result.replace(tzinfo=timezone(sign * offset)))
