"""PII masking applied before a text is shown in a report or sent anywhere.

The stored original is never changed: masking returns a new string. Each kind of PII is replaced
by a bracketed tag so that a reader still sees that something was there: ``[メール]``, ``[電話番号]``…
Patterns run in order, most specific first (a card number is also a long digit run).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["PII_TAGS", "PiiMatch", "find_pii", "mask_pii"]

# Digits may be separated by spaces, hyphens or dots (after NFKC, full-width forms are ASCII already,
# but masking also runs on raw originals, so accept full-width digits and hyphens too).
_D = r"[0-9０-９]"
_SEP = r"[-‐－ー−\s.]?"
_HY = r"[-‐－ー−]?"  # phone numbers: hyphens only, so that numbers separated by spaces stay apart

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("email", re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")),
    ("url", re.compile(r"https?://[^\s　<>\"'）)]+|www\.[A-Za-z0-9.\-]+\.[A-Za-z]{2,}[^\s　<>\"'）)]*")),
    # 16-digit cards in 4-4-4-4, and 14-15 digit Amex/Diners-style runs
    # (one separator style throughout, so two phone numbers side by side are not read as a card)
    ("card", re.compile(rf"(?<![0-9０-９]){_D}{{4}}({_SEP}){_D}{{4}}\1{_D}{{4}}\1{_D}{{2,4}}(?![0-9０-９])")),
    # My Number: 12 digits, often 4-4-4
    ("my_number", re.compile(rf"(?<![0-9０-９]){_D}{{4}}({_SEP}){_D}{{4}}\1{_D}{{4}}(?![0-9０-９])")),
    # Japanese phone numbers: 0X0-XXXX-XXXX mobiles, 0X-XXXX-XXXX / 0XX-XXX-XXXX landlines, 0120 free dial,
    # +81 international form
    (
        "phone",
        re.compile(
            rf"(?<![0-9０-９])(?:\+81{_HY}{_D}{{1,4}}|[0０]{_D}{{1,4}}){_HY}{_D}{{1,4}}{_HY}{_D}{{3,4}}(?![0-9０-９])"
        ),
    ),
    (
        "postal",
        re.compile(
            rf"(?:〒\s?{_D}{{3}}{_SEP}{_D}{{4}}|(?<![0-9０-９]){_D}{{3}}[-‐－−]{_D}{{4}}(?![0-9０-９]))"
        ),
    ),
    # account numbers written as 口座番号1234567 / 会員番号: 12345678
    (
        "account",
        re.compile(rf"((?:口座|会員|契約|お客様|顧客|証券|カード)番号[:：\s]*){_D}{{5,}}"),
    ),
]

PII_TAGS: dict[str, str] = {
    "email": "[メール]",
    "url": "[URL]",
    "card": "[カード番号]",
    "my_number": "[マイナンバー]",
    "phone": "[電話番号]",
    "postal": "[郵便番号]",
    "account": "[番号]",
}


@dataclass(frozen=True)
class PiiMatch:
    kind: str
    start: int
    end: int


def find_pii(text: str) -> list[PiiMatch]:
    """All non-overlapping PII spans, earlier patterns taking precedence."""
    taken: list[PiiMatch] = []
    for kind, pattern in _PATTERNS:
        for m in pattern.finditer(text):
            start, end = m.span()
            if kind == "phone" and sum(ch.isdigit() for ch in m.group()) < 10:
                continue  # Japanese phone numbers have 10-11 digits; shorter runs are amounts or ids
            if kind == "account":
                start = m.start() + len(m.group(1))  # keep the label, mask the number
            if any(start < t.end and t.start < end for t in taken):
                continue
            taken.append(PiiMatch(kind, start, end))
    return sorted(taken, key=lambda p: p.start)


def mask_pii(text: str) -> str:
    """Replace every PII span with its tag."""
    if not text:
        return text
    out: list[str] = []
    pos = 0
    for match in find_pii(text):
        out.append(text[pos : match.start])
        out.append(PII_TAGS[match.kind])
        pos = match.end
    out.append(text[pos:])
    return "".join(out)
