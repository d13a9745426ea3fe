"""One round of labelling help, measured: does retraining a custom theme on 40 decided labels help?

    python benchmarks/labelling_loop.py [--themes a,b] [--size 40] [--json out.json]

For a default theme T, koe is given T as a *custom* theme known only by its five taxonomy examples (the trained
head's T is removed, as for a team's own theme). The corpus test split (never trained on) is cut in two by a
hash of the comment id: a labelling half and an evaluation half. From the labelling half, ``size`` comments are
sampled as ``koe insights label propose`` samples them; the analyst's decisions are simulated by the corpus
labels (no LLM: a perfect analyst). ``retrain_examples`` chooses the new examples and counter-examples; the
theme is then scored on the evaluation half through the full classify path, before and after. The
cross-validated F1 on the labels is printed next to it: the figure the API reports, to compare with what
held-out comments show.
"""

from __future__ import annotations

import argparse
import hashlib
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
from pipelines.labelling import LabelItem, retrain_examples, sample_for_labelling, theme_scores
from pipelines.train.corpus import load_corpus


def _f1(y: np.ndarray, p: np.ndarray) -> float:
    tp = float((y & p).sum())
    return 2 * tp / (2 * tp + float((~y & p).sum()) + float((y & ~p).sum())) if tp else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--themes", default="delivery,bug,churn_intent,usability,support_staff,price")
    parser.add_argument("--size", type=int, default=40)
    parser.add_argument("--json")
    args = parser.parse_args()
    t0 = time.perf_counter()
    bundle = get_bundle()
    test = [it for it in load_corpus() if it.split == "test"]
    half = np.array([int(hashlib.sha256(it.id.encode()).hexdigest(), 16) % 2 for it in test])
    pool = [it for it, h in zip(test, half, strict=True) if h == 0]
    held = [it for it, h in zip(test, half, strict=True) if h == 1]
    pool_emb = bundle.encoder.encode([it.text for it in pool])
    rows = []
    for theme in args.themes.split(","):
        base = bundle.taxonomy
        own = base.get(theme)
        tax = Taxonomy(base.name, base.version, tuple(t for t in base.themes if t.id != theme))
        tax = tax.add_theme("custom_t", own.name, examples=list(own.examples), description=own.description)
        # the trained head still knows T by its id; the custom theme has another id, so only examples score it
        b0 = bundle.with_taxonomy(tax)
        scores = theme_scores(b0, "custom_t", pool_emb)
        items = [LabelItem(i, "text", it.text) for i, it in enumerate(pool)]
        picked = sample_for_labelling(items, scores, size=args.size, seed=0)
        texts = [pool[i].text for i in picked]
        labels = [theme in pool[i].themes for i in picked]
        result = retrain_examples(
            texts,
            labels,
            pool_emb[picked],
            b0.themes.prototype_proba,
            b0.prototypes("custom_t"),
            existing=own.examples,
        )
        edited = result.added or result.counter_examples
        y = np.array([theme in it.themes for it in held])
        before = np.array(
            ["custom_t" in r.theme_ids() for r in classify_texts([it.text for it in held], b0, explain=False)]
        )
        after = before
        if edited:
            new = tax.edit(
                "custom_t", add_examples=result.added, add_counter_examples=result.counter_examples
            )
            b1 = bundle.with_taxonomy(new)
            after = np.array(
                [
                    "custom_t" in r.theme_ids()
                    for r in classify_texts([it.text for it in held], b1, explain=False)
                ]
            )
        row: dict[str, Any] = {
            "theme": theme,
            "labels": len(picked),
            "positives": result.positives,
            "added": len(result.added),
            "counter_examples": len(result.counter_examples),
            "labels_f1_before": result.before["f1"],
            "labels_f1_cv": result.cross_validated["f1"],
            "heldout_n": len(held),
            "heldout_positives": int(y.sum()),
            "heldout_f1_before": round(_f1(y, before), 3),
            "heldout_f1_after": round(_f1(y, after), 3),
        }
        rows.append(row)
        print(
            f"{theme:<16} labels {row['labels']} (+{row['positives']})  added {row['added']:>2}  "
            f"counter {row['counter_examples']:>2}  "
            f"labels F1 {row['labels_f1_before']:.2f} -> cv {row['labels_f1_cv']:.2f}   held-out F1 "
            f"{row['heldout_f1_before']:.2f} -> {row['heldout_f1_after']:.2f} (n {len(held)}, T {int(y.sum())})",
            flush=True,
        )
    b = np.mean([r["heldout_f1_before"] for r in rows])
    a = np.mean([r["heldout_f1_after"] for r in rows])
    print(
        f"\nmean held-out F1 {b:.3f} -> {a:.3f} after one round of {args.size} labels; {time.perf_counter() - t0:.0f} s"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
