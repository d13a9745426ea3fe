"""Discovery of emerging themes: sentences no theme covers, clustered and named.

Stage: reads each answer's sentences with the themes the classifier gave them (``AnswerSentences``, from a
``TextResult`` or a stored result); adds ``discovery`` (docs/summary-schema.md).

1. **Candidates**: sentences with no theme, or whose themes all scored less than ``margin`` above their
   threshold (low confidence); sentences with fewer than two content lemmas (「特になし」「普通です」) are left
   out. Above ``max_sentences`` a fixed sample (by a hash of the text) is used.
2. **Clustering** of their embeddings (the bundle's encoder), centred on the candidates' mean so that cosine
   reflects the topic and not the direction all e5 vectors share: k-means (k-means++ with a fixed seed,
   ``n_init`` restarts), k = round(sqrt(n / 3)) between 2 and ``max_clusters`` (``choose_k`` says why).
   Clusters smaller than ``min_size`` sentences, or whose sentences are not closer to their own centroid
   than to the mean of all candidates by ``min_cohesion``, are not reported: they are the remainder.
3. **Keywords** by class-based TF-IDF (c-TF-IDF, as in BERTopic) over fugashi content-word lemmas, each
   cluster a class and the remainder one more: ``w(t, c) = df(t, c) / n_c * log(1 + A / df(t))``, with
   ``df(t, c)`` the sentences of c containing t, ``A`` the mean class size.
4. **Representatives**: the sentences nearest the centroid, near-duplicates skipped.
5. **Size and trend**: sentences, responses, share of answering responses; per ISO week the responses
   and their share, and the last week against the weeks before it (Newcombe interval).
6. **Name**: the assistant's (name, description, id, polarity) when there is one, else the two best
   keywords that are nouns (メニュー・レシピ rather than メニュー・もっと).

Deterministic: the same input gives the same clusters, in the same order (size, then first row), with the
same ids (``c1`` …) and, without an LLM, the same names. With an LLM, temperature 0 and the response cache
keep the names stable.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.assistant import Assistant
from pipelines.nps import newcombe_interval, period_of
from pipelines.quotes import bigram_jaccard
from pipelines.records import TextResult

if TYPE_CHECKING:
    from models.bundle import ModelBundle
    from models.tokenizer import JapaneseTokenizer

__all__ = [
    "NAME_SCHEMA",
    "AnswerSentences",
    "Candidate",
    "Discovery",
    "Lemmatizer",
    "Vocabulary",
    "choose_k",
    "class_keywords",
    "cluster_embeddings",
    "content_bigrams",
    "discover",
    "lemmatizer",
    "name_problems",
    "theme_thresholds",
    "uncovered_sentences",
    "vocabulary",
]

Lemmatizer = Callable[[str], list[str]]
Embedder = Callable[[list[str]], np.ndarray]
_MASK_TAG = re.compile(r"\[[^\[\]]{1,10}\]")
_ID = re.compile(r"^[a-z][a-z0-9_]{1,47}$")
MIN_CONTENT_LEMMAS = 2
MIN_CHARS = 6
MAX_ROWS_LISTED = 1000  # a cluster lists the rows of its responses (for drilling down), up to this many

NAME_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 30},
        "description": {"type": "string", "maxLength": 200},
        "id": {"type": "string", "pattern": "^[a-z][a-z0-9_]{1,47}$"},
        "polarity": {"type": "string", "enum": ["positive_signal", "negative_signal", "topic"]},
    },
    "required": ["name", "description", "id", "polarity"],
    "additionalProperties": False,
}


# -- candidates -------------------------------------------------------------------------------------
@dataclass
class AnswerSentences:
    """One answer as discovery sees it: its comment-level theme scores and its sentences' themes."""

    row: int
    question: str
    date: datetime | None
    theme_scores: dict[str, float]  # theme id -> the comment's score (themes it carries)
    sentences: list[tuple[str, list[str]]]  # (text, theme ids)

    @classmethod
    def from_result(
        cls, row: int, question: str, date: datetime | None, result: TextResult
    ) -> AnswerSentences:
        return cls(
            row,
            question,
            date,
            {h.id: h.score for h in result.themes},
            [(s.text, [h.id for h in s.themes]) for s in result.sentences],
        )

    @classmethod
    def from_stored(
        cls, row: int, question: str, date: datetime | None, stored: Mapping[str, Any]
    ) -> AnswerSentences:
        """From ``TextResult.to_dict()`` as the database keeps it."""
        return cls(
            row,
            question,
            date,
            {str(t["id"]): float(t["score"]) for t in stored.get("themes") or []},
            [
                (str(s["text"]), [str(t) for t in s.get("themes") or []])
                for s in stored.get("sentences") or []
            ],
        )


