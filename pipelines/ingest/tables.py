"""The file as a table of raw records: which format it is, and its rows as text, streamed.

The format comes from the content, never the extension: a ZIP (``PK``) is XLSX, an OLE2 compound file
is a legacy ``.xls`` (or a password-protected workbook) and an HTML page is an "Excel" export from a web
tool; both are refused with what to do instead. Everything else is delimited text; its delimiter
(``,``, tab or ``;``) is the one that splits the first records into the most consistent number of cells.

A record's ``row`` is the row number Excel shows for it: one per CSV record (a quoted cell with line
breaks stays one row, numbered where it starts) and blank lines count, as they do in Excel.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal

from pipelines.errors import EmptyFileError, EncodingError, InputError
from pipelines.ingest.encoding import (
    SAMPLE_BYTES,
    VERIFY_BYTES,
    UndecodableLine,
    decoded_lines,
    detect_file_encoding,
    resolve_encoding,
)
from pipelines.ingest.values import cell_text

__all__ = ["CsvTable", "RawRecord", "Table", "UncachedFormula", "XlsxTable", "open_table", "sniff_delimiter"]

DELIMITERS = (",", "\t", ";")
_SNIFF_RECORDS = 100
# Sheet names that say "this is the response data" (Google Forms writes "フォームの回答 1").
_DATA_SHEET_WORDS = ("回答", "データ", "結果", "data", "response", "result", "raw", "export")


@dataclass(frozen=True, slots=True)
class UncachedFormula:
    """A formula cell whose workbook holds no computed value: files written by a program (openpyxl,
    pandas, some survey tools) rather than saved by Excel. Its text is the formula; the reader reports it."""

    formula: str


@dataclass(slots=True)
class RawRecord:
    """One record of the file: its Excel row number and its cells as text (and typed, for XLSX)."""

    row: int
    cells: list[str]
    values: list[Any] | None = None  # typed spreadsheet values parallel to ``cells``; None for text files


class Table:
    """A readable table; :meth:`records` opens the file anew on each call and streams it."""

    file: str
    format: Literal["csv", "tsv", "xlsx"]
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    epoch: datetime | None = None  # XLSX date system, for Excel serial numbers

    def records(self) -> Generator[RawRecord, None, None]:
        raise NotImplementedError


def open_table(path: Path, file: str, encoding: str | None) -> Table:
    with path.open("rb") as fh:
        # the larger head only when the encoding has to be detected (and checked)
        head = fh.read(SAMPLE_BYTES if encoding else VERIFY_BYTES)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return XlsxTable(path, file)
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        raise InputError(
            "Excel 97-2003 形式（.xls）か、パスワード付きのブックは読めません。"
            "Excel で「Excel ブック（.xlsx）」か「CSV UTF-8」として保存し直してください",
            file=file,
        )
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if stripped.startswith((b"<!doctype html", b"<html", b"<table")):
        raise InputError(
            "HTML ファイルです（Web ツールが出力する「Excel 形式」によくあります）。"
            "Excel で開き、CSV か .xlsx として保存し直してください",
            file=file,
        )
    enc = resolve_encoding(encoding) if encoding else detect_file_encoding(head)
    text = head[:SAMPLE_BYTES].decode(_codec(enc), errors="replace")
    if len(head) > SAMPLE_BYTES:
        text = text[: max(text.rfind("\n"), 0)]  # the last line may be cut
    delimiter = sniff_delimiter(text, prefer_tab=path.suffix.lower() in (".tsv", ".tab"))
    return CsvTable(path, file, enc, delimiter)


def _codec(encoding: str) -> str:
    return "utf-8-sig" if encoding == "utf-8" else encoding


def sniff_delimiter(text: str, *, prefer_tab: bool = False) -> str:
    """The delimiter that gives the first records the most consistent number of cells (2 or more)."""
    best: tuple[float, int, int] | None = None
    choice = "\t" if prefer_tab else ","
    for rank, delimiter in enumerate(DELIMITERS):
        widths = []
        try:
            for cells in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
                if any(c.strip() for c in cells):
                    widths.append(len(cells))
                if len(widths) >= _SNIFF_RECORDS:
                    break
        except csv.Error:
            continue
        if not widths:
            continue
        width, count = Counter(widths).most_common(1)[0]
        if width < 2:
            continue
        preferred = 1 if (delimiter == "\t") == prefer_tab else 0
        key = (round(count / len(widths), 1), preferred, -rank)
        if best is None or key > best:
            best, choice = key, delimiter
    return choice


# --------------------------------------------------------------------------- delimited text


class CsvTable(Table):
    def __init__(self, path: Path, file: str, encoding: str, delimiter: str) -> None:
        self.path = path
        self.file = file
        self.encoding = self._codec = encoding
        self.delimiter = self._delimiter = delimiter
        self.format = "tsv" if delimiter == "\t" else "csv"

    def records(self) -> Generator[RawRecord, None, None]:
        lines = decoded_lines(self.path, self._codec)
        reader = csv.reader(lines, delimiter=self._delimiter)
        row = 0
        try:
            for cells in reader:
                row += 1
                yield RawRecord(row, cells)
        except UndecodableLine as exc:
            where = "" if exc.line == row + 1 else f"（テキストエディタでは{exc.line}行目）"
            others = ", ".join(e for e in ("cp932", "utf-8", "euc-jp") if e != self._codec)
            raise EncodingError(
                f"文字コード {self._codec} として読めないバイトがあります{where}。"
                f"ファイルは別の文字コードで保存されているかもしれません。"
                f"--encoding で文字コードを指定してください（例: {others}）",
                file=self.file,
                row=row + 1,
                value=exc.bad_bytes,
            ) from None
        except csv.Error as exc:
            raise InputError(
                f'CSV として読めません（{exc}）。この行から始まるセルの引用符（"）が閉じられていない可能性があります',
                file=self.file,
                row=row + 1,
            ) from exc
        finally:
            lines.close()


# --------------------------------------------------------------------------- XLSX


class XlsxTable(Table):
    format: Literal["csv", "tsv", "xlsx"] = "xlsx"

    def __init__(self, path: Path, file: str) -> None:
        self.path = path
        self.file = file
        wb, fh = self._open()
        try:
            if not wb.worksheets:
                raise EmptyFileError("ブックにワークシートがありません", file=file)
            self.sheet = _choose_sheet(wb)
            self.epoch = wb.epoch
        finally:
            wb.close()
            fh.close()
        self.has_formulas = _has_formulas(path)

    def _open(self, *, data_only: bool = True) -> tuple[Any, BinaryIO]:
        """The workbook (read-only; cached values, or formulas) and the file handle it reads from; close both."""
        from openpyxl import load_workbook

        # A handle, not the path: openpyxl refuses paths whose extension is not .xlsx, and the content decides.
        fh = self.path.open("rb")
        try:
            with warnings.catch_warnings():
                # openpyxl warns about styles, data validation and extensions it drops; none of it matters here.
                warnings.simplefilter("ignore")
                return load_workbook(fh, read_only=True, data_only=data_only), fh
        except Exception as exc:  # zipfile.BadZipFile, KeyError, InvalidFileException, XML errors …
            fh.close()
            raise InputError(
                f"Excel ブック（.xlsx）として開けません（{type(exc).__name__}: {exc}）。"
                "Excel で開けるか確かめ、CSV として保存し直してください",
                file=self.file,
            ) from exc

    def records(self) -> Generator[RawRecord, None, None]:
        """Rows of cached values. A workbook with formulas is read a second time, in step, for its formulas:
        a formula cell without a cached value becomes an ``UncachedFormula`` instead of a silent blank."""
        wb, fh = self._open()
        formulas = self._open(data_only=False) if self.has_formulas else None
        try:
            ws = wb[self.sheet]
            ws.reset_dimensions()  # some writers record a wrong used range; read every row there is
            raw_rows = None
            if formulas is not None:
                raw_ws = formulas[0][self.sheet]
                raw_ws.reset_dimensions()
                raw_rows = raw_ws.iter_rows(values_only=True)
            for row, values in enumerate(ws.iter_rows(values_only=True), start=1):
                typed = [_plain_number(v) for v in values]
                if raw_rows is not None:
                    raw = next(raw_rows, ())
                    for j, value in enumerate(typed):
                        formula = _formula_text(raw[j]) if value is None and j < len(raw) else None
                        if formula:
                            typed[j] = UncachedFormula(formula)
                cells = [v.formula if isinstance(v, UncachedFormula) else cell_text(v) for v in typed]
                yield RawRecord(row, cells, typed)
        finally:
            wb.close()
            fh.close()
            if formulas is not None:
                formulas[0].close()
                formulas[1].close()


def _formula_text(raw: Any) -> str | None:
    """The formula of a cell read with ``data_only=False`` (a string starting with ``=``, or an array formula)."""
    text = raw if isinstance(raw, str) else getattr(raw, "text", None)
    return text if isinstance(text, str) and text.startswith("=") else None


_FORMULA_TAG = re.compile(rb"<(?:\w+:)?f[ >/]")


def _has_formulas(path: Path) -> bool:
    """Whether any worksheet holds a formula (an ``<f>`` element): a byte scan of the decompressed sheets,
    so workbooks without formulas are parsed once."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if not (name.startswith("xl/worksheets/") and name.endswith(".xml")):
                continue
            with z.open(name) as fh:
                tail = b""
                while chunk := fh.read(1 << 20):
                    if _FORMULA_TAG.search(tail + chunk):
                        return True
                    tail = chunk[-32:]
    return False


def _plain_number(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


def _choose_sheet(wb: Any) -> str:
    """A non-empty sheet named like response data, else the first sheet with a table, else the first non-empty."""
    first_nonempty: str | None = None
    first_table: str | None = None
    named: str | None = None
    for ws in wb.worksheets:
        ws.reset_dimensions()
        widths = []
        for values in ws.iter_rows(max_row=50, values_only=True):
            widths.append(sum(1 for v in values if v is not None and str(v).strip()))
        if not any(widths):
            continue
        first_nonempty = first_nonempty or ws.title
        if max(widths) >= 2:
            first_table = first_table or ws.title
            if named is None and any(w in ws.title.lower() for w in _DATA_SHEET_WORDS):
                named = ws.title
    chosen = named or first_table or first_nonempty
    return chosen if chosen is not None else wb.worksheets[0].title
