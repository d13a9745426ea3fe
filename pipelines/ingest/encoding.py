"""Which text encoding an export is in, and decoding it line by line without holding it whole.

:func:`detect_encoding` takes the first matching rule:

1. a byte-order mark: UTF-8 (``utf-8-sig``), UTF-32, UTF-16;
2. ISO-2022-JP escape sequences; UTF-16 without a BOM (NUL bytes in every other position);
3. strict UTF-8 (pure ASCII counts as UTF-8);
4. strict CP932 and EUC-JP: the one that decodes; if both do, the one that reads as more natural
   Japanese (EUC-JP bytes read as CP932 turn into half-width katakana);
5. nearly-clean UTF-8/CP932/EUC-JP (at most 1% of the non-ASCII characters undecodable): a file with a
   corrupted byte is still read in its encoding, so that the reader can name the bad line;
6. charset-normalizer, as a last resort.

The reader detects on a 64 KiB sample, then checks the guess on the first 2 MiB (``VERIFY_BYTES``) and
detects again on those if the check fails. Shift_JIS is always read as CP932, its Windows superset
(①, ㈱, NEC/IBM extensions), because that is what Excel writes.

:func:`decoded_lines` decodes through ``io.TextIOWrapper`` with an error handler that leaves a marker
instead of raising: ``TextIOWrapper`` decodes 8 KiB chunks ahead of the line being read, so a raised
``UnicodeDecodeError`` would not say which line is bad; the marker lands in exactly that line.
"""

from __future__ import annotations

import codecs
import io
import os
import re
from collections.abc import Generator

from pipelines.errors import ConfigError

__all__ = [
    "SAMPLE_BYTES",
    "VERIFY_BYTES",
    "UndecodableLine",
    "decoded_lines",
    "detect_encoding",
    "detect_file_encoding",
    "resolve_encoding",
]

SAMPLE_BYTES = 64 * 1024
VERIFY_BYTES = 2 * 1024 * 1024

# Names people and tools use for the encodings of Japanese exports, mapped to what koe decodes with.
_ALIASES = {
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "shiftjis": "cp932",
    "sjis": "cp932",
    "s-jis": "cp932",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "windows31j": "cp932",
    "ms932": "cp932",
    "sjis-win": "cp932",
    "eucjp": "euc-jp",
    "euc_jp": "euc-jp",
    "eucjp-ms": "euc-jp",
    "cp51932": "euc-jp",
    "ujis": "euc-jp",
}
# Python codec names -> the names koe reports.
_REPORTED = {
    "utf-8": "utf-8",
    "utf-8-sig": "utf-8-sig",
    "utf-16": "utf-16",
    "utf-16-le": "utf-16-le",
    "utf-16-be": "utf-16-be",
    "utf-32": "utf-32",
    "utf-32-le": "utf-32-le",
    "utf-32-be": "utf-32-be",
    "cp932": "cp932",
    "shift_jis": "cp932",
    "euc_jp": "euc-jp",
    "iso2022_jp": "iso-2022-jp",
}

_MARK_HANDLER = "koe-ingest-mark"
# A lone surrogate never comes out of a strict decode, so it can only be our marker.
_MARK_OPEN, _MARK_CLOSE = "\udfff", "\udffe"
_MARK_RE = re.compile(f"{_MARK_OPEN}([0-9a-f ]*){_MARK_CLOSE}")


