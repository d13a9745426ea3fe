"""Short summaries per theme (and NPS group, and segment), grounded in quotes.

For each cell (theme x group [x segment]) the quotes are chosen as in ``quotes.select_quotes`` (typical
first, then diverse; up to ``k`` = 8) and numbered ``q1`` … With an ``Assistant``, the LLM writes 2–3
Japanese sentences and every sentence must cite the quote ids it rests on; ``citation_problems`` rejects an
answer with a sentence that cites nothing, cites an id that was not given, or shares no word with the quotes
it cites (a model copying the prompt's example, or writing about something else). The client sends the
problems back once, then gives up. Without an assistant, or when it gives up, the summary is *extractive*:
the cell's keywords (class-based TF-IDF of its answers' content lemmas against every answer) and its first
quotes, each sentence citing itself. Both have the same shape, and ``method`` says which one it is.

Reads ``AnalyzedRow`` (masked texts and theme hits); adds ``summaries`` (docs/summary-schema.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pipelines.assistant import Assistant
from pipelines.discovery import Lemmatizer, Vocabulary, class_keywords, content_bigrams, vocabulary
from pipelines.quotes import Embeddings, QuoteCandidate, select_quotes
from pipelines.records import AnalyzedRow

__all__ = [
    "GROUP_LABELS",
    "SummaryCell",
    "answer_vocabulary",
    "build_summaries",
    "cell_keywords",
    "citation_problems",
    "summarize_cell",
    "summary_cells",
    "summary_schema",
]

GROUP_LABELS = {"all": "全体", "detractors": "批判者", "passives": "中立者", "promoters": "推奨者"}
MAX_SENTENCES = 3
EXTRACTIVE_SENTENCES = 2
_SURVEY_GROUPS = ("detractors", "passives", "promoters")


@dataclass
class SummaryCell:
    theme: str
    label: str
    group: str  # all | detractors | passives | promoters
    segment: tuple[str, str] | None
    candidates: list[QuoteCandidate]  # every answer of the cell carrying the theme
    n: int  # responses in the cell mentioning the theme


def summary_schema(quote_ids: Sequence[str], max_sentences: int = MAX_SENTENCES) -> dict[str, Any]:
    """The answer's JSON schema; ids are an enum so that grammar-constrained servers cannot invent one."""
    return {
        "type": "object",
        "properties": {
            "sentences": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_sentences,
                "items": {
                    "type": "object",
                    "properties": {
                        "text": {"type": "string", "minLength": 1, "maxLength": 200},
                        "quote_ids": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": len(quote_ids),
                            "items": {"type": "string", "enum": list(quote_ids)},
                        },
                    },
                    "required": ["text", "quote_ids"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["sentences"],
        "additionalProperties": False,
    }


def citation_problems(
    data: Mapping[str, Any], quote_ids: Sequence[str], quote_texts: Mapping[str, str] | None = None
) -> list[str]:
    """Why a summary is not grounded: a sentence citing nothing, citing an id that does not exist, or (with
    ``quote_texts``) sharing no word (content bigram) with the quotes it cites."""
    known = set(quote_ids)
    sentences = data.get("sentences")
    if not isinstance(sentences, list) or not sentences:
        return ["the summary has no sentences"]
    problems = []
    for i, sentence in enumerate(sentences, start=1):
        if not isinstance(sentence, Mapping):
            problems.append(f"sentence {i} is not an object")
            continue
        if not str(sentence.get("text") or "").strip():
            problems.append(f"sentence {i} is empty")
        cited = sentence.get("quote_ids")
        if not isinstance(cited, list) or not cited:
            problems.append(f"sentence {i} cites no quote id")
            continue
        unknown = [str(c) for c in cited if str(c) not in known]
        if unknown:
            problems.append(
                f"sentence {i} cites quote ids that do not exist: {', '.join(unknown)} "
                f"(the quotes are {', '.join(quote_ids)})"
            )
        elif quote_texts is not None:
            cited_text = " ".join(quote_texts[str(c)] for c in cited)
            if not content_bigrams(str(sentence.get("text") or "")) & content_bigrams(cited_text):
                problems.append(
                    f"sentence {i} shares no word with the quotes it cites ({', '.join(map(str, cited))}); "
                    "summarise what they say"
                )
    return problems


def summary_cells(
    rows: Sequence[AnalyzedRow],
    taxonomy: Sequence[Mapping[str, Any]],
    groups: Sequence[str | None] | None,
    *,
    theme: str | None = None,
    group: str | None = None,
    segment: tuple[str, str] | None = None,
    min_mentions: int = 5,
) -> list[SummaryCell]:
    """The cells to summarise, in taxonomy order: every theme with at least ``min_mentions`` responses in
    ``all`` and in each NPS group (``groups=None``: support data, ``all`` only); ``theme``, ``group`` and
    ``segment`` (column, value) narrow them down."""
    wanted_groups: tuple[str, ...] = ("all",) if groups is None else ("all", *_SURVEY_GROUPS)
    if group is not None:
        wanted_groups = tuple(g for g in wanted_groups if g == group)
    cells: dict[tuple[str, str], list[QuoteCandidate]] = {}
    responses: dict[tuple[str, str], set[int]] = {}
    for i, row in enumerate(rows):
        if segment is not None and row.segments.get(segment[0]) != segment[1]:
            continue
        row_group = groups[i] if groups is not None else None
        row_groups = ["all", row_group] if row_group else ["all"]
        for question, result in row.answers.items():
            for hit in result.themes:
                if theme is not None and hit.id != theme:
                    continue
                cand = QuoteCandidate(row.row, question, result.text, hit.sentiment, row.score, hit.score)
                for g in row_groups:
                    cells.setdefault((hit.id, g), []).append(cand)
                    responses.setdefault((hit.id, g), set()).add(i)
    out = []
    for t in taxonomy:
        for g in wanted_groups:
            n = len(responses.get((t["id"], g), ()))
            if n >= min_mentions or (theme is not None and n > 0):
                out.append(SummaryCell(t["id"], t.get("name", t["id"]), g, segment, cells[(t["id"], g)], n))
    return out


def _quote_items(chosen: Sequence[QuoteCandidate]) -> list[dict[str, Any]]:
    return [{"id": f"q{k}", **c.to_dict()} for k, c in enumerate(chosen, start=1)]


def summarize_cell(
    cell: SummaryCell,
    *,
    keywords: list[str],
    assistant: Assistant | None = None,
    embeddings: Embeddings | None = None,
    k: int = 8,
) -> dict[str, Any]:
    """One cell's summary: the LLM's when it gives a grounded one, else the extractive one."""
    chosen = select_quotes(cell.candidates, k=k, embeddings=embeddings)
    quotes = _quote_items(chosen)
    ids = [q["id"] for q in quotes]
    out: dict[str, Any] = {
        "theme": cell.theme,
        "label": cell.label,
        "group": cell.group,
        "segment": f"{cell.segment[0]}:{cell.segment[1]}" if cell.segment else None,
        "n": cell.n,
        "keywords": keywords,
        "quotes": quotes,
    }
    fallback = "no_llm" if assistant is None else ("too_few_quotes" if len(quotes) < 2 else None)
    if fallback is None and assistant is not None:
        payload = {
            "theme_label": cell.label,
            "group_label": GROUP_LABELS.get(cell.group, cell.group) if cell.group != "all" else "",
            "segment": out["segment"],
            "n": cell.n,
            "quotes": [{"id": q["id"], "text": q["text"]} for q in quotes],
            "max_sentences": MAX_SENTENCES,
        }
        texts = {q["id"]: q["text"] for q in quotes}
        data = assistant.ask(
            "summarize", payload, summary_schema(ids), check=lambda d: citation_problems(d, ids, texts)
        )
        if data is not None:
            sentences = [
                {
                    "text": str(s["text"]).strip(),
                    "quote_ids": sorted(set(map(str, s["quote_ids"])), key=ids.index),
                }
                for s in data["sentences"]
            ]
            return {
                **out,
                "method": "llm",
                "model": assistant.model,
                "fallback": None,
                "sentences": sentences,
            }
        fallback = "llm_failed"
    sentences = [{"text": q["text"], "quote_ids": [q["id"]]} for q in quotes[:EXTRACTIVE_SENTENCES]]
    return {**out, "method": "extractive", "model": None, "fallback": fallback, "sentences": sentences}


def answer_vocabulary(rows: Sequence[AnalyzedRow], lemmatize: Lemmatizer) -> Vocabulary:
    """The background of every cell's keywords: each distinct answer text once."""
    return vocabulary(sorted({r.text for row in rows for r in row.answers.values() if r.text}), lemmatize)


def cell_keywords(
    cell: SummaryCell, lemmatize: Lemmatizer, background: Vocabulary, top: int = 8
) -> list[str]:
    """The cell's keywords against every answer (a cell's own, whatever else is summarised with it)."""
    return class_keywords(
        [sorted({c.text for c in cell.candidates})], lemmatize, background=background, top=top
    )[0]


def build_summaries(
    rows: Sequence[AnalyzedRow],
    taxonomy: Sequence[Mapping[str, Any]],
    groups: Sequence[str | None] | None,
    *,
    lemmatize: Lemmatizer,
    assistant: Assistant | None = None,
    embeddings: Embeddings | None = None,
    theme: str | None = None,
    group: str | None = None,
    segment: tuple[str, str] | None = None,
    min_mentions: int = 5,
    workers: int = 1,
    n_keywords: int = 8,
    progress: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Summaries of every cell ``summary_cells`` gives, in that order (``workers`` LLM calls at once)."""
    cells = summary_cells(
        rows, taxonomy, groups, theme=theme, group=group, segment=segment, min_mentions=min_mentions
    )
    if not cells:
        return []
    background = answer_vocabulary(rows, lemmatize)

    def run(i: int) -> dict[str, Any]:
        keywords = cell_keywords(cells[i], lemmatize, background, top=n_keywords)
        item = summarize_cell(cells[i], keywords=keywords, assistant=assistant, embeddings=embeddings)
        if progress:
            progress(1)
        return item

    if assistant is None or workers <= 1:
        return [run(i) for i in range(len(cells))]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="koe-summaries") as pool:
        return list(pool.map(run, range(len(cells))))