@dataclass(frozen=True)
class Candidate:
    row: int
    question: str
    text: str
    date: datetime | None
    reason: str  # uncovered | low_confidence


def theme_thresholds(bundle: ModelBundle) -> dict[str, float]:
    """Each taxonomy theme's decision threshold as ``classify`` applies it (custom themes: 0.5)."""
    trained = dict(zip(bundle.themes.theme_ids_, map(float, bundle.themes.thresholds_), strict=True))
    out = {}
    for theme in bundle.taxonomy.themes:
        sources = [trained[t] for t in (theme.id, *theme.aliases) if t in trained]
        out[theme.id] = min(sources) if sources else 0.5
    return out


class _Lemmas:
    """Content-word lemmas of a text (mask tags such as [メール] removed), memoised per text; ``display``
    shows a noun, adverb or interjection as it is most often written (unidic's lemma of ありがとう is 有り難う,
    of ちょっと 一寸), a verb or adjective by its lemma, a negated one as 「届く（否定）」."""

    _SURFACE_POS = frozenset({"名詞", "副詞", "感動詞"})

    def __init__(self, tokenizer: JapaneseTokenizer) -> None:
        self.tokenizer = tokenizer
        self._memo: dict[str, list[str]] = {}
        self._written: dict[str, Counter[str]] = {}
        self._pos: dict[str, Counter[str]] = {}
        self._shown: dict[str, str] = {}  # display form -> lemma

    def __call__(self, text: str) -> list[str]:
        if text not in self._memo:
            found = []
            for tok in self.tokenizer.tokenize(_MASK_TAG.sub("、", text)):
                if not tok.is_content:
                    continue
                lemma = f"{tok.lemma}:NEG" if tok.negated else tok.lemma
                if not _keyword_ok(lemma):
                    continue
                found.append(lemma)
                self._pos.setdefault(lemma, Counter())[tok.pos] += 1
                if tok.pos in self._SURFACE_POS and not tok.negated:
                    self._written.setdefault(lemma, Counter())[tok.surface] += 1
            self._memo[text] = found
        return self._memo[text]

    def display(self, lemma: str) -> str:
        written = self._written.get(lemma)
        if written:
            shown = min(written.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        else:
            shown = lemma.replace(":NEG", "（否定）")
        self._shown[shown] = lemma
        return shown

    def is_noun(self, shown: str) -> bool:
        """Whether a keyword (as ``display`` showed it) was a noun in most of its occurrences (a strict
        majority: counts, not the order texts came in, decide): a name for a cluster reads as a topic
        (メニュー・レシピ), where an adverb or a verb (もっと, 使う) does not."""
        pos = self._pos.get(self._shown.get(shown, shown))
        return pos is not None and 2 * pos["名詞"] > sum(pos.values())


def lemmatizer(tokenizer: JapaneseTokenizer) -> Lemmatizer:
    """Content-word lemmas of a text, memoised, with a ``display`` for keywords (see ``_Lemmas``)."""
    return _Lemmas(tokenizer)


def _keyword_ok(lemma: str) -> bool:
    head = lemma.split(":")[0]
    if len(head) < 2 and not re.match(r"[一-龥]", head):
        return False  # one kana or one latin letter says nothing
    return not re.fullmatch(r"[\W\d_]+", head)


def uncovered_sentences(
    answers: Iterable[AnswerSentences],
    thresholds: Mapping[str, float],
    lemmatize: Lemmatizer,
    *,
    margin: float = 0.06,
) -> list[Candidate]:
    """Sentences with no theme, or only themes within ``margin`` of their threshold; informative ones only."""
    out = []
    for answer in answers:
        for text, themes in answer.sentences:
            if themes:
                confident = [
                    t for t in themes if answer.theme_scores.get(t, 1.0) >= thresholds.get(t, 0.5) + margin
                ]
                if confident:
                    continue
                reason = "low_confidence"
            else:
                reason = "uncovered"
            if len(text) < MIN_CHARS or len(set(lemmatize(text))) < MIN_CONTENT_LEMMAS:
                continue
            out.append(Candidate(answer.row, answer.question, text, answer.date, reason))
    return out


def _sample(candidates: list[Candidate], limit: int) -> list[Candidate]:
    if len(candidates) <= limit:
        return candidates

    def key(c: Candidate) -> str:
        return hashlib.sha256(f"{c.row}\t{c.question}\t{c.text}".encode()).hexdigest()

    keep = set(sorted(range(len(candidates)), key=lambda i: key(candidates[i]))[:limit])
    return [c for i, c in enumerate(candidates) if i in keep]


# -- clustering -------------------------------------------------------------------------------------
def _centred(X: np.ndarray) -> np.ndarray:
    Xc = np.asarray(X, dtype=np.float64) - np.asarray(X, dtype=np.float64).mean(axis=0)
    return Xc / np.maximum(np.linalg.norm(Xc, axis=1, keepdims=True), 1e-12)


@dataclass
class Clustering:
    labels: np.ndarray  # cluster index per row, -1 for the remainder
    k: int  # clusters k-means was asked for
    silhouette: float | None
    cohesion: list[float] = field(default_factory=list)  # per kept cluster: mean cosine to its centroid


def choose_k(n: int, max_clusters: int = 15) -> int:
    """Clusters asked of k-means for ``n`` sentences: round(sqrt(n / 3)), between 2 and ``max_clusters``.

    Measured on the corpus test split with each default theme held out in turn (benchmarks/
    discovery_holdout.py): k by best silhouette settled on 2-4 clusters and found 2 of 14 held-out themes;
    this rule (k = 12 for 400 sentences) found 9 to 10 of 14, as did fixed k = 12 or Ward linkage."""
    return int(min(max_clusters, max(2, round(math.sqrt(n / 3)))))


def cluster_embeddings(
    X: np.ndarray,
    *,
    k: int | None = None,
    max_clusters: int = 15,
    min_size: int = 5,
    min_cohesion: float = 0.1,
    seed: int = 0,
    n_init: int = 4,
) -> Clustering:
    """Deterministic k-means (k-means++ seeded with ``seed``) over centred embeddings, ``k`` by ``choose_k``
    unless given; small and diffuse clusters become the remainder (-1). Kept clusters are numbered by size
    (descending), then first member. The silhouette of the whole partition is reported, not optimised."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    n = len(X)
    if n < 2 * min_size:
        return Clustering(np.full(n, -1), 0, None)
    Xc = _centred(X)
    k = min(k or choose_k(n, max_clusters), n // min_size)
    labels = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(Xc)
    distinct = len(set(labels.tolist()))
    score = (
        float(silhouette_score(Xc, labels, sample_size=min(n, 2000), random_state=seed))
        if distinct > 1
        else None
    )
    kept: list[tuple[int, int, int, float]] = []  # (-size, first index, label, cohesion)
    for label in range(k):
        members = np.flatnonzero(labels == label)
        if len(members) < min_size:
            continue
        centroid = Xc[members].mean(axis=0)
        centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
        cohesion = float((Xc[members] @ centroid).mean())
        if cohesion < min_cohesion:
            continue
        kept.append((-len(members), int(members[0]), label, cohesion))
    kept.sort()
    out = np.full(n, -1)
    for new, (_, _, label, _) in enumerate(kept):
        out[labels == label] = new
    return Clustering(out, k, None if score is None else round(score, 4), [round(c, 4) for *_, c in kept])


@dataclass(frozen=True)
class Vocabulary:
    """Document frequencies of content lemmas over a set of texts (a c-TF-IDF class)."""

    df: Counter[str]
    docs: int


def vocabulary(docs: Iterable[str], lemmatize: Lemmatizer) -> Vocabulary:
    df: Counter[str] = Counter()
    n = 0
    for doc in docs:
        df.update(set(lemmatize(doc)))
        n += 1
    return Vocabulary(df, n)


def class_keywords(
    class_docs: Sequence[Sequence[str]],
    lemmatize: Lemmatizer,
    *,
    background: Sequence[str] | Vocabulary = (),
    top: int = 8,
) -> list[list[str]]:
    """Top ``top`` keywords of each class by c-TF-IDF over content lemmas. ``background`` is one more
    class that only sharpens the IDF (texts, or their ``vocabulary`` computed once). A term needs two
    sentences of its class (one in a class of fewer than four); ties go by the lemma: deterministic."""
    display: Callable[[str], str] = getattr(lemmatize, "display", _display)  # a lemmatizer() shows surfaces
    classes = [vocabulary(docs, lemmatize) for docs in class_docs]
    extra = background if isinstance(background, Vocabulary) else vocabulary(background, lemmatize)
    every = [*classes, extra] if extra.docs else classes
    df_all: Counter[str] = Counter()
    for v in every:
        df_all.update(v.df)
    mean_size = float(np.mean([max(v.docs, 1) for v in every])) if every else 1.0
    out = []
    for v in classes:
        size = max(v.docs, 1)
        scored = [
            (v.df[t] / size * math.log(1.0 + mean_size / df_all[t]), t)
            for t in v.df
            if v.df[t] >= 2 or size < 4
        ]
        scored.sort(key=lambda st: (-st[0], st[1]))
        out.append([display(t) for _, t in scored[:top]])
    return out


def _display(lemma: str) -> str:
    return lemma.replace(":NEG", "（否定）")


def _representatives(texts: Sequence[str], Xc: np.ndarray, k: int = 3) -> list[int]:
    centroid = Xc.mean(axis=0)
    centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
    order = sorted(range(len(texts)), key=lambda i: (-float(Xc[i] @ centroid), texts[i]))
    chosen: list[int] = []
    for i in order:
        if len(chosen) == k:
            break
        if any(texts[i] == texts[j] or bigram_jaccard(texts[i], texts[j]) >= 0.6 for j in chosen):
            continue
        chosen.append(i)
    return chosen


def _trend(
    members: Sequence[Candidate], week_totals: Mapping[str, int], weeks: Sequence[str]
) -> dict[str, Any] | None:
    """Responses of the cluster per week against the week's answering responses; last week vs the rest."""
    if not weeks:
        return None
    rows_by_week: dict[str, set[int]] = {w: set() for w in weeks}
    for c in members:
        if c.date is not None:
            rows_by_week[period_of(c.date, "week").key].add(c.row)
    counts = [(len(rows_by_week[w]), week_totals.get(w, 0)) for w in weeks]
    by_period = [
        {"period": w, "mentions": x, "n": n, "share": round(x / n, 3) if n else None}
        for w, (x, n) in zip(weeks, counts, strict=True)
    ]
    change = None
    if len(weeks) >= 2:
        x1, n1 = counts[-1]
        x2, n2 = sum(x for x, _ in counts[:-1]), sum(n for _, n in counts[:-1])
        if n1 and n2:
            lo, hi = newcombe_interval(x1, n1, x2, n2)
            change = {
                "current": weeks[-1],
                "previous": f"{weeks[0]}..{weeks[-2]}",
                "delta": round(x1 / n1 - x2 / n2, 3),
                "ci95": [round(lo, 3), round(hi, 3)],
                "significant": bool(lo > 0 or hi < 0),
            }
    return {"granularity": "week", "by_period": by_period, "change": change}


_CONTENT_CHAR = re.compile(r"[一-龥々ァ-ヴーA-Za-z0-9]")


def content_bigrams(text: str) -> set[str]:
    """Character bigrams with a kanji, katakana, latin letter or digit in them (hiragana-only and punctuation
    bigrams say nothing about the topic)."""
    s = "".join(text.split())
    return {s[i : i + 2] for i in range(len(s) - 1) if _CONTENT_CHAR.search(s[i : i + 2])}


def name_problems(data: Mapping[str, Any], keywords: Sequence[str], sentences: Sequence[str]) -> list[str]:
    """A name must come from the cluster: share a word (a content bigram) with its keywords or sentences."""
    source = content_bigrams(" ".join([*keywords, *sentences]))
    name = str(data.get("name") or "")
    if not content_bigrams(name) & source:
        return [
            f"the name {name!r} shares no word with the cluster's keywords and sentences; name the cluster"
        ]
    return []


def _fallback_name(
    keywords: list[str], index: int, is_noun: Callable[[str], bool] | None = None
) -> dict[str, Any]:
    """The name without an assistant: the two best keywords, nouns first (when ``is_noun`` can tell)."""
    nouns = [k for k in keywords if is_noun(k)] if is_noun else []
    words = (nouns + [k for k in keywords if k not in nouns])[:2]
    name = "・".join(words) if words else f"新しいテーマ{index + 1}"
    return {
        "name": name,
        "description": "「" + "」「".join(keywords[:4]) + "」を含む声" if keywords else "",
        "id": None,
        "polarity": "topic",
    }


def _theme_id(suggested: Any, keywords: list[str], index: int, taken: set[str]) -> str:
    """A valid, unused theme id: the LLM's suggestion when it is one, else ``emerging_<n>_<hash>``."""
    base = str(suggested) if isinstance(suggested, str) and _ID.match(str(suggested)) else ""
    if not base:
        digest = hashlib.sha256("|".join(keywords).encode()).hexdigest()[:6]
        base = f"emerging_{index + 1}_{digest}"
    candidate, n = base[:44], 2
    while candidate in taken:
        candidate, n = f"{base[:44]}_{n}", n + 1
    taken.add(candidate)
    return candidate


@dataclass
class Discovery:
    """What ``discover`` found: the clustered candidates with their cluster (-1: remainder) and the
    ``discovery`` section (``to_dict``)."""

    candidates: list[Candidate]
    labels: np.ndarray
    clusters: list[dict[str, Any]]
    method: dict[str, Any]

    def members(self, cluster_id: str) -> list[Candidate]:
        index = int(cluster_id.removeprefix("c")) - 1
        return [c for c, label in zip(self.candidates, self.labels, strict=True) if label == index]

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "clusters": self.clusters,
            "remainder": int((self.labels == -1).sum()),
            "llm": None,
        }


