"""``read_survey`` and ``sniff``: plan the read on the first rows, then stream every row.

Planning reads the first ``SAMPLE_ROWS`` data rows only: it finds the format, encoding, header and
column roles, and builds the :class:`IngestInfo`. The rows are then streamed by a generator that opens
the file again on its first ``next()`` and closes it when done, so memory stays flat in the number of
rows and nothing is left open if the caller never iterates.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, cast

from pipelines.errors import (
    ColumnError,
    ConfigError,
    EmptyFileError,
    FileTooLargeError,
    InputError,
    KoeError,
    RowIssue,
)
from pipelines.ingest.columns import detect_mapping, profile_columns, resolve_overrides
from pipelines.ingest.header import HeaderLayout, locate_header, positional_name
from pipelines.ingest.tables import RawRecord, Table, UncachedFormula, open_table
from pipelines.ingest.values import SCORE_LABELS, CellError, parse_date, parse_score
from pipelines.nps import Metric, get_metric
from pipelines.records import IngestInfo, MetricName, SurveyKind, SurveyRow

__all__ = ["PREVIEW_ISSUES", "SAMPLE_ROWS", "read_survey", "sniff"]

SAMPLE_ROWS = 500  # data rows read to detect the layout and the column roles
HEADER_RECORDS = 40  # records (title rows and blank lines included) searched for the header
PREVIEW_ISSUES = 20  # row issues listed in full by ``sniff``
KINDS = ("survey", "support")


def read_survey(
    path: str | os.PathLike[str],
    *,
    encoding: str | None = None,
    kind: SurveyKind = "survey",
    metric: MetricName = "nps",
    mapping: dict[str, Any] | None = None,
    max_bytes: int = 2 * 1024**3,
    display_name: str | None = None,
) -> tuple[IngestInfo, Iterator[SurveyRow]]:
    """What the file is, and a lazy iterator over every non-blank data row (rows with problems included).

    Raises a :class:`~pipelines.errors.KoeError` for a file that cannot be used as a whole (too large,
    empty, undecodable, unknown mapping column, no score column for a survey); later undecodable bytes
    raise :class:`~pipelines.errors.EncodingError` from the iterator. Cell problems are ``RowIssue``s.
    """
    plan = _Plan.make(path, encoding, kind, metric, mapping, max_bytes, display_name)
    if plan.info.kind == "survey" and plan.info.mapping.score is None:
        label = SCORE_LABELS.get(plan.metric.name, "スコア")
        lo, hi = plan.metric.scale
        raise ColumnError(
            f"{label}（{lo}〜{hi}）の列が見つかりません。--score-column で列名を指定してください"
            f"（スコアのない問い合わせデータなら --kind support）。列: {', '.join(plan.info.columns)}",
            file=plan.info.file,
            row=plan.layout.header_row,
        )
    return plan.info, plan.rows()


def sniff(
    path: str | os.PathLike[str],
    *,
    encoding: str | None = None,
    kind: SurveyKind = "survey",
    metric: MetricName = "nps",
    mapping: dict[str, Any] | None = None,
    max_bytes: int = 2 * 1024**3,
    display_name: str | None = None,
    preview_rows: int = 5,
) -> dict[str, Any]:
    """A dry run, as plain JSON types: what was detected, the first rows, and the problems of a full pass.

    File-level problems found while planning raise, as in :func:`read_survey`; one found later in the
    pass (undecodable bytes) is reported under ``problems.error`` with the counts up to that row.
    """
    plan = _Plan.make(path, encoding, kind, metric, mapping, max_bytes, display_name)
    info, table, layout = plan.info, plan.table, plan.layout
    warnings = []
    if info.kind == "survey" and info.mapping.score is None:
        warnings.append(
            f"{SCORE_LABELS.get(plan.metric.name, 'スコア')}の列が見つかりません（--score-column で指定してください）"
        )
    if not info.mapping.texts:
        warnings.append("自由記述の列が見つかりません（--text-column で指定してください）")

    preview: list[dict[str, Any]] = []
    listed: list[dict[str, Any]] = []
    by_column: Counter[str] = Counter()
    rows = rows_with_issues = blank_scores = issue_count = 0
    error: dict[str, Any] | None = None
    try:
        for row in plan.rows():
            rows += 1
            if len(preview) < preview_rows:
                preview.append(_row_dict(row))
            if (
                info.mapping.score
                and row.score is None
                and not row.original.get(info.mapping.score, "").strip()
            ):
                blank_scores += 1
            if row.issues:
                rows_with_issues += 1
            for issue in row.issues:
                issue_count += 1
                by_column[issue.column or ""] += 1
                if len(listed) < PREVIEW_ISSUES:
                    listed.append(issue.to_dict())
    except KoeError as err:
        error = {**err.to_dict(), "text": str(err)}
    return {
        "file": info.file,
        "format": info.format,
        "encoding": info.encoding,
        "delimiter": table.delimiter,
        "sheet": table.sheet,
        "layout": layout.source,
        "title_rows": list(layout.title),
        "header_row": info.header_row,
        "data_starts_at": layout.data_start,
        "columns": list(info.columns),
        "aliases": dict(layout.aliases),
        "kind": info.kind,
        "metric": info.metric if info.kind == "survey" else None,
        "mapping": info.mapping.to_dict(),
        "warnings": warnings,
        "preview": preview,
        "problems": {
            "rows": rows,
            "rows_with_issues": rows_with_issues,
            "blank_scores": blank_scores if info.kind == "survey" else None,
            "issue_count": issue_count,
            "issues_by_column": dict(by_column),
            "issues": listed,
            "error": error,
        },
    }


def _row_dict(row: SurveyRow) -> dict[str, Any]:
    return {
        "row": row.row,
        "original": dict(row.original),
        "score": row.score,
        "date": row.date.isoformat() if row.date else None,
        "respondent_id": row.respondent_id,
        "texts": dict(row.texts),
        "segments": dict(row.segments),
        "issues": [i.to_dict() for i in row.issues],
    }


# --------------------------------------------------------------------------- planning


@dataclass
class _Plan:
    table: Table
    layout: HeaderLayout
    info: IngestInfo
    metric: Metric

    @classmethod
    def make(
        cls,
        path: str | os.PathLike[str],
        encoding: str | None,
        kind: str,
        metric: str,
        mapping: dict[str, Any] | None,
        max_bytes: int,
        display_name: str | None,
    ) -> _Plan:
        if kind not in KINDS:
            raise ConfigError(f"The 'kind' parameter must be one of {list(KINDS)}; got {kind!r}.")
        m = get_metric(metric)
        if kind == "support" and mapping and mapping.get("score"):
            raise ConfigError(
                "kind='support' has no score column; drop the score mapping or use kind='survey'."
            )
        p = Path(path)
        file = display_name or p.name
        table = _open(p, file, encoding, max_bytes)
        head, sample = _sample(table)
        layout = locate_header(head, file)
        data = [rec for rec in sample if rec.row >= layout.data_start and _has_content(rec.cells)]
        if not data:
            raise EmptyFileError(
                f"見出し行（{layout.header_row}行目）だけで、データの行がありません", file=file
            )
        layout.widen(data)
        columns = layout.columns
        aligned = [
            [None if isinstance(v, UncachedFormula) else v for v in (rec.values or rec.cells)[: len(columns)]]
            for rec in data
        ]  # a formula without its value says nothing about the column
        profiles = profile_columns(columns, layout.aliases, aligned, m)
        overrides = resolve_overrides(mapping, columns, layout.aliases, file)
        column_mapping = detect_mapping(profiles, kind=cast(SurveyKind, kind), metric=m, overrides=overrides)
        info = IngestInfo(
            file=file,
            format=table.format,
            encoding=table.encoding,
            header_row=layout.header_row,
            columns=list(columns),
            mapping=column_mapping,
            kind=cast(SurveyKind, kind),
            metric=cast(MetricName, m.name),
        )
        return cls(table, layout, info, m)

    def rows(self) -> Iterator[SurveyRow]:
        convert = _RowConverter(self.info, self.metric, self.table)
        for rec in self.table.records():
            if rec.row >= self.layout.data_start:
                row = convert(rec)
                if row is not None:
                    yield row


def _open(path: Path, file: str, encoding: str | None, max_bytes: int) -> Table:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError("ファイルが見つかりません", file=file) from None
    if path.is_dir():
        raise InputError("ファイルではなくフォルダーです", file=file)
    if size > max_bytes:
        raise FileTooLargeError(
            f"ファイルが大きすぎます（{_size(size)}）。上限は {_size(max_bytes)} です。"
            "ファイルを分けるか、上限の設定を見直してください",
            file=file,
        )
    if size == 0:
        raise EmptyFileError("ファイルが空です（0 バイト）", file=file)
    try:
        return open_table(path, file, encoding)
    except OSError as exc:  # permissions, a file removed meanwhile …
        raise InputError(f"ファイルを開けません（{exc.strerror or exc}）", file=file) from exc


def _size(n: int) -> str:
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}、{n:,} バイト"
    return f"{n:,} バイト"


def _has_content(cells: list[str]) -> bool:
    return any(c.strip() for c in cells)


def _sample(table: Table) -> tuple[list[RawRecord], list[RawRecord]]:
    """The first records (to find the header in) and every record up to ``SAMPLE_ROWS`` non-blank ones past it."""
    records = table.records()
    try:
        head = list(islice(records, HEADER_RECORDS))
        while head and not any(_has_content(r.cells) for r in head[-HEADER_RECORDS:]):
            more = list(islice(records, HEADER_RECORDS))  # a long run of blank lines before anything
            if not more:
                break
            head += more
        sample = list(head)
        filled = sum(_has_content(r.cells) for r in head)
        for rec in records:
            sample.append(rec)
            filled += _has_content(rec.cells)
            if filled >= SAMPLE_ROWS + HEADER_RECORDS:
                break
    finally:
        records.close()
    return head, sample


# --------------------------------------------------------------------------- rows


_UNCACHED_FORMULA = (
    "数式の計算結果がファイルに保存されていないため、値を読めません（Excel 以外のプログラムで作られたブック）。"
    "Excel で開いて保存し直すか、CSV で書き出してください"
)


class _RowConverter:
    """Turns a raw record into a SurveyRow: original cells, parsed fields, and a RowIssue per bad cell."""

    def __init__(self, info: IngestInfo, metric: Metric, table: Table) -> None:
        self.file = info.file
        self.columns = info.columns
        self.metric = metric if info.kind == "survey" else None
        self.epoch = table.epoch
        index = {name: j for j, name in enumerate(info.columns)}
        mapping = info.mapping
        self.score = index[mapping.score] if mapping.score and self.metric else None
        self.date = index[mapping.date] if mapping.date else None
        self.respondent_id = index[mapping.respondent_id] if mapping.respondent_id else None
        self.texts = [(name, index[name]) for name in mapping.texts]
        self.segments = [(name, index[name]) for name in mapping.segments]
        self._extra_names: dict[int, str] = {}

    def __call__(self, rec: RawRecord) -> SurveyRow | None:
        cells = rec.cells
        if not _has_content(cells):
            return None  # wholly empty rows are layout, not answers
        width = len(self.columns)
        if len(cells) < width:
            cells = cells + [""] * (width - len(cells))
        typed = rec.values
        if typed is not None and len(typed) < width:
            typed = typed + [None] * (width - len(typed))
        original = dict(zip(self.columns, cells, strict=False))
        row = SurveyRow(rec.row, original)
        if typed is not None and any(isinstance(v, UncachedFormula) for v in typed[:width]):
            typed, cells = list(typed), list(cells)
            for j in range(width):
                if isinstance(typed[j], UncachedFormula):
                    self._issue(row, j, _UNCACHED_FORMULA)
                    typed[j], cells[j] = None, ""  # kept in the row's original cells, not read as a value
        if self.score is not None and self.metric is not None:
            value = typed[self.score] if typed is not None else cells[self.score]
            try:
                row.score = parse_score(value, self.metric)
            except CellError as exc:
                self._issue(row, self.score, str(exc))
        if self.date is not None:
            value = typed[self.date] if typed is not None else cells[self.date]
            try:
                row.date = parse_date(value, epoch=self.epoch)
            except CellError as exc:
                self._issue(row, self.date, str(exc))
        if self.respondent_id is not None:
            row.respondent_id = cells[self.respondent_id].strip() or None
        for name, j in self.texts:
            if text := cells[j].strip():
                row.texts[name] = text
        for name, j in self.segments:
            if value := cells[j].strip():
                row.segments[name] = value
        if len(cells) > width and _has_content(cells[width:]):
            self._extras(row, cells[width:])
        return row

    def _issue(self, row: SurveyRow, j: int, message: str) -> None:
        column = self.columns[j]
        row.issues.append(RowIssue(self.file, row.row, column, row.original[column], message))

    def _extras(self, row: SurveyRow, extra: list[str]) -> None:
        last = max(i for i, c in enumerate(extra) if c.strip())
        names = []
        for i, cell in enumerate(extra[: last + 1]):
            name = self._extra_name(len(self.columns) + i + 1)
            row.original[name] = cell
            if cell.strip():
                names.append(name)
        row.issues.append(
            RowIssue(
                self.file,
                row.row,
                names[0],
                " | ".join(row.original[n] for n in names),
                f"見出しのない列に値があります（{'、'.join(names)}）。区切り文字や引用符で列がずれていないか確認してください",
            )
        )

    def _extra_name(self, position: int) -> str:
        if position not in self._extra_names:
            name, k = positional_name(position), 2
            while name in self.columns:
                name = f"{positional_name(position)}_{k}"
                k += 1
            self._extra_names[position] = name
        return self._extra_names[position]
