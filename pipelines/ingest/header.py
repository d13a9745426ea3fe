"""Where the header is, which rows around it belong to it, and the column names it gives.

* Title rows above the header ("2026年11月 顧客満足度調査", an export date, a blank line) are skipped:
  the header is the first row that fills at least half of the table's usual width (and two cells), and
  is not mostly numbers or dates.
* Qualtrics writes three header rows: short ids (``StartDate``, ``Q1``, ``Q1_NPS_GROUP``), question texts,
  and ``{"ImportId": …}``. The question texts are the header (the short ids stay as aliases, for detection
  and for ``mapping``); the ImportId row is skipped.
* SurveyMonkey writes two: question texts, then sub-headers (``Response``, ``Open-Ended Response``, or one
  choice per column for multiple-answer questions). Sub-headers that only say "response" are dropped;
  real ones are appended to their question ("Q - Other (please specify)").
* Names are stripped; a blank name becomes ``列N`` (N = the column's position) and duplicates get
  ``_2``, ``_3`` … so that every column has one unique name. Empty columns right of the last named one
  are not columns (Excel leaves trailing delimiters).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pipelines.errors import EmptyFileError
from pipelines.ingest.tables import RawRecord
from pipelines.ingest.values import looks_like_date

__all__ = ["HeaderLayout", "locate_header", "positional_name", "unique_names"]

_SUBHEADER_MARKERS = frozenset(
    {"response", "open-ended response", "回答", "自由回答", "自由記述", "自由記述回答", "回答（自由記述）"}
)


@dataclass
class HeaderLayout:
    header_row: int  # Excel row of the header (the question-text row for Qualtrics)
    data_start: int  # first Excel row that can hold data
    columns: list[str]
    aliases: dict[str, str] = field(default_factory=dict)  # column -> the export's short id (Qualtrics)
    source: Literal["plain", "qualtrics", "surveymonkey"] = "plain"
    title: list[str] = field(default_factory=list)  # text of the rows above the header
    header_cells: int = 0  # cells in the header row(s), named or blank

    def widen(self, data: Iterable[RawRecord]) -> None:
        """Name the blank-header columns that hold data (``列N``); right of the header row there are none.

        A blank header cell with values under it is a column without a name. Values beyond the header
        row's last cell are extra cells of their row (the reader reports them).
        """
        used = len(self.columns)
        for rec in data:
            used = max(used, _width(rec.cells[: self.header_cells]))
        if used > len(self.columns):
            # already-unique names pass through unique_names unchanged; the new blanks get 列N
            self.columns = unique_names([*self.columns, *[""] * (used - len(self.columns))])


def positional_name(position: int) -> str:
    """The name of an unnamed column at 1-based ``position``."""
    return f"列{position}"


def unique_names(raw: Sequence[str]) -> list[str]:
    names = [cell.strip().lstrip("\ufeff").strip() or positional_name(i) for i, cell in enumerate(raw, 1)]
    taken = Counter(names)
    seen: dict[str, int] = {}
    out = []
    for name in names:
        k = seen.get(name, 0) + 1
        seen[name] = k
        if k == 1:
            out.append(name)
            continue
        candidate = f"{name}_{k}"
        while candidate in taken:
            k += 1
            candidate = f"{name}_{k}"
        seen[name] = k
        taken[candidate] += 1
        out.append(candidate)
    return out


def _filled(cells: Iterable[str]) -> list[str]:
    return [c for c in cells if c.strip()]


def _width(cells: Sequence[str]) -> int:
    for i in range(len(cells) - 1, -1, -1):
        if cells[i].strip():
            return i + 1
    return 0


def _looks_like_data(cell: str) -> bool:
    text = cell.strip().replace(",", "")
    try:
        float(text)
    except ValueError:
        return looks_like_date(text)
    return True


def locate_header(records: Sequence[RawRecord], file: str) -> HeaderLayout:
    """The header layout, from the first records of the file (blank ones included)."""
    filled = [(i, rec) for i, rec in enumerate(records) if _filled(rec.cells)]
    if not filled:
        raise EmptyFileError("ファイルに見出し行もデータもありません（空のファイルです）", file=file)
    widths = [_width(rec.cells) for _, rec in filled if len(_filled(rec.cells)) >= 2]
    if widths:
        counts = Counter(widths)
        typical = max(counts, key=lambda w: (counts[w], w))
        need = max(2, math.ceil(typical / 2))
    else:
        need = 1
    candidates = [(i, rec) for i, rec in filled if len(_filled(rec.cells)) >= need]
    header_at, header = next(
        (
            (i, rec)
            for i, rec in candidates
            if sum(map(_looks_like_data, _filled(rec.cells))) <= len(_filled(rec.cells)) / 2
        ),
        candidates[0] if candidates else filled[0],
    )
    title = [" ".join(c.strip() for c in _filled(rec.cells)) for i, rec in filled if i < header_at]
    nxt = records[header_at + 1] if header_at + 1 < len(records) else None
    after = records[header_at + 2] if header_at + 2 < len(records) else None

    if after is not None and nxt is not None and _is_import_id_row(after.cells):
        texts = [t if t.strip() else s for t, s in _pairs(nxt.cells, header.cells)]
        return _layout(texts, header.cells, nxt.row, after.row + 1, "qualtrics", title)
    if nxt is not None and _is_import_id_row(nxt.cells):  # the question-text row was deleted
        return _layout(header.cells, header.cells, header.row, nxt.row + 1, "qualtrics", title)
    if nxt is not None and _is_subheader_row(nxt.cells):
        merged = _merge_subheaders(header.cells, nxt.cells)
        return _layout(merged, [], header.row, nxt.row + 1, "surveymonkey", title)
    return _layout(header.cells, [], header.row, header.row + 1, "plain", title)


def _pairs(a: Sequence[str], b: Sequence[str]) -> list[tuple[str, str]]:
    n = max(len(a), len(b))
    return [(a[i] if i < len(a) else "", b[i] if i < len(b) else "") for i in range(n)]


def _is_import_id_row(cells: Sequence[str]) -> bool:
    return any(c.lstrip().startswith('{"ImportId"') for c in cells)


def _is_subheader_row(cells: Sequence[str]) -> bool:
    # Data rows start with the respondent id and hold scores; the sub-header row starts blank and has none.
    return (
        bool(cells)
        and not cells[0].strip()
        and any(c.strip().lower() in _SUBHEADER_MARKERS for c in cells)
        and not any(_looks_like_data(c) for c in _filled(cells))
    )


def _merge_subheaders(top: Sequence[str], sub: Sequence[str]) -> list[str]:
    merged = []
    question = ""
    for t, s in _pairs(top, sub):
        t, s = t.strip(), s.strip()
        if t:
            question = t
        if not s or (t and s.lower() in _SUBHEADER_MARKERS):
            merged.append(t)
        elif t:
            merged.append(f"{t} - {s}")
        else:
            merged.append(f"{question} - {s}" if question else s)
    return merged


def _layout(
    names: Sequence[str],
    short_ids: Sequence[str],
    header_row: int,
    data_start: int,
    source: Literal["plain", "qualtrics", "surveymonkey"],
    title: list[str],
) -> HeaderLayout:
    width = max(_width(names), _width(short_ids))
    columns = unique_names(list(names[:width]) + [""] * (width - len(names)))
    aliases = {
        col: short.strip()
        for col, short in zip(columns, short_ids, strict=False)
        if short.strip() and short.strip() != col
    }
    cells = max(len(names), len(short_ids))
    return HeaderLayout(header_row, data_start, columns, aliases, source, title, cells)
