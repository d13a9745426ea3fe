"""Corpus figures for the datasheet, and the committed split manifest.

    python -m pipelines.train.datasheet            # print the datasheet's tables (markdown)
    python -m pipelines.train.datasheet --write    # also rewrite corpus/splits.tsv

``splits.tsv`` (id, split) records the fixed train / validation / test assignment; a test checks that
``load_corpus`` still reproduces it, so adding comments never silently moves existing ones. The short-sentence set
(``corpus/short``) has its own figures and its own ``short/splits.tsv``.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from pipelines.train.annotations import agreement, revision_agreement, writer_second_pairs
from pipelines.train.corpus import CORPUS_DIR, CorpusItem, corpus_stats, load_corpus, near_duplicate_pairs
from pipelines.train.short_sentences import ShortSentence, load_short_sentences, short_agreement

__all__ = ["SPLITS_FILE", "datasheet_tables", "read_splits", "short_tables", "write_splits"]

SPLITS_FILE = CORPUS_DIR / "splits.tsv"


def write_splits(items: list[CorpusItem] | list[ShortSentence], path: Path = SPLITS_FILE) -> None:
    lines = ["id\tsplit", *(f"{it.id}\t{it.split}" for it in items)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_splits(path: Path = SPLITS_FILE) -> dict[str, str]:
    rows = path.read_text(encoding="utf-8").splitlines()[1:]
    return dict(line.split("\t") for line in rows if line)


def _table(header: tuple[str, ...], rows: list[tuple[object, ...]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def datasheet_tables(items: list[CorpusItem]) -> str:
    stats = corpus_stats(items)
    by_split = {s: [it for it in items if it.split == s] for s in ("train", "validation", "test")}
    parts = [
        f"comments: {stats['comments']}, sentences: {stats['sentences']}, "
        f"median length {stats['length_chars']['median']:.0f} chars (p90 {stats['length_chars']['p90']:.0f}), "
        f"comments with no theme: {stats['no_theme']}",
        _table(("split", "comments"), [(s, len(v)) for s, v in by_split.items()]),
        _table(("industry", "comments"), sorted(stats["industries"].items())),
        _table(("kind", "comments"), sorted(stats["kinds"].items())),
        _table(
            ("label", "comments", "sentences"),
            [
                (k, stats["sentiment"].get(k, 0), stats["sentence_sentiment"].get(k, 0))
                for k in ("positive", "neutral", "negative")
            ],
        ),
    ]
    theme_rows = []
    for theme, n in stats["themes"].items():
        sent = Counter(
            {s: c for key, c in stats["theme_sentiment"].items() for t, s in [key.split(":")] if t == theme}
        )
        split_n = [sum(1 for it in by_split[s] if theme in it.themes) for s in by_split]
        theme_rows.append((theme, n, sent["positive"], sent["neutral"], sent["negative"], *split_n))
    parts.append(
        _table(
            ("theme", "comments", "about it: positive", "neutral", "negative", "train", "validation", "test"),
            theme_rows,
        )
    )
    parts.append(_table(("phenomenon", "comments"), list(stats["phenomena"].items())))
    parts.extend(_agreement_tables(items))
    cross = [
        (a, b) for a, b in near_duplicate_pairs([it.text for it in items]) if items[a].split != items[b].split
    ]
    parts.append(
        f"near-duplicate pairs (char 3-gram cosine >= 0.8) across splits after assignment: {len(cross)}"
    )
    return "\n\n".join(parts)


def _agreement_tables(items: list[CorpusItem]) -> list[str]:
    pairs = writer_second_pairs(it.annotations for it in items)
    if not pairs:
        return []
    from models.taxonomy import default_taxonomy

    present = {t for it in items for a in it.annotations for t in a.themes}
    ids = [t for t in default_taxonomy().ids if t in present]
    ids += sorted(present - set(ids))  # a custom corpus's own themes
    agree = agreement(pairs, ids)
    themes = agree["themes"]
    second = pairs[0][1].annotator
    changed_themes = sum(1 for it in items if set(it.themes) != set(it.annotations[0].themes))
    changed_sentiment = sum(1 for it in items if it.sentiment != it.annotations[0].sentiment)
    per_comment = Counter(sum(1 for a in it.annotations if not a.scope) for it in items)
    votes = ", ".join(f"{k} on {per_comment[k]}" for k in sorted(per_comment))
    return [
        f"annotators per comment: {votes}; "
        f"{second} vs writer: theme micro-F1 {themes['micro_f1']:.3f} (macro {themes['macro_f1']:.3f}), "
        f"overall sentiment macro-F1 {agree['sentiment_macro_f1']:.3f} (kappa {agree['sentiment_kappa']:.3f}); "
        f"adjudication changed the themes of {changed_themes} comments and the sentiment of {changed_sentiment}",
        _table(
            ("theme", f"F1 {second} vs writer", "kappa", "writer", second, "adjudicated"),
            [
                (
                    t,
                    f"{themes['per_label'][t]['f1']:.3f}",
                    f"{themes['per_label'][t]['kappa']:.3f}",
                    sum(1 for a, _ in pairs if t in a.themes),
                    sum(1 for _, b in pairs if t in b.themes),
                    sum(1 for it in items if t in it.themes),
                )
                for t in ids
            ],
        ),
        *_revision_lines(items),
    ]


def _revision_lines(items: list[CorpusItem]) -> list[str]:
    revised = dict.fromkeys(t for it in items for a in it.annotations for t in a.scope)
    lines = []
    for theme in revised:
        r = revision_agreement((it.annotations for it in items), theme)
        kappas = ", ".join(f"{pair} {k:.3f}" for pair, k in r["kappa"].items())
        lines.append(
            f"{theme} re-annotated under its revised definition on {r['n']} comments: all agree on "
            f"{r['unanimous']} ({r['unanimous'] / max(r['n'], 1):.1%}), kappa {kappas}; the revision gave it to "
            f"{r['gained']} comments and took it from {r['lost']}"
        )
    return lines


def short_tables(items: list[ShortSentence]) -> str:
    """The short-sentence set: size, lengths, labels per split, and how its annotators agree."""
    by_split = {s: [it for it in items if it.split == s] for s in ("train", "validation", "test")}
    lengths = sorted(len(it.text) for it in items)
    a = short_agreement(items)
    kappa = f"{a['kappa']:.3f}" if a["kappa"] is not None else "-"
    return "\n\n".join(
        [
            f"short sentences: {len(items)} (median {lengths[len(lengths) // 2]} chars, "
            f"{sum(n <= 12 for n in lengths)} of 12 or fewer); writer vs second: {a['agree']} of {a['second']} agree "
            f"(kappa {kappa}); {a['third']} with a third vote; adjudication changed {a['changed']} labels",
            _table(
                ("split", "sentences", "positive", "neutral", "negative"),
                [
                    (
                        s,
                        len(v),
                        *(
                            sum(it.sentiment == lab for it in v)
                            for lab in ("positive", "neutral", "negative")
                        ),
                    )
                    for s, v in by_split.items()
                ],
            ),
            _table(("industry", "sentences"), sorted(Counter(it.industry for it in items).items())),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS_DIR)
    parser.add_argument("--write", action="store_true", help="rewrite corpus/splits.tsv")
    args = parser.parse_args(argv)
    items = load_corpus(args.corpus)
    print(datasheet_tables(items))
    short = load_short_sentences(args.corpus / "short")
    if short:
        print("\n" + short_tables(short))
    if args.write:
        write_splits(items, args.corpus / "splits.tsv")
        if short:
            write_splits(short, args.corpus / "short" / "splits.tsv")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
