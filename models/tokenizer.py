"""Japanese tokenizer: fugashi + unidic-lite for surfaces, lemmas and parts of speech.

Like spaCy's Japanese tokenizer, the tokenizer saves its settings, never the dictionary: the MeCab
tagger is rebuilt on load and created lazily, once per process (``get_tokenizer``).
Negation is folded into lemmas (遅く + は + ない -> 遅い + NEG) so that lexical evidence can tell
「遅い」 from 「遅くはない」.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["CONTENT_POS", "STOPWORDS", "JapaneseTokenizer", "Token", "get_tokenizer"]

CONTENT_POS = frozenset({"名詞", "動詞", "形容詞", "形状詞", "副詞", "感動詞"})
STOPWORDS = frozenset(
    [
        "する",
        "ある",
        "いる",
        "なる",
        "ない",
        "れる",
        "られる",
        "こと",
        "もの",
        "よう",
        "ため",
        "それ",
        "これ",
        "あれ",
        "どれ",
        "そう",
        "こう",
        "ここ",
        "そこ",
        "さん",
        "様",
        "方",
        "的",
        "等",
        "など",
        "思う",
        "感じる",
        "言う",
        "今回",
        "今",
        "時",
        "回",
        "中",
        "上",
        "下",
        "前",
        "後",
        "事",
        "物",
        "私",
        "自分",
        "皆",
        "みんな",
        "ちょっと",
        "とても",
        "すごい",
        "本当",
        "やはり",
        "まあ",
        "特に",
        "色々",
        "いろいろ",
        "何",
        "なに",
        "どう",
        "一",
        "二",
        "三",
        "御",
        "お",
        "ご",
        "無い",
        "居る",
        "為る",
        "成る",
        "有る",
    ]
)
_NEGATORS = frozenset({"ない", "無い", "ぬ", "ず", "ん", "ません"})


@dataclass(frozen=True)
class Token:
    surface: str
    lemma: str
    pos: str  # coarse part of speech (unidic pos1), e.g. 名詞
    pos2: str
    negated: bool = False

    @property
    def is_content(self) -> bool:
        return (
            self.pos in CONTENT_POS
            and self.pos2 not in {"非自立可能", "数詞"}
            and self.lemma not in STOPWORDS
        )


class JapaneseTokenizer:
    """Thread-safe wrapper over a fugashi ``Tagger`` (MeCab is not re-entrant)."""

    def __init__(self, dictionary: str = "unidic-lite") -> None:
        self.dictionary = dictionary
        self._tagger: Any = None
        self._lock = threading.Lock()

    def _get_tagger(self) -> Any:
        if self._tagger is None:
            try:
                import fugashi
            except ImportError as exc:  # pragma: no cover - fugashi is a hard dependency
                raise ImportError(
                    "koe needs fugashi and unidic-lite: pip install fugashi unidic-lite"
                ) from exc
            self._tagger = fugashi.Tagger()
        return self._tagger

    def tokenize(self, text: str) -> list[Token]:
        with self._lock:
            words = [
                (w.surface, w.feature.lemma, w.feature.pos1 or "", w.feature.pos2 or "")
                for w in self._get_tagger()(text)
            ]
        tokens: list[Token] = []
        for i, (surface, lemma, pos, pos2) in enumerate(words):
            # unidic lemmas carry a reading suffix for some loanwords ("スタッフ-staff"); keep the head
            base = (lemma or surface).split("-")[0] if lemma else surface
            tokens.append(Token(surface, base, pos, pos2, self._negated(words, i)))
        return tokens

    @staticmethod
    def _negated(words: list[tuple[str, Any, str, str]], i: int) -> bool:
        """A predicate is negated when a negator follows within three tokens (遅く|は|ない, 使え|ませ|ん)."""
        if words[i][2] not in {"動詞", "形容詞", "形状詞", "名詞"}:
            return False
        for surface, lemma, pos, _ in words[i + 1 : i + 4]:
            if (lemma in _NEGATORS or surface in _NEGATORS) and pos in {"助動詞", "形容詞"}:
                return True
            if pos in {"補助記号", "名詞", "動詞", "形容詞", "形状詞"}:
                return False  # another word or punctuation came first: the negator belongs to it
        return False

    def lemmas(self, text: str, *, content_only: bool = True) -> list[str]:
        """Lemmas, with negated predicates marked ``遅い:NEG``; content words only by default."""
        out = []
        for tok in self.tokenize(text):
            if content_only and not tok.is_content:
                continue
            out.append(f"{tok.lemma}:NEG" if tok.negated else tok.lemma)
        return out

    def config(self) -> dict[str, str]:
        return {"dictionary": self.dictionary}


@lru_cache(maxsize=1)
def get_tokenizer() -> JapaneseTokenizer:
    """The process-wide tokenizer (created lazily, shared by CLI, API and workers)."""
    return JapaneseTokenizer()
