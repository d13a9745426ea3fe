"""Ingest: read a survey or support export (CSV, TSV, XLSX) into ``SurveyRow`` records.

Reads:  a file path (any extension; the content decides), optional encoding, kind, metric and mapping.
Adds:   ``IngestInfo`` (format, encoding, header row, columns, column roles) and one ``SurveyRow`` per
        non-blank data row — original cells, score, date, respondent id, free texts, segments and the
        ``RowIssue``s of its cells. No row is dropped for having problems.

Modules: ``encoding`` (detection, strict line decoding), ``tables`` (format, delimiter, raw records),
``header`` (title rows, Qualtrics/SurveyMonkey multi-row headers, column names), ``columns`` (role
detection and ``mapping`` overrides), ``values`` (scores, dates), ``reader`` (``read_survey``, ``sniff``).
"""

from pipelines.ingest.encoding import detect_encoding
from pipelines.ingest.reader import read_survey, sniff

__all__ = ["detect_encoding", "read_survey", "sniff"]