def discover(
    answers: Sequence[AnswerSentences],
    *,
    thresholds: Mapping[str, float],
    embed: Embedder,
    lemmatize: Lemmatizer,
    answering_rows: Mapping[int, datetime | None],
    assistant: Assistant | None = None,
    taken_ids: Iterable[str] = (),
    max_sentences: int = 5000,
    max_clusters: int = 15,
    min_size: int | None = None,
    margin: float = 0.06,
    seed: int = 0,
    workers: int = 1,
) -> Discovery:
    """Emerging-theme clusters (``.to_dict()``: the ``discovery`` section): emerging-theme clusters among the sentences the taxonomy does not cover.

    ``answering_rows``: every response with at least one answer (row -> date), for shares and weekly totals.
    ``taken_ids``: theme ids in use (suggested ids avoid them).
    """
    found = uncovered_sentences(answers, thresholds, lemmatize, margin=margin)
    found.sort(key=lambda c: (c.row, c.question, c.text))  # the order answers come in changes nothing
    candidates = _sample(found, max_sentences)
    n_answering = len(answering_rows)
    size_floor = min_size if min_size is not None else max(5, round(0.01 * len(candidates)))
    method = {
        "candidates": len(found),
        "clustered": len(candidates),
        "sample": len(candidates) < len(found),
        "min_size": size_floor,
        "margin": margin,
        "algorithm": "k-means, k = round(sqrt(n / 3)) in [2, max_clusters], on centred embeddings; c-TF-IDF",
        "seed": seed,
    }
    if not candidates:
        return Discovery([], np.zeros(0, dtype=int), [], {**method, "k": 0, "silhouette": None})
    texts = [c.text for c in candidates]
    unique = sorted(set(texts))
    vectors = np.asarray(embed(unique), dtype=np.float64)
    index = {t: i for i, t in enumerate(unique)}
    X = vectors[[index[t] for t in texts]]
    clustering = cluster_embeddings(X, max_clusters=max_clusters, min_size=size_floor, seed=seed)
    labels = clustering.labels
    n_clusters = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
    Xc = _centred(X) if len(X) > 1 else X
    class_docs = [[texts[i] for i in np.flatnonzero(labels == c)] for c in range(n_clusters)]
    remainder_docs = [texts[i] for i in np.flatnonzero(labels == -1)]
    keywords = class_keywords(class_docs, lemmatize, background=remainder_docs)

    weeks: list[str] = []
    week_totals: Counter[str] = Counter()
    for date in answering_rows.values():
        if date is not None:
            week_totals[period_of(date, "week").key] += 1
    weeks = sorted(week_totals)

    clusters: list[dict[str, Any]] = []
    for c in range(n_clusters):
        members_idx = np.flatnonzero(labels == c)
        members = [candidates[i] for i in members_idx]
        reps = _representatives([texts[i] for i in members_idx], Xc[members_idx])
        rows = sorted({m.row for m in members})
        clusters.append(
            {
                "id": f"c{c + 1}",
                "keywords": keywords[c],
                "size": {
                    "sentences": len(members),
                    "responses": len(rows),
                    "n": n_answering,
                    "share": round(len(rows) / n_answering, 3) if n_answering else None,
                },
                "cohesion": clustering.cohesion[c],
                "low_confidence": sum(m.reason == "low_confidence" for m in members),
                "representatives": [
                    {"row": members[i].row, "question": members[i].question, "text": members[i].text}
                    for i in reps
                ],
                "examples": [
                    members[i].text
                    for i in _representatives([texts[j] for j in members_idx], Xc[members_idx], k=5)
                ],
                "rows": rows[:MAX_ROWS_LISTED],
                "trend": _trend(members, week_totals, weeks),
            }
        )
    _name_clusters(clusters, assistant, set(taken_ids), workers, getattr(lemmatize, "is_noun", None))
    return Discovery(
        candidates, labels, clusters, {**method, "k": clustering.k, "silhouette": clustering.silhouette}
    )


