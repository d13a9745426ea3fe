"""Text normalisation: NFKC, whitespace, repeated punctuation; emoji are kept.

NFKC folds half-width kana (ｽﾀｯﾌ -> スタッフ) and full-width ASCII (ＡＢＣ１２３ -> ABC123).
Two of its side effects are undone because they change meaning in Japanese customer text:
the wave dash (〜) is kept as is, and the ideographic full stop/comma are never touched.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["normalize_text"]

_SPACES = re.compile(r"[ \t\u3000\u00a0]+")
_NEWLINES = re.compile(r"\s*\n\s*")
# three or more of the same punctuation mark -> two ("!!!!" -> "!!", "。。。。" -> "。。")
_REPEATED_PUNCT = re.compile(r"([!?！？。、,.・ー〜~w笑])\1{2,}")


def normalize_text(text: str) -> str:
    """Return ``text`` NFKC-normalised with tidy whitespace and punctuation.

    Line breaks inside a comment are kept (as a single ``\\n``) because they often separate
    sentences in survey answers; runs of spaces collapse to one; leading and trailing space go.
    """
    if not text:
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u301c", "\x00WAVE\x00")  # keep 〜 (NFKC leaves it, but be explicit)
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\x00WAVE\x00", "〜")
    # zero-width characters and variation selectors other than emoji presentation are noise
    text = text.replace("\u200b", "").replace("\u200c", "").replace("\u2060", "").replace("\ufeff", "")
    text = _SPACES.sub(" ", text)
    text = _NEWLINES.sub("\n", text)
    text = _REPEATED_PUNCT.sub(r"\1\1", text)
    return text.strip()
