"""Writing ``rows.csv`` and ``errors.csv``: every input row, original columns first, safe for Excel.

Cells that a spreadsheet would run as a formula (starting with = + - @, or a tab/CR) are prefixed
with an apostrophe (OWASP's CSV-injection advice); the original value is otherwise unchanged.
Files are UTF-8 with BOM so Excel on Japanese Windows opens them without mojibake.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from pipelines.errors import RowIssue
from pipelines.records import SurveyRow, TextResult

__all__ = [
    "ERROR_COLUMNS",
    "EXTRA_CELLS_COLUMN",
    "ErrorsWriter",
    "RowsTable",
    "RowsWriter",
    "neutralize_formula",
    "write_rows_xlsx",
]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
ERROR_COLUMNS = ["file", "row", "column", "value", "message"]
EXTRA_CELLS_COLUMN = "koe_extra_cells"  # cells beyond the header (JSON), so a ragged row loses nothing


def neutralize_formula(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


class RowsTable:
    """The cells of ``rows.csv`` and the XLSX export: original columns, then koe's columns per question.

    Every cell is already neutralised against formula injection.
    """

    def __init__(self, columns: list[str], questions: list[str], *, group_column: bool) -> None:
        self.questions = questions
        self._columns = columns
        self._known = set(columns)
        self._group_column = group_column
        extra = ["koe_row"]
        if group_column:
            extra.append("koe_group")
        for q in questions:
            extra += [
                f"koe_sentiment[{q}]",
                f"koe_themes[{q}]",
                f"koe_theme_sentiment[{q}]",
                f"koe_needs_review[{q}]",
            ]
        extra += ["koe_issues", EXTRA_CELLS_COLUMN]
        self.header = [neutralize_formula(c) for c in [*columns, *extra]]

    def cells(self, row: SurveyRow, answers: dict[str, TextResult], group: str | None) -> list[str]:
        cells = [row.original.get(c, "") for c in self._columns]
        cells.append(str(row.row))
        if self._group_column:
            cells.append(group or "")
        for q in self.questions:
            res = answers.get(q)
            if res is None:
                cells += ["", "", "", ""]
                continue
            cells += [
                res.sentiment,
                "|".join(t.label for t in res.themes),
                "|".join(f"{t.label}:{t.sentiment}" for t in res.themes),
                "true" if res.needs_review else "false",
            ]
        cells.append(" / ".join(f"{i.column or ''}: {i.message}" for i in row.issues))
        spill = {k: v for k, v in row.original.items() if k not in self._known}
        cells.append(json.dumps(spill, ensure_ascii=False) if spill else "")
        return [neutralize_formula(c) for c in cells]


class RowsWriter:
    """Streams ``rows.csv`` (UTF-8 with BOM when given a path) to a file or an open text stream."""

    def __init__(
        self, target: Path | IO[str], columns: list[str], questions: list[str], *, group_column: bool
    ) -> None:
        self.table = RowsTable(columns, questions, group_column=group_column)
        self.questions = questions
        self._own = isinstance(target, Path)
        self._fh: IO[str] = (
            target.open("w", encoding="utf-8-sig", newline="") if isinstance(target, Path) else target
        )
        self._writer = csv.writer(self._fh)
        self._writer.writerow(self.table.header)

    def write(self, row: SurveyRow, answers: dict[str, TextResult], group: str | None) -> None:
        self._writer.writerow(self.table.cells(row, answers, group))

    def close(self) -> None:
        if self._own:
            self._fh.close()


def write_rows_xlsx(
    path: Path,
    table: RowsTable,
    rows: Iterable[tuple[SurveyRow, dict[str, TextResult], str | None]],
    *,
    sheet: str = "rows",
) -> Path:
    """The same table as ``rows.csv`` as an XLSX sheet (write-only, so memory stays flat)."""
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    def safe(cells: list[str]) -> list[str]:
        # XLSX cannot hold most control characters; write them as visible escapes rather than drop them
        return [ILLEGAL_CHARACTERS_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", c) for c in cells]

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet)
    ws.append(safe(table.header))
    for row, answers, group in rows:
        ws.append(safe(table.cells(row, answers, group)))
    wb.save(path)
    return path


class ErrorsWriter:
    """Streams ``errors.csv``: one line per row issue, as they are found (memory stays flat)."""

    def __init__(self, path: Path) -> None:
        self._fh: IO[str] = path.open("w", encoding="utf-8-sig", newline="")
        self._writer = csv.writer(self._fh)
        self._writer.writerow(ERROR_COLUMNS)
        self.count = 0

    def write(self, issues: Iterable[RowIssue]) -> None:
        for issue in issues:
            values = (issue.file, issue.row, issue.column, issue.value, issue.message)
            self._writer.writerow([neutralize_formula(v) for v in values])
            self.count += 1

    def close(self) -> None:
        self._fh.close()
