"""Model quality on the project's test split and on real Japanese text the project did not write.

    python benchmarks/quality.py [--cache-dir .koe-cache] [--json out.json] [--no-peers]

Prints one table: sentiment accuracy / macro-F1 (with a 95% bootstrap interval) / ECE on the corpus test split
(comments, sentences, and the clauses of multi-clause sentences that per-theme sentiment is read from), on the
short sentences' test split, on JRTE train+dev (hotel reviews; never trained on) and on the held-out chABSA
documents; theme micro/macro-F1 and per-theme F1 on the test split (against the adjudicated labels, then
against each annotator alone, beside how well the annotators agree with each other); per-theme sentiment accuracy;
how well needs_review points at errors; custom themes known only by their examples (leave one theme out);
and, where they install, the dictionary-based peers asari, oseti and pymlask on the same texts.
Every figure goes through the full ``classify_texts`` path a user gets.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.bundle import ModelBundle, load_bundle
from models.encoders import DEFAULT_ENCODER
from models.encoders.base import Encoder, Prefix
from pipelines.classify import classify_texts
from pipelines.metrics import (
    bootstrap_interval,
    classification_report,
    expected_calibration_error,
    multilabel_report,
)
from pipelines.records import SENTIMENT_LABELS
from pipelines.train.annotations import WRITER, Annotation, agreement, writer_second_pairs
from pipelines.train.corpus import load_corpus
from pipelines.train.embedding_cache import CachedEmbedder
from pipelines.train.external import load_chabsa, load_jrte
from pipelines.train.short_sentences import load_short_sentences

LABELS = list(SENTIMENT_LABELS)


class DiskCachedEncoder(Encoder):
    """Wraps an encoder with the training disk cache so repeated benchmark runs are fast."""

    def __init__(self, inner: Encoder, cache_dir: str) -> None:
        super().__init__(batch_size=256, cache_size=0)
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self._disk = CachedEmbedder(inner, cache_dir, progress=False)

    def _encode_batch(self, texts: list[str], prefix: Prefix) -> np.ndarray:
        return self._disk.encode(texts)


def sentiment_eval(bundle: ModelBundle, texts: Sequence[str], gold: Sequence[str]) -> dict[str, Any]:
    results = classify_texts(list(texts), bundle, explain=False)
    pred = [r.sentiment for r in results]
    proba = np.array([[r.scores[lab] for lab in LABELS] for r in results])
    rep = classification_report(gold, pred, LABELS)
    ece = expected_calibration_error(proba, np.array([LABELS.index(g) for g in gold]))
    g, p = np.asarray(gold), np.asarray(pred)

    def macro_f1(idx: np.ndarray) -> float:
        return float(classification_report(g[idx], p[idx], LABELS)["macro_f1"])  # type: ignore[arg-type]

    return {
        "n": len(gold),
        "accuracy": rep["accuracy"],
        "macro_f1": rep["macro_f1"],
        "macro_f1_ci95": list(bootstrap_interval(macro_f1, len(g))),
        "ece": ece,
    }


def needs_review_eval(test: list[Any], results: list[Any], Y: np.ndarray, P: np.ndarray) -> dict[str, float]:
    """How well ``needs_review`` points at the comments worth a person's look: the share flagged, and the
    error rate (the comment's sentiment or any of its themes wrong) among flagged and unflagged comments."""
    flagged = np.array([r.needs_review for r in results], bool)
    wrong = np.array([r.sentiment != it.sentiment for it, r in zip(test, results, strict=True)]) | np.any(
        Y != P, axis=1
    )

    def rate(mask: np.ndarray) -> float:
        return float(wrong[mask].mean()) if mask.any() else float("nan")

    return {
        "flagged_share": float(flagged.mean()) if len(flagged) else float("nan"),
        "error_rate_flagged": rate(flagged),
        "error_rate_unflagged": rate(~flagged),
    }


def phenomenon_eval(
    test: list[Any], results: list[Any], Y: np.ndarray, P: np.ndarray
) -> dict[str, dict[str, Any]]:
    """Per phenomenon the corpus writers tagged (sarcasm, a complaint wrapped in thanks, negation, half-width
    kana, ...): how many test comments carry it, their sentiment accuracy with a bootstrap interval, and
    theme micro-F1 on them. Small groups: read the intervals, not the points."""
    right = np.array([r.sentiment == it.sentiment for it, r in zip(test, results, strict=True)], dtype=float)
    out: dict[str, dict[str, Any]] = {}

    def accuracy_of(sub: np.ndarray) -> Callable[[np.ndarray], float]:
        return lambda idx: float(sub[idx].mean())

    for name in sorted({p for it in test for p in it.phenomena}):
        rows = np.array([i for i, it in enumerate(test) if name in it.phenomena])
        sub = right[rows]
        tp = float((Y[rows] & P[rows]).sum())
        denom = float(Y[rows].sum() + P[rows].sum())
        out[name] = {
            "n": len(rows),
            "sentiment_accuracy": float(sub.mean()),
            "sentiment_accuracy_ci95": list(bootstrap_interval(accuracy_of(sub), len(sub))),
            "theme_micro_f1": 2 * tp / denom if denom else None,
        }
    return out


def annotator_eval(test: list[Any], P: np.ndarray, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The model's themes against each annotator alone, and the annotators against each other (how far the
    labels themselves agree: the ceiling a model can be measured against)."""
    by_name: dict[str, list[Annotation]] = {}
    for it in test:
        for a in it.annotations:
            if not a.scope:  # re-annotations of one theme are not whole labellings
                by_name.setdefault(a.annotator, []).append(a)
    out: dict[str, dict[str, Any]] = {}

    def add(name: str, rep: dict[str, Any], n: int) -> None:
        low = min(ids, key=lambda t: rep["per_label"][t]["f1"])
        out[name] = {
            "micro_f1": rep["micro_f1"],
            "macro_f1": rep["macro_f1"],
            "n": n,
            "lowest": f"{low} {rep['per_label'][low]['f1']:.3f}",
        }

    for name, anns in by_name.items():
        if len(anns) == len(test):
            Y = np.array([[t in a.themes for t in ids] for a in anns])
            add(f"model vs {name}'s labels alone", multilabel_report(Y, P, ids), len(test))
    if WRITER in by_name and len(by_name) > 1:
        second = next(n for n in by_name if n != WRITER)
        pairs = writer_second_pairs(it.annotations for it in test)
        add(f"{WRITER} vs {second} (label agreement)", agreement(pairs, ids)["themes"], len(pairs))
    return out


def peer_labels(texts: list[str], python: str) -> dict[str, list[str] | str]:
    """Labels from the dictionary-based peers, run by ``benchmarks/peers.py`` under ``python``.

    The peers pin old libraries (asari wants packaging<22, oseti's sentence splitter breaks beside
    transformers 5), so they can live in a virtualenv of their own: ``--peers-python /path/bin/python``.
    """
    proc = subprocess.run(
        [python, str(Path(__file__).with_name("peers.py"))],
        input=json.dumps(texts, ensure_ascii=False),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return {
            "peers": f"not available ({proc.stderr.strip().splitlines()[-1][:80] if proc.stderr else proc.returncode})"
        }
    return dict(json.loads(proc.stdout))


def custom_theme_eval(bundle: ModelBundle, test: list[Any], Y: np.ndarray) -> dict[str, float]:
    """Custom themes, leave-one-theme-out: each trained theme in turn is scored the way a theme a team
    adds is, by the prototype margin to its five taxonomy examples (its own examples left out of the
    rival set), on the test comments' vectors as the classify stage builds them."""
    from pipelines.classify import comment_embeddings, prepare

    themes = bundle.themes
    prepared = [prepare(it.text, bundle.tokenizer) for it in test]
    emb = comment_embeddings(bundle.encoder.encode([c for p in prepared for c in p.clauses]), prepared)
    ids = bundle.taxonomy.ids
    f1s, precisions = [], []
    for k, theme_id in enumerate(themes.theme_ids_):
        examples = themes.examples_[themes.examples_owner_ == k]
        margin = themes._prototype_margin(emb, examples, exclude=k)
        pred = themes.proto_a_ * margin + themes.proto_b_ >= 0  # probability >= 0.5
        gold = Y[:, ids.index(theme_id)].astype(bool)
        tp = float(np.sum(pred & gold))
        f1s.append(2 * tp / max(float(pred.sum() + gold.sum()), 1.0))
        precisions.append(tp / max(float(pred.sum()), 1.0))
    out = {"f1": float(np.mean(f1s)), "precision": float(np.mean(precisions)), "themes": len(f1s)}
    print(
        f"\nCustom themes, leave-one-theme-out (each of {len(f1s)} themes known only by its examples): "
        f"mean F1 {out['f1']:.3f}, mean precision {out['precision']:.3f}"
    )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", default=None)
    ap.add_argument(
        "--encoder", default=DEFAULT_ENCODER, help="the encoder the heads in --artifacts were trained on"
    )
    ap.add_argument("--cache-dir", default=".koe-cache")
    ap.add_argument("--json", default=None, help="also write the figures as JSON")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument(
        "--peers-python", default=sys.executable, help="a Python with asari / oseti / pymlask installed"
    )
    args = ap.parse_args(argv)

    bundle = load_bundle(args.artifacts, encoder=args.encoder)
    bundle.encoder = DiskCachedEncoder(bundle.encoder, args.cache_dir)
    items = load_corpus()
    test = [it for it in items if it.split == "test"]
    sets: dict[str, tuple[list[str], list[str]]] = {
        "corpus test (comments)": ([it.text for it in test], [it.sentiment for it in test]),
        "corpus test (sentences)": (
            [s for it in test for s, _ in it.sentences],
            [lab for it in test for _, lab in it.sentences],
        ),
    }
    if any(it.clauses for it in test):  # what per-theme sentiment is read from
        sets["corpus test (clauses of multi-clause sentences)"] = (
            [c for it in test for c, _ in it.clauses],
            [lab for it in test for _, lab in it.clauses],
        )
    if short := [s for s in load_short_sentences() if s.split == "test"]:  # one-clause sentences, written
        sets["short sentences test (written)"] = ([s.text for s in short], [s.sentiment for s in short])
    try:
        jrte = load_jrte()
        sets["JRTE train+dev (not trained on)"] = ([t for t, _ in jrte], [lab for _, lab in jrte])
        chabsa = load_chabsa(split="heldout")
        sets["chABSA held-out docs"] = ([t for t, _ in chabsa], [lab for _, lab in chabsa])
    except FileNotFoundError:
        print("shared/data not found: JRTE and chABSA rows skipped", file=sys.stderr)

    figures: dict[str, Any] = {"sentiment": {}, "peers": {}}
    print("\n## Sentiment (positive / neutral / negative)\n")
    print("| set | n | accuracy | macro-F1 (95% interval) | ECE |\n|---|---:|---:|---:|---:|")
    for name, (texts, gold) in sets.items():
        ev = sentiment_eval(bundle, texts, gold)
        figures["sentiment"][name] = ev
        lo, hi = ev["macro_f1_ci95"]
        print(
            f"| {name} | {ev['n']} | {ev['accuracy']:.3f} | {ev['macro_f1']:.3f} ({lo:.3f}-{hi:.3f}) | {ev['ece']:.3f} |"
        )

    results = classify_texts([it.text for it in test], bundle, explain=False)
    ids = bundle.taxonomy.ids
    Y = np.array([[t in it.themes for t in ids] for it in test])
    P = np.array([[t in r.theme_ids() for t in ids] for r in results])
    rep = multilabel_report(Y, P, ids)
    micro_ci = bootstrap_interval(lambda idx: multilabel_report(Y[idx], P[idx], ids)["micro_f1"], len(test))
    agree = total = 0
    for it, r in zip(test, results, strict=True):
        for hit in r.themes:
            if hit.id in it.themes:
                total += 1
                agree += hit.sentiment == it.themes[hit.id]
    figures["themes"] = {
        "micro_f1": rep["micro_f1"],
        "micro_f1_ci95": list(micro_ci),
        "macro_f1": rep["macro_f1"],
        "per_theme": rep["per_label"],
        "theme_sentiment_accuracy": agree / total if total else None,
        "n": len(test),
    }
    print(f"\n## Themes on the corpus test split (n={len(test)} comments)\n")
    print(
        f"micro-F1 {rep['micro_f1']:.3f} (95% interval {micro_ci[0]:.3f}-{micro_ci[1]:.3f}, bootstrap over comments), "
        f"macro-F1 {rep['macro_f1']:.3f}, "
        f"per-theme sentiment accuracy on correctly found themes {agree / max(total, 1):.3f} (n={total})\n"
    )
    figures["themes"]["by_annotator"] = by_annotator = annotator_eval(test, P, ids)
    for name, v in by_annotator.items():
        print(f"- {name}: micro-F1 {v['micro_f1']:.3f}, macro-F1 {v['macro_f1']:.3f}, lowest {v['lowest']}")
    print()
    print("| theme | F1 | precision | recall | support |\n|---|---:|---:|---:|---:|")
    for t in ids:
        v = rep["per_label"][t]
        print(
            f"| {t} ({bundle.taxonomy.get(t).name}) | {v['f1']:.3f} | {v['precision']:.3f} | {v['recall']:.3f} | {v['support']} |"
        )

    figures["needs_review"] = review = needs_review_eval(test, results, Y, P)
    print(
        f"\nneeds_review flags {review['flagged_share']:.1%} of the {len(test)} test comments; error rate "
        f"(sentiment or any theme wrong) {review['error_rate_flagged']:.1%} flagged against "
        f"{review['error_rate_unflagged']:.1%} for the rest"
    )

    figures["phenomena"] = phenomena = phenomenon_eval(test, results, Y, P)
    print(f"\n## By phenomenon (corpus test comments the writers tagged; n={len(test)} in all)\n")
    print("| phenomenon | n | sentiment accuracy (95% interval) | theme micro-F1 |\n|---|---:|---:|---:|")
    for name, v in sorted(phenomena.items(), key=lambda kv: -kv[1]["n"]):
        lo, hi = v["sentiment_accuracy_ci95"]
        f1 = "" if v["theme_micro_f1"] is None else f"{v['theme_micro_f1']:.3f}"
        print(f"| {name} | {v['n']} | {v['sentiment_accuracy']:.3f} ({lo:.3f}-{hi:.3f}) | {f1} |")

    figures["custom_themes"] = custom_theme_eval(bundle, test, Y)

    if not args.no_peers:
        print("\n## Dictionary-based peers on the same texts (macro-F1)\n")
        order = list(sets)
        flat = [t for name in order for t in sets[name][0]]
        labels = peer_labels(flat, args.peers_python)
        print("| peer | " + " | ".join(order) + " |\n|---|" + "---:|" * len(order))
        for peer, got in labels.items():
            if isinstance(got, str):
                print(f"| {peer} | {got} |")
                figures["peers"][peer] = got
                continue
            row, start = [], 0
            for name in order:
                texts, gold = sets[name]
                rep_p = classification_report(gold, got[start : start + len(texts)], LABELS)
                start += len(texts)
                row.append(f"{rep_p['macro_f1']:.3f}")
                figures["peers"].setdefault(peer, {})[name] = rep_p["macro_f1"]
            print(f"| {peer} | " + " | ".join(row) + " |")
    if args.json:
        Path(args.json).write_text(
            json.dumps(figures, ensure_ascii=False, indent=2, default=float), encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
