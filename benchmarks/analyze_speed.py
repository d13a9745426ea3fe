"""Rows per second and peak memory of ``koe analyze`` on 1k / 10k / 100k-row exports.

    python benchmarks/analyze_speed.py [--sizes 1000 10000 100000] [--workdir /tmp/koe-bench]

Each size runs in a fresh subprocess (so peak RSS is that run's own). The synthetic exports are CP932
CSVs like the shipped example: answers are one or two sentences drawn from the project corpus
(median ~45 characters), 15% "特になし"-style stock answers, a second question answered by 40% of
respondents, dates over 8 weeks and three segment columns. The corpus has ~9k sentences, so each drawn
clause (the unit the encoder embeds) gets a lead-in and a number (「正直、3回目で…」) that make it, like real
answers, practically unique: only the stock answers hit the embedding cache, as in a real export. Goal (issue): 10k rows < 3 minutes,
peak memory < 2 GB and flat in the number of rows.
"""

from __future__ import annotations

import argparse
import csv
import random
import resource
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STOCK = ["特になし", "特にありません", "なし", "満足", "普通", "とくになし", "ないです"]
LEAD_INS = ["正直、", "個人的には、", "今回", "前回も", "家族も", "率直に言うと、", "", "あと、"]


def make_export(path: Path, n_rows: int, seed: int = 0) -> None:
    from models.tokenizer import get_tokenizer
    from pipelines.tokenization import split_clauses
    from pipelines.train.corpus import load_corpus

    tok = get_tokenizer()
    rng = random.Random(seed)
    sentences = [s for it in load_corpus() for s, _ in it.sentences]
    start = datetime(2026, 9, 28)
    with path.open("w", encoding="cp932", errors="replace", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["回答ID", "回答日時", "推奨度", "プラン", "チャネル", "地域", "理由", "改善してほしい点"])
        for i in range(n_rows):

            def answer() -> str:
                if rng.random() < 0.15:
                    return rng.choice(STOCK)
                body = "".join(rng.choice(sentences) for _ in range(rng.choice([1, 1, 2])))
                # every clause gets its own lead-in and number, so no clause repeats from the sentence pool
                clauses = split_clauses(body, tok) or [body]
                return "".join(f"{rng.choice(LEAD_INS)}{rng.randrange(1, 1000)}回目で{c}" for c in clauses)

            when = start + timedelta(minutes=rng.randrange(8 * 7 * 24 * 60))
            w.writerow(
                [
                    f"R{i:07d}",
                    when.strftime("%Y/%m/%d %H:%M"),
                    rng.choice(range(11)),
                    rng.choice(["ライト", "スタンダード", "プレミアム"]),
                    rng.choice(["web", "店舗", "電話", "アプリ"]),
                    rng.choice(["北海道", "関東", "関西", "九州"]),
                    answer(),
                    answer() if rng.random() < 0.4 else "",
                ]
            )


def run_one(path: Path, out: Path) -> None:
    """Child process: run the analysis and print seconds and peak RSS."""
    from models.bundle import load_bundle
    from pipelines.run import AnalyzeOptions, analyze_file

    t0 = time.perf_counter()
    bundle = load_bundle()
    load_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    summary = analyze_file(path, out, bundle, AnalyzeOptions())  # the CLI defaults
    run_s = time.perf_counter() - t1
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    answers = sum(q["answered"] for q in summary["questions"].values())
    print(f"RESULT {summary['input']['rows']} {answers} {load_s:.2f} {run_s:.2f} {peak_mb:.0f}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/koe-bench"))
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        run_one(Path(args.child[0]), Path(args.child[1]))
        return 0
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(
        "| rows | answers | model load s | analyze s | rows/s | peak RSS MB |\n|---:|---:|---:|---:|---:|---:|"
    )
    for n in args.sizes:
        path = args.workdir / f"survey_{n}.csv"
        if not path.exists():
            make_export(path, n)
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(path), str(args.workdir / f"out_{n}")],
            capture_output=True,
            text=True,
            check=True,
        )
        line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
        _, rows, answers, load_s, run_s, peak = line.split()
        print(
            f"| {rows} | {answers} | {load_s} | {run_s} | {int(rows) / float(run_s):.0f} | {peak} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
