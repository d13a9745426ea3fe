"""Writing ``rows.csv`` and ``errors.csv``: every input row, original columns first, safe for Excel.

Cells that a spreadsheet would run as a formula (starting with = + - @, or a tab/CR) are prefixed
with an apostrophe (OWASP's CSV-injection advice); the original value is otherwise unchanged.
Files are UTF-8 with BOM so Excel on Japanese Windows opens them without mojibake.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from pipelines.errors import RowIssue
from pipelines.records import SurveyRow, TextResult

__all__ = ["ERROR_COLUMNS", "RowsWriter", "neutralize_formula", "write_errors"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
ERROR_COLUMNS = ["file", "row", "column", "value", "message"]


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
        extra.append("koe_issues")
        self._columns = columns
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
        self._writer.writerow([neutralize_formula(c) for c in cells])

    def close(self) -> None:
        self._fh.close()


def write_errors(path: Path, issues: Iterable[RowIssue]) -> int:
    n = 0
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(ERROR_COLUMNS)
        for issue in issues:
            writer.writerow(
                [
                    neutralize_formula(v)
                    for v in (issue.file, issue.row, issue.column, issue.value, issue.message)
                ]
            )
            n += 1
    return n
