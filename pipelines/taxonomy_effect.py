"""What a taxonomy change would do: the same texts classified under the current and the proposed taxonomy,
mentions per theme before and after, and a few texts that would gain or lose each theme.

Reads raw texts and two bundles that differ only in their taxonomy (``ModelBundle.with_taxonomy``); adds
nothing to any record and stores nothing. Both passes go through ``classify_texts``, so the preview is
exactly what a re-classification would give; the encoder's cache makes the second pass cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from models.bundle import ModelBundle
from pipelines.classify import classify_texts
from pipelines.nps import wilson_interval

__all__ = ["TaxonomyEffect", "ThemeEffect", "taxonomy_effect"]


@dataclass(frozen=True)
class ThemeEffect:
    id: str
    name: str  # under the proposed taxonomy (the current name for a theme merged away)
    before: int | None  # texts carrying the theme under the current taxonomy; None: a new theme
    after: int | None  # under the proposed taxonomy; None: merged into ``merged_into``
    share_after: float | None  # after / n
    ci95_after: tuple[float, float] | None  # Wilson interval of share_after
    gained: tuple[str, ...]  # a few texts (normalised, PII-masked) that would newly carry the theme
    lost: tuple[str, ...]  # a few that would no longer carry it
    merged_into: str | None = None

    @property
    def changed(self) -> bool:
        return self.before != self.after or bool(self.gained or self.lost)


@dataclass(frozen=True)
class TaxonomyEffect:
    n: int  # texts classified twice
    themes: tuple[ThemeEffect, ...]  # current order, new themes last

    @property
    def changed(self) -> tuple[ThemeEffect, ...]:
        return tuple(t for t in self.themes if t.changed)


def taxonomy_effect(
    texts: Sequence[str], current: ModelBundle, proposed: ModelBundle, *, examples: int = 3
) -> TaxonomyEffect:
    """Classify ``texts`` under both bundles and compare, theme by theme."""
    before = [set(r.theme_ids()) for r in classify_texts(texts, current, explain=False)]
    after_results = classify_texts(texts, proposed, explain=False)
    after = [set(r.theme_ids()) for r in after_results]
    shown = [r.text for r in after_results]
    n = len(texts)
    old_ids, new_ids = current.taxonomy.ids, proposed.taxonomy.ids
    out = []
    for tid in [*old_ids, *(t for t in new_ids if t not in old_ids)]:
        had = [i for i in range(n) if tid in before[i]] if tid in old_ids else []
        has = [i for i in range(n) if tid in after[i]] if tid in new_ids else []
        if tid not in new_ids:
            into = next((t.id for t in proposed.taxonomy.themes if tid in t.aliases), None)
            out.append(
                ThemeEffect(
                    tid, current.taxonomy.get(tid).name, len(had), None, None, None, (), (), merged_into=into
                )
            )
            continue
        gained = [shown[i] for i in has if tid not in before[i]]
        lost = [shown[i] for i in had if tid not in after[i]]
        out.append(
            ThemeEffect(
                tid,
                proposed.taxonomy.get(tid).name,
                len(had) if tid in old_ids else None,
                len(has),
                len(has) / n if n else None,
                wilson_interval(len(has), n) if n else None,
                tuple(gained[:examples]),
                tuple(lost[:examples]),
            )
        )
    return TaxonomyEffect(n, tuple(out))
