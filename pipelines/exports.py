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

__all__ = ["ERROR_COLUMNS", "EXTRA_CELLS_COLUMN", "ErrorsWriter", "RowsWriter", "neutralize_formula"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
ERROR_COLUMNS = ["file", "row", "column", "value", "message"]
EXTRA_CELLS_COLUMN = "koe_extra_cells"  # cells beyond the header (JSON), so a ragged row loses nothing


def neutralize_formula(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


class RowsWriter:
    """Streams ``rows.csv``: original columns, then koe's columns per question."""

    def __init__(self, path: Path, columns: list[str], questions: list[str], *, group_column: bool) -> None:
        self.path = path
        self.questions = questions
        self._fh: IO[str] = path.open("w", encoding="utf-8-sig", newline="")
        self._writer = csv.writer(self._fh)
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
        self._columns = columns
        self._known = set(columns)
        self._writer.writerow([neutralize_formula(c) for c in [*columns, *extra]])
        self._group_column = group_column

    def write(self, row: SurveyRow, answers: dict[str, TextResult], group: str | None) -> None:
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
        self._writer.writerow([neutralize_formula(c) for c in cells])

    def close(self) -> None:
        self._fh.close()


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