def _mark_undecodable(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = bytes(exc.object[exc.start : exc.end])
    return f"{_MARK_OPEN}{bad.hex(' ')}{_MARK_CLOSE}", exc.end


codecs.register_error(_MARK_HANDLER, _mark_undecodable)


class UndecodableLine(Exception):
    """Internal: physical line ``line`` (1-based) holds bytes the encoding cannot decode."""

    def __init__(self, line: int, bad_bytes: str) -> None:
        super().__init__(f"line {line}: undecodable bytes {bad_bytes}")
        self.line = line
        self.bad_bytes = bad_bytes


# --------------------------------------------------------------------------- names


def resolve_encoding(name: str) -> str:
    """The codec koe reads with for a user-given encoding name; ConfigError unless it is a text encoding
    Python has (base64, rot13, zlib … are codecs too, but they do not turn bytes into text)."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    try:
        info = codecs.lookup(key)
        if not getattr(info, "_is_text_encoding", True):
            raise LookupError(f"{info.name} is not a text encoding")
        b"a,b\r\n".decode(info.name, "replace")  # idna and friends have no 'replace' handler
    except (LookupError, UnicodeError, ValueError, TypeError) as exc:
        raise ConfigError(
            f"The 'encoding' parameter must be a text encoding such as utf-8, cp932 or euc-jp ({exc})",
            column="encoding",
            value=name,
        ) from None
    return _REPORTED.get(info.name, info.name)


def _decoder_codec(encoding: str) -> str:
    # utf-8-sig reads BOM-less UTF-8 unchanged and drops a BOM that a forced "utf-8" would keep
    # glued to the first header.
    return "utf-8-sig" if encoding == "utf-8" else encoding


# --------------------------------------------------------------------------- detection


def detect_encoding(sample: bytes) -> str:
    """The encoding of ``sample`` (the start of a file; it may end inside a multi-byte character)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x1b$B" in sample or b"\x1b$@" in sample or b"\x1b(J" in sample:
        return "iso-2022-jp"
    utf16 = _utf16_without_bom(sample)
    if utf16:
        return utf16
    if _decodes(sample, "utf-8"):
        return "utf-8"
    japanese = [enc for enc in ("cp932", "euc-jp") if _decodes(sample, enc)]
    if len(japanese) == 1:
        return japanese[0]
    if japanese:
        return max(japanese, key=lambda enc: _japanese_score(sample.decode(enc, errors="ignore")))
    nearly = _nearly_decodes(sample)
    if nearly:
        return nearly
    return _charset_normalizer(sample) or "utf-8"


def detect_file_encoding(head: bytes) -> str:
    """Detect on the first ``SAMPLE_BYTES`` of ``head``, then check on all of ``head`` (up to VERIFY_BYTES)."""
    guess = detect_encoding(head[:SAMPLE_BYTES])
    if len(head) <= SAMPLE_BYTES or _decodes(head, guess):
        return guess
    return detect_encoding(head)


def _decodes(data: bytes, encoding: str) -> bool:
    """Strict decode, allowing ``data`` to end in the middle of a multi-byte character."""
    try:
        codecs.getincrementaldecoder(_decoder_codec(encoding))(errors="strict").decode(data, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _utf16_without_bom(sample: bytes) -> str | None:
    pairs = len(sample) // 2
    if pairs < 8:
        return None
    even = sample[0 : 2 * pairs : 2].count(0)
    odd = sample[1 : 2 * pairs : 2].count(0)
    # ASCII characters (digits, delimiters, newlines) put a NUL in every other byte.
    for encoding, zeros, other in (("utf-16-le", odd, even), ("utf-16-be", even, odd)):
        if zeros >= 0.2 * pairs and other <= 0.02 * pairs and _decodes(sample[: 2 * pairs], encoding):
            return encoding
    return None


def _japanese_score(text: str) -> float:
    good = bad = 0
    for ch in text:
        code = ord(ch)
        if 0x3041 <= code <= 0x30FF or 0x4E00 <= code <= 0x9FFF or 0x3000 <= code <= 0x303F:
            good += 1  # hiragana, katakana, common kanji, Japanese punctuation
        elif 0xFF61 <= code <= 0xFF9F or 0xE000 <= code <= 0xF8FF or (code < 0x20 and ch not in "\r\n\t"):
            bad += 1  # half-width katakana, private use, control characters
    return good - 2.0 * bad


def _nearly_decodes(sample: bytes) -> str | None:
    for encoding in ("utf-8", "cp932", "euc-jp"):
        text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(sample, final=False)
        non_ascii = sum(1 for ch in text if ord(ch) > 0x7F)
        if non_ascii >= 20 and text.count("\ufffd") <= 0.01 * non_ascii:
            return encoding
    return None


def _charset_normalizer(sample: bytes) -> str | None:
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    if best is None:
        return None
    try:
        return resolve_encoding(best.encoding)
    except ConfigError:
        return None


# --------------------------------------------------------------------------- decoding


def decoded_lines(path: str | os.PathLike[str], encoding: str) -> Generator[str, None, None]:
    """Physical lines of the file (line endings kept, for ``csv.reader``), decoded strictly.

    Opens the file on the first ``next()`` and closes it when exhausted or closed. Raises
    :class:`UndecodableLine` with the 1-based number of the first line that does not decode.
    """
    with (
        open(path, "rb") as binary,
        io.TextIOWrapper(binary, encoding=_decoder_codec(encoding), errors=_MARK_HANDLER, newline="") as text,
    ):
        for number, line in enumerate(text, start=1):
            if _MARK_OPEN in line:
                match = _MARK_RE.search(line)
                raise UndecodableLine(number, match.group(1) if match else "")
            yield line
