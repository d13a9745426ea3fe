"""Does discovery find a theme the taxonomy does not have? Each default theme held out in turn.

    python benchmarks/discovery_holdout.py [--cache-dir .koe-cache] [--themes a,b] [--adopt] [--json out.json]

On the corpus test split (never trained on), every comment is classified once with the shipped models. For a
held-out theme T, its hits are removed (removing T from the taxonomy changes no other theme's score: each theme
is scored on its own), discovery runs on the sentences left uncovered, and the clusters are compared with the
comments labelled T: a sentence counts as T when its comment is labelled T (a comment-level label, so
precision is a lower bound: a T comment's other sentences count against it).

Per theme: the T share among all candidates (the base rate a random cluster would show), the best cluster by
F1 (precision, recall of T's candidate sentences, size), and whether T was *found*: a cluster of at least
``min_size`` sentences with precision >= 0.5 and at least twice the base rate. ``--adopt`` also adopts that
cluster (its five examples become a custom theme, as ``POST …/discovery/{cluster}/adopt`` does) and scores
it on the test comments through the full classify path, next to T known only by its own five taxonomy examples.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.bundle import get_bundle
from models.taxonomy import Taxonomy
from pipelines.classify import classify_texts
from pipelines.discovery import AnswerSentences, discover, lemmatizer, theme_thresholds
from pipelines.records import TextResult
from pipelines.train.corpus import load_corpus
from pipelines.train.embedding_cache import CachedEmbedder


def _without(result: TextResult, theme: str, row: int) -> AnswerSentences:
    a = AnswerSentences.from_result(row, "text", None, result)
    a.theme_scores.pop(theme, None)
    a.sentences = [(text, [t for t in themes if t != theme]) for text, themes in a.sentences]
    return a


def _f1(y: np.ndarray, p: np.ndarray) -> tuple[float, float, float]:
    tp = float((y & p).sum())
    prec = tp / max(float(p.sum()), 1.0)
    rec = tp / max(float(y.sum()), 1.0)
    return prec, rec, (2 * prec * rec / (prec + rec) if tp else 0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", default=".koe-cache")
    parser.add_argument("--themes", help="comma-separated theme ids (default: all)")
    parser.add_argument("--adopt", action="store_true", help="also score the adopted cluster as a theme")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()

    t0 = time.perf_counter()
    bundle = get_bundle()
    test = [it for it in load_corpus() if it.split == "test"]
    results = classify_texts([it.text for it in test], bundle, explain=False)
    embedder = CachedEmbedder(bundle.encoder, args.cache_dir, progress=False)
    lemmatize = lemmatizer(bundle.tokenizer)
    thresholds = theme_thresholds(bundle)
    themes = args.themes.split(",") if args.themes else bundle.taxonomy.ids
    labelled = {t: np.array([t in it.themes for it in test]) for t in themes}
    rows = []
    for theme in themes:
        answers = [_without(r, theme, i) for i, r in enumerate(results)]
        found = discover(
            answers,
            thresholds={k: v for k, v in thresholds.items() if k != theme},
            embed=embedder.encode,
            lemmatize=lemmatize,
            answering_rows=dict.fromkeys(range(len(test))),
        )
        cands = found.candidates
        is_t = np.array([bool(labelled[theme][c.row]) for c in cands])
        base = float(is_t.mean()) if len(cands) else 0.0
        member_rows = {c["id"]: np.flatnonzero(found.labels == k) for k, c in enumerate(found.clusters)}
        best: dict[str, Any] = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "size": 0, "cluster": None}
        for cid, idx in member_rows.items():
            p = np.zeros(len(cands), dtype=bool)
            p[idx] = True
            prec, rec, f1 = _f1(is_t, p)
            if f1 > best["f1"]:
                best = {"precision": prec, "recall": rec, "f1": f1, "size": len(idx), "cluster": cid}
        min_size = found.method["min_size"]
        ok = best["size"] >= min_size and best["precision"] >= 0.5 and best["precision"] >= 2 * base
        row: dict[str, Any] = {
            "theme": theme,
            "t_comments": int(labelled[theme].sum()),
            "candidates": len(cands),
            "t_candidates": int(is_t.sum()),
            "base_rate": base,
            "clusters": len(found.clusters),
            "k": found.method["k"],
            **{f"best_{k}": v for k, v in best.items()},
            "found": ok,
        }
        if args.adopt and best["cluster"] is not None:
            cluster = next(c for c in found.clusters if c["id"] == best["cluster"])
            row.update(_adopted_f1(bundle, theme, cluster["examples"], test, labelled[theme]))
        rows.append(row)
        print(_line(row), flush=True)
    n_found = sum(r["found"] for r in rows)
    print(f"\nfound {n_found} of {len(rows)} held-out themes; {time.perf_counter() - t0:.0f} s")
    if args.adopt:
        a = [r["adopted_f1"] for r in rows if "adopted_f1" in r]
        o = [r["own_examples_f1"] for r in rows if "own_examples_f1" in r]
        print(
            f"mean F1 of the adopted cluster as a theme: {np.mean(a):.3f}; T by its own 5 examples: {np.mean(o):.3f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


def _adopted_f1(
    bundle: Any, theme: str, examples: list[str], test: list[Any], y: np.ndarray
) -> dict[str, float]:
    base = bundle.taxonomy
    held = Taxonomy(base.name, base.version, tuple(t for t in base.themes if t.id != theme))
    own = base.get(theme)
    out = {}
    for key, exs in (("adopted_f1", examples), ("own_examples_f1", list(own.examples))):
        tax = held.add_theme("heldout_theme", own.name, examples=exs)
        res = classify_texts([it.text for it in test], bundle.with_taxonomy(tax), explain=False)
        p = np.array(["heldout_theme" in r.theme_ids() for r in res])
        out[key] = _f1(y, p)[2]
    return out


def _line(r: dict[str, Any]) -> str:
    s = (
        f"{r['theme']:<16} T comments {r['t_comments']:>3}  candidates {r['candidates']:>4} "
        f"(T {r['t_candidates']:>3}, base {r['base_rate']:.2f})  k={r['k']:>2} kept {r['clusters']:>2}  "
        f"best P {r['best_precision']:.2f} R {r['best_recall']:.2f} F1 {r['best_f1']:.2f} "
        f"size {r['best_size']:>3}  {'FOUND' if r['found'] else '-'}"
    )
    if "adopted_f1" in r:
        s += f"  adopted F1 {r['adopted_f1']:.2f} (own examples {r['own_examples_f1']:.2f})"
    return s


if __name__ == "__main__":
    raise SystemExit(main())
