"""The one exception tree of koe.

    KoeError                      anything a user can fix; carries file/row/column/value
    ├── InputError                the input file as a whole cannot be read
    │   ├── EncodingError         bytes do not decode in the detected/forced encoding
    │   ├── EmptyFileError        no header, or a header and no data rows
    │   ├── FileTooLargeError     over the configured size limit
    │   └── ColumnError           a required column is missing or a mapping names an unknown column
    ├── ConfigError               a setting or CLI flag has an invalid value
    └── ModelError                a model artifact is missing, corrupt or was trained on another encoder

Row-level problems (a score of 11, an unparsable date) are not exceptions: they are
``RowIssue`` records collected next to the row, so that nothing the user sent is dropped.
The CLI and the API render ``KoeError`` with ``str()``, which always names the place.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ColumnError",
    "ConfigError",
    "EmptyFileError",
    "EncodingError",
    "FileTooLargeError",
    "InputError",
    "KoeError",
    "ModelError",
    "Refused",
    "RowIssue",
]


class KoeError(Exception):
    """An error the user can act on. ``str(err)`` names file, row, column and value where known."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
        value: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.row = row
        self.column = column
        self.value = value

    def where(self) -> str:
        parts = []
        if self.file:
            parts.append(self.file)
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column:
            parts.append(f"column '{self.column}'")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.where()
        value = f" (value: {self.value!r})" if self.value is not None else ""
        return f"{where}: {self.message}{value}" if where else f"{self.message}{value}"

    def to_dict(self) -> dict[str, object]:
        return {
            "message": self.message,
            "file": self.file,
            "row": self.row,
            "column": self.column,
            "value": self.value,
        }


class InputError(KoeError):
    """The input file as a whole cannot be used."""


class EncodingError(InputError):
    """The bytes do not decode with the detected or forced encoding."""


class EmptyFileError(InputError):
    """The file has no header or no data rows."""


class FileTooLargeError(InputError):
    """The file is larger than the configured limit."""


class ColumnError(InputError):
    """A required column is missing, or a mapping names a column the file does not have."""


class ConfigError(KoeError):
    """A setting or a command-line flag has an invalid value."""


class Refused(ConfigError):
    """A value a person typed into the dashboard (a user, a password, an API key's name or scopes) that is
    refused. ``japanese`` is what the dashboard shows; the English message is the command line's and the API's."""

    def __init__(self, message: str, japanese: str, *, value: str | None = None) -> None:
        super().__init__(message, value=value)
        self.japanese = japanese


class ModelError(KoeError):
    """A model artifact is missing, corrupt, or incompatible with the loaded encoder."""


@dataclass(frozen=True)
class RowIssue:
    """A problem with one cell of one row. The row itself is kept and still reported."""

    file: str
    row: int  # 1-based line number as the user sees it in Excel (header rows included)
    column: str | None
    value: str | None
    message: str  # written for a CX analyst, Japanese or English

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "row": self.row,
            "column": self.column,
            "value": self.value,
            "message": self.message,
        }
