"""What the report and the dashboard show of ``discovery`` and ``summaries`` (docs/summary-schema.md).

Like ``html.py``, this turns summary sections into *views*: plain dicts with every key present, Japanese
labels resolved and numbers formatted as text, so that a template (the report's Jinja2 page or a dashboard
page) only lays them out, and a section missing from an older summary gives ``None`` instead of failing.
Nothing is computed here. User text (sentences, keywords, names) stays raw: the templates escape it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipelines.report.labels import (
    GROUP_COLORS,
    NO_DATA,
    SENTIMENT_LABELS,
    fmt_count,
    fmt_interval,
    fmt_share,
)

__all__ = ["discovery_view", "summaries_view"]

_POLARITY_LABELS = {"positive_signal": "ポジティブな声", "negative_signal": "ネガティブな声", "topic": "話題"}
_FALLBACK_LABELS = {
    "no_llm": "LLM未設定",
    "llm_failed": "LLMの要約が引用に基づかなかったため",
    "too_few_quotes": "引用が少ないため",
}


def _trend(trend: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not trend:
        return None
    weeks = [
        {
            "period": str(p.get("period") or ""),
            "mentions": fmt_count(p.get("mentions"), "件"),
            "n": fmt_count(p.get("n")),
            "share": fmt_share(p.get("share")),
        }
        for p in trend.get("by_period") or []
    ]
    change = trend.get("change") or None
    out: dict[str, Any] = {"weeks": weeks, "change": None}
    if change:
        delta = change.get("delta")
        significant = bool(change.get("significant"))
        out["change"] = {
            "current": str(change.get("current") or ""),
            "previous": str(change.get("previous") or ""),
            "delta": fmt_share(delta, signed=True),
            "ci": fmt_interval(change.get("ci95"), "share_delta"),
            "significant": significant,
            "direction": ("増加" if (delta or 0) > 0 else "減少") if significant else "有意な変化なし",
        }
    return out


def discovery_view(section: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The ``discovery`` section as shown: clusters largest first, with keywords, representative sentences,
    size and weekly trend; None when the summary has none."""
    if section is None:
        return None
    method = section.get("method") or {}
    llm = section.get("llm") or {}
    clusters = []
    for c in section.get("clusters") or []:
        size = c.get("size") or {}
        named_by = str(c.get("named_by") or "")
        clusters.append(
            {
                "id": str(c.get("id") or ""),
                "name": str(c.get("name") or c.get("id") or NO_DATA),
                "description": str(c.get("description") or ""),
                "named_by": "LLM" if named_by.startswith("llm:") else "特徴語",
                "suggested_id": str(c.get("suggested_id") or ""),
                "polarity": _POLARITY_LABELS.get(str(c.get("polarity")), str(c.get("polarity") or "")),
                "keywords": [str(k) for k in c.get("keywords") or []],
                "sentences": fmt_count(size.get("sentences"), "文"),
                "responses": fmt_count(size.get("responses"), "件"),
                "n": fmt_count(size.get("n")),
                "share": fmt_share(size.get("share")),
                "representatives": [
                    {
                        "text": str(r.get("text") or ""),
                        "row": r.get("row"),
                        "question": r.get("question"),
                        "score": None,  # a sentence, not a scored response: the quote block shows no score
                    }
                    for r in c.get("representatives") or []
                ],
                "trend": _trend(c.get("trend")),
            }
        )
    return {
        "clusters": clusters,
        "candidates": fmt_count(method.get("candidates"), "文"),
        "clustered": fmt_count(method.get("clustered"), "文"),
        "sampled": bool(method.get("sample")),
        "remainder": fmt_count(section.get("remainder"), "文"),
        "llm_model": str(llm.get("model")) if llm.get("model") else None,
    }


def _method(item: Mapping[str, Any]) -> str:
    if item.get("method") == "llm":
        return f"LLMによる要約（{item.get('model') or NO_DATA}）"
    reason = _FALLBACK_LABELS.get(str(item.get("fallback")), "")
    return "抽出（" + reason + "）" if reason else "抽出"


def summaries_view(
    section: Mapping[str, Any] | None, groups: Mapping[str, str], themes: Mapping[str, str] | None = None
) -> list[dict[str, Any]] | None:
    """The ``summaries`` section as shown, one entry per theme (in the section's order) with a cell per group
    (and segment): the LLM's sentences with the quotes each cites, or, for an extractive summary, the quotes
    it consists of. ``groups``: group labels (``labels.group_labels``); ``themes``: theme labels by id."""
    if section is None:
        return None
    out: list[dict[str, Any]] = []
    by_theme: dict[str, dict[str, Any]] = {}
    for i, item in enumerate(section.get("items") or []):
        theme = str(item.get("theme") or "")
        if theme not in by_theme:
            label = (themes or {}).get(theme) or item.get("label") or theme
            by_theme[theme] = {"theme": theme, "label": str(label), "cells": []}
            out.append(by_theme[theme])
        anchor = f"sum{i + 1}"
        quotes = {str(q.get("id")): q for q in item.get("quotes") or []}
        llm = item.get("method") == "llm"
        sentences = []
        cited: list[str] = []
        for s in item.get("sentences") or []:
            ids = [str(x) for x in s.get("quote_ids") or [] if str(x) in quotes]
            cited += [x for x in ids if x not in cited]
            sentences.append(
                {
                    "text": str(s.get("text") or ""),
                    "refs": [{"id": x, "anchor": f"{anchor}-{x}"} for x in ids],
                }
            )
        group = str(item.get("group") or "all")
        segment = item.get("segment")
        cell_label = groups.get(group, group) + (f"（{segment}）" if segment else "")
        out_quotes = [
            {
                "id": x,
                "anchor": f"{anchor}-{x}",
                "text": str(quotes[x].get("text") or ""),
                "row": quotes[x].get("row"),
                "score": quotes[x].get("score"),
                "question": quotes[x].get("question"),
                "sentiment": SENTIMENT_LABELS.get(str(quotes[x].get("sentiment") or ""), ""),
            }
            for x in cited
        ]
        by_theme[theme]["cells"].append(
            {
                "group": cell_label,
                "color": GROUP_COLORS.get(group, GROUP_COLORS["all"]),
                "n": fmt_count(item.get("n"), "件"),
                "method": _method(item),
                "llm": llm,
                "keywords": [str(k) for k in item.get("keywords") or []],
                "sentences": sentences if llm else [],  # extractive: the sentences are the quotes themselves
                "quotes": out_quotes,
            }
        )
    return out
