"""Sentence and clause splitting for Japanese comments.

A comment often praises one thing and complains about another in the same sentence
(「スタッフは親切でしたが、待ち時間が長すぎました」). Splitting at 。！？, line breaks, and at
contrastive conjunctive particles (〜が／〜けど／〜のに／〜ものの) lets each clause carry its own
themes and sentiment. Named ``tokenization`` so that it does not shadow the standard library.
"""

from __future__ import annotations

import re

from models.tokenizer import JapaneseTokenizer, get_tokenizer

__all__ = ["split_clauses", "split_sentences"]

_SENTENCE_END = re.compile(r"(?<=[。！？!?])(?![。！？!?）)」』】])|\n+")
_CONTRASTIVE = frozenset({"が", "けど", "けれど", "けれども", "のに", "ものの", "くせに"})
_MIN_CLAUSE_CHARS = 4


def split_sentences(text: str) -> list[str]:
    """Split at sentence-final punctuation (keeping it) and line breaks; drop empty pieces."""
    return [piece.strip() for piece in _SENTENCE_END.split(text) if piece and piece.strip()]


def split_clauses(text: str, tokenizer: JapaneseTokenizer | None = None) -> list[str]:
    """Sentences, each further split after a contrastive conjunctive particle.

    Only particles tagged 接続助詞 split (so the subject marker が in 「対応が遅い」 does not),
    and a split that would leave a clause shorter than four characters is not made.
    """
    tok = tokenizer or get_tokenizer()
    clauses: list[str] = []
    for sentence in split_sentences(text):
        tokens = tok.tokenize(sentence)
        pieces: list[str] = []
        current = ""
        for i, token in enumerate(tokens):
            current += token.surface
            is_split = token.pos == "助詞" and token.pos2 == "接続助詞" and token.lemma in _CONTRASTIVE
            if is_split and i + 1 < len(tokens):
                # keep a following comma with the first clause
                continue_comma = tokens[i + 1].surface in {"、", ","}
                if continue_comma:
                    continue
                pieces.append(current)
                current = ""
            elif token.surface in {"、", ","} and i > 0:
                prev = tokens[i - 1]
                if prev.pos == "助詞" and prev.pos2 == "接続助詞" and prev.lemma in _CONTRASTIVE:
                    pieces.append(current)
                    current = ""
        if current:
            pieces.append(current)
        # re-attach pieces that are too short to stand alone
        merged: list[str] = []
        for piece in pieces:
            if merged and (
                len(piece.strip()) < _MIN_CLAUSE_CHARS or len(merged[-1].strip()) < _MIN_CLAUSE_CHARS
            ):
                merged[-1] += piece
            else:
                merged.append(piece)
        clauses.extend(p.strip() for p in merged if p.strip())
    return clauses
