"""PII masking applied before a text is shown in a report or sent anywhere.

The stored original is never changed: masking returns a new string. Each kind of PII is replaced
by a bracketed tag so that a reader still sees that something was there: ``[メール]``, ``[電話番号]``…
Patterns run in order, most specific first (a card number is also a long digit run).

Check digits decide the tag, never whether a number is masked: a 16-digit number that fails the Luhn
check is still masked, as ``[番号]`` instead of ``[カード番号]``; a 12-digit number that fails the マイナンバー
check digit is ``[番号]`` unless the text calls it マイナンバー／個人番号. Bare runs of 13–19 digits are cards
only when they pass Luhn (otherwise they are order numbers and the like, masked as ``[番号]``).

Addresses are masked from the prefecture or municipality to the house number (東京都渋谷区神南1-2-3,
大阪市北区梅田三丁目1番1号); a place name without a house number (渋谷区の店舗) is not personal.

Person names need the dictionary: ``mask_pii(text, names=True)`` also masks words unidic tags as
人名 (田中, 山田太郎) and proper nouns followed by an honorific (…さん, …様), keeping the honorific
(``[氏名]さん``). It is off by default because it changes what the models read; text sent to an LLM
(``service.llm``) always has it on.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PII_TAGS",
    "PiiMatch",
    "find_pii",
    "luhn_valid",
    "mask_pii",
    "my_number_valid",
]

# Digits may be separated by spaces, hyphens or dots (after NFKC, full-width forms are ASCII already,
# but masking also runs on raw originals, so accept full-width digits and hyphens too).
_D = r"[0-9０-９]"
_SEP = r"[-‐－ー−\s.]?"
_HY = r"[-‐－ー−]?"  # phone numbers: hyphens only, so that numbers separated by spaces stay apart
_DASH = r"[-‐－ー−]"
_KANJI_NUM = r"[0-9０-９一二三四五六七八九十〇]+"
_PREFECTURE = r"(?:東京都|北海道|(?:京都|大阪)府|(?:神奈川|和歌山|鹿児島|[一-龥]{2})県)"
_PLACE = r"[一-龥々ヶァ-ヴー]"  # town names: kanji and katakana (hiragana would run into the sentence)
_HOUSE = (
    rf"(?:{_KANJI_NUM}丁目(?:{_D}+(?:番地?|{_DASH})(?:{_D}+号?)?)?"
    rf"|{_D}+{_DASH}{_D}+(?:{_DASH}{_D}+)?|{_D}+番地?(?:{_D}+号)?)"
)

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("email", re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")),
    ("url", re.compile(r"https?://[^\s　<>\"'）)]+|www\.[A-Za-z0-9.\-]+\.[A-Za-z]{2,}[^\s　<>\"'）)]*")),
    # 16-digit cards in 4-4-4-4, and 14-15 digit Amex/Diners-style runs
    # (one separator style throughout, so two phone numbers side by side are not read as a card)
    ("card", re.compile(rf"(?<![0-9０-９]){_D}{{4}}({_SEP}){_D}{{4}}\1{_D}{{4}}\1{_D}{{2,4}}(?![0-9０-９])")),
    # My Number: 12 digits, often 4-4-4
    ("my_number", re.compile(rf"(?<![0-9０-９]){_D}{{4}}({_SEP}){_D}{{4}}\1{_D}{{4}}(?![0-9０-９])")),
    # other cards written without separators (13-19 digits): a card only if Luhn says so
    ("card", re.compile(rf"(?<![0-9０-９]){_D}{{13,19}}(?![0-9０-９])")),
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
    # 東京都渋谷区神南1-2-3 / 大阪市北区梅田三丁目1番1号 (+ 101号室): from the prefecture or municipality
    # to the house number
    (
        "address",
        re.compile(
            rf"(?:{_PREFECTURE}(?:{_PLACE}|[ぁ-ん]){{0,6}}?[市区町村郡]{_PLACE}{{0,14}}?|{_PREFECTURE}{_PLACE}{{0,14}}?"
            rf"|{_PLACE}{{1,8}}?[市区町村郡]{_PLACE}{{0,10}}?)"
            rf"{_HOUSE}(?:\s?[一-龥ァ-ヴーA-Za-z]{{0,12}}{_D}+号室)?(?![0-9０-９])"
        ),
    ),
    # account numbers written as 口座番号1234567 / 会員番号: 12345678
    (
        "account",
        re.compile(rf"((?:口座|会員|契約|お客様|顧客|証券|カード)番号[:：\s]*){_D}{{5,}}"),
    ),
    # bank accounts written as 普通 1234567 / 当座預金口座 1234567, ゆうちょ 記号12345 番号12345678
    ("account", re.compile(rf"((?:普通|当座)(?:預金)?(?:口座)?[:：\s]*){_D}{{6,8}}(?![0-9０-９])")),
    ("account", re.compile(rf"(記号[:：\s]*){_D}{{5}}[\s、,]*番号[:：\s]*{_D}{{6,8}}")),
]

PII_TAGS: dict[str, str] = {
    "email": "[メール]",
    "url": "[URL]",
    "card": "[カード番号]",
    "my_number": "[マイナンバー]",
    "phone": "[電話番号]",
    "postal": "[郵便番号]",
    "address": "[住所]",
    "account": "[番号]",
    "number": "[番号]",  # a card- or マイナンバー-shaped number whose check digit fails
    "name": "[氏名]",
}

_MY_NUMBER_LABEL = re.compile(r"(?:マイナンバー|個人番号)")
_HONORIFICS = frozenset({"さん", "様", "さま", "サマ", "氏", "くん", "君", "ちゃん", "殿"})


@dataclass(frozen=True)
class PiiMatch:
    kind: str
    start: int
    end: int


def _digits(s: str) -> list[int]:
    return [int(ch) for ch in s if ch.isdigit()]  # str.isdigit/int accept full-width digits


def luhn_valid(number: str) -> bool:
    """The Luhn (mod 10) check of payment card numbers; separators are ignored."""
    digits = _digits(number)
    if len(digits) < 12:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def my_number_valid(number: str) -> bool:
    """The check digit of a 12-digit マイナンバー (個人番号), as set out by the 総務省令:
    P_n is the n-th digit from the right of the first eleven, Q_n = n + 1 (n <= 6) or n - 5 (n >= 7),
    check = 11 - (sum P_n * Q_n mod 11), or 0 when the remainder is 0 or 1."""
    digits = _digits(number)
    if len(digits) != 12:
        return False
    body, check = digits[:11], digits[11]
    total = sum(p * (n + 1 if n <= 6 else n - 5) for n, p in enumerate(reversed(body), start=1))
    remainder = total % 11
    return check == (0 if remainder <= 1 else 11 - remainder)


def _kind_of(kind: str, text: str, start: int, end: int) -> str:
    """The tag a number-shaped match gets once its check digit is known."""
    value = text[start:end]
    if kind == "card":
        return "card" if luhn_valid(value) else "number"
    if kind == "my_number":
        labelled = _MY_NUMBER_LABEL.search(text, max(0, start - 12), start) is not None
        return "my_number" if labelled or my_number_valid(value) else "number"
    return kind


_tagger: Any = None
_tagger_lock = threading.Lock()


def _name_spans(text: str) -> list[tuple[int, int]]:
    """Spans of person names: unidic 人名 words, and proper nouns right before an honorific.

    The shared ``JapaneseTokenizer`` keeps two levels of part of speech; 人名 is the third, so this
    uses its own fugashi tagger (created once; MeCab maps the same dictionary files).
    """
    global _tagger
    with _tagger_lock:
        if _tagger is None:
            import fugashi

            _tagger = fugashi.Tagger()
        words = [(w.surface, w.feature.pos2 or "", w.feature.pos3 or "") for w in _tagger(text)]
    spans: list[tuple[int, int]] = []
    pos = 0
    for i, (surface, pos2, pos3) in enumerate(words):
        start = text.find(surface, pos)
        if start < 0:
            continue
        pos = start + len(surface)
        honorific_next = i + 1 < len(words) and words[i + 1][0] in _HONORIFICS
        if pos3 == "人名" or (pos2 == "固有名詞" and pos3 != "地名" and honorific_next):
            if spans and spans[-1][1] == start:  # 山田 + 太郎: one name
                spans[-1] = (spans[-1][0], pos)
            else:
                spans.append((start, pos))
    return spans


def find_pii(text: str, *, names: bool = False) -> list[PiiMatch]:
    """All non-overlapping PII spans, earlier patterns taking precedence; names last (``names=True``)."""
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
            taken.append(PiiMatch(_kind_of(kind, text, start, end), start, end))
    if names and text:
        for start, end in _name_spans(text):
            if not any(start < t.end and t.start < end for t in taken):
                taken.append(PiiMatch("name", start, end))
    return sorted(taken, key=lambda p: p.start)


def mask_pii(text: str, *, names: bool = False) -> str:
    """Replace every PII span with its tag (person names too with ``names=True``)."""
    if not text:
        return text
    out: list[str] = []
    pos = 0
    for match in find_pii(text, names=names):
        out.append(text[pos : match.start])
        out.append(PII_TAGS[match.kind])
        pos = match.end
    out.append(text[pos:])
    return "".join(out)