def _name_clusters(
    clusters: list[dict[str, Any]],
    assistant: Assistant | None,
    taken: set[str],
    workers: int,
    is_noun: Callable[[str], bool] | None = None,
) -> None:
    def ask(cluster: dict[str, Any]) -> dict[str, Any] | None:
        if assistant is None:
            return None
        payload = {
            "keywords": cluster["keywords"],
            "sentences": cluster["examples"],
            "size": cluster["size"]["sentences"],
        }
        return assistant.ask(
            "name_cluster",
            payload,
            NAME_SCHEMA,
            check=lambda d: name_problems(d, cluster["keywords"], cluster["examples"]),
        )

    if assistant is not None and workers > 1:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="koe-discovery") as pool:
            answers = list(pool.map(ask, clusters))
    else:
        answers = [ask(c) for c in clusters]
    for i, (cluster, named) in enumerate(zip(clusters, answers, strict=True)):
        fallback = _fallback_name(cluster["keywords"], i, is_noun)
        source = named or fallback
        cluster["name"] = str(source["name"]).strip()
        cluster["description"] = str(source["description"]).strip()
        cluster["suggested_id"] = _theme_id(source.get("id"), cluster["keywords"], i, taken)
        cluster["polarity"] = source["polarity"]
        cluster["named_by"] = f"llm:{assistant.model}" if named and assistant else "keywords"
