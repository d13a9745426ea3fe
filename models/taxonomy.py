"""Theme taxonomies: data, not code.

A taxonomy is a YAML file (``models/taxonomy/default.yaml`` ships with koe). Theme ids are stable:
renaming changes ``name``; merging keeps the target id and records the merged ids as ``aliases``
so that results stored under an old id still resolve. Every change returns a new version.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from pipelines.errors import ConfigError
from pipelines.records import SENTIMENT_LABELS

__all__ = ["DEFAULT_TAXONOMY_PATH", "POLARITIES", "Taxonomy", "Theme", "default_taxonomy", "load_taxonomy"]

DEFAULT_TAXONOMY_PATH = Path(__file__).parent / "taxonomy" / "default.yaml"
POLARITIES = ("positive_signal", "negative_signal", "topic")
_ID = re.compile(r"^[a-z][a-z0-9_]{1,47}$")


@dataclass(frozen=True)
class Theme:
    id: str
    name: str
    name_en: str = ""
    polarity: str = "topic"
    description: str = ""
    examples: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    custom: bool = False
    counter_examples: tuple[str, ...] = ()  # sentences decided not to be about a custom theme (labelling)
    # a theme that means one sentiment (感謝 is positive, がっかり negative) reports it whatever its clauses read
    sentiment: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["examples"] = list(self.examples)
        d["aliases"] = list(self.aliases)
        d["counter_examples"] = list(self.counter_examples)
        return d


@dataclass(frozen=True)
class Taxonomy:
    name: str
    version: int
    themes: tuple[Theme, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for theme in self.themes:
            if not _ID.match(theme.id):
                raise ConfigError(
                    "The 'id' of a theme must be lower-case ascii letters, digits and _ (2-48 chars)",
                    value=theme.id,
                )
            if theme.polarity not in POLARITIES:
                raise ConfigError(
                    f"The 'polarity' of theme '{theme.id}' must be one of {', '.join(POLARITIES)}",
                    value=theme.polarity,
                )
            if theme.sentiment is not None and theme.sentiment not in SENTIMENT_LABELS:
                raise ConfigError(
                    f"The 'sentiment' of theme '{theme.id}' must be one of {', '.join(SENTIMENT_LABELS)} or absent",
                    value=theme.sentiment,
                )
            if theme.id in seen:
                raise ConfigError("theme ids must be unique", value=theme.id)
            seen.add(theme.id)

    @property
    def ids(self) -> list[str]:
        return [t.id for t in self.themes]

    def get(self, theme_id: str) -> Theme:
        for theme in self.themes:
            if theme.id == theme_id or theme_id in theme.aliases:
                return theme
        raise ConfigError(f"unknown theme id; known: {', '.join(self.ids)}", value=theme_id)

    def signals(self, polarity: str) -> list[str]:
        return [t.id for t in self.themes if t.polarity == polarity]

    # -- editing: every change gives a new version -------------------------------------------------
    def add_theme(
        self,
        theme_id: str,
        name: str,
        *,
        examples: list[str],
        description: str = "",
        name_en: str = "",
        polarity: str = "topic",
        sentiment: str | None = None,
    ) -> Taxonomy:
        if theme_id in self.ids:
            raise ConfigError("a theme with this id already exists", value=theme_id)
        if not examples:
            raise ConfigError("a custom theme needs at least one example sentence", value=theme_id)
        theme = Theme(
            theme_id, name, name_en, polarity, description, tuple(examples), (), True, sentiment=sentiment
        )
        return replace(self, version=self.version + 1, themes=(*self.themes, theme))

    def rename(self, theme_id: str, name: str) -> Taxonomy:
        target = self.get(theme_id)
        themes = tuple(replace(t, name=name) if t.id == target.id else t for t in self.themes)
        return replace(self, version=self.version + 1, themes=themes)

    def edit(
        self,
        theme_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        add_examples: tuple[str, ...] | list[str] = (),
        add_counter_examples: tuple[str, ...] | list[str] = (),
    ) -> Taxonomy:
        """Rename, re-describe or teach a theme more examples or counter-examples; the id stays. A sentence
        added as an example stops being a counter-example (the later decision wins), and the reverse."""
        target = self.get(theme_id)
        examples = _extend(target.examples, add_examples, drop=add_counter_examples)
        counter = _extend(target.counter_examples, add_counter_examples, drop=add_examples)
        changed = replace(
            target,
            name=target.name if name is None else name,
            description=target.description if description is None else description,
            examples=examples,
            counter_examples=counter,
        )
        if changed == target:
            raise ConfigError("the edit changes nothing", value=theme_id)
        themes = tuple(changed if t.id == target.id else t for t in self.themes)
        return replace(self, version=self.version + 1, themes=themes)

    def merge(self, source_id: str, into_id: str) -> Taxonomy:
        source, target = self.get(source_id), self.get(into_id)
        if source.id == target.id:
            raise ConfigError("cannot merge a theme into itself", value=source_id)
        merged = replace(
            target,
            examples=target.examples + source.examples,
            aliases=(*target.aliases, source.id, *source.aliases),
            counter_examples=_extend(
                target.counter_examples, source.counter_examples, drop=(*target.examples, *source.examples)
            ),
        )
        themes = tuple(merged if t.id == target.id else t for t in self.themes if t.id != source.id)
        return replace(self, version=self.version + 1, themes=themes)

    # -- persistence ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "themes": [t.to_dict() for t in self.themes]}

    def save(self, path: str | Path) -> Path:
        out = Path(path)
        out.write_text(yaml.safe_dump(self.to_dict(), allow_unicode=True, sort_keys=False), encoding="utf-8")
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "<taxonomy>") -> Taxonomy:
        try:
            themes = tuple(
                Theme(
                    id=str(t["id"]),
                    name=str(t["name"]),
                    name_en=str(t.get("name_en", "")),
                    polarity=str(t.get("polarity", "topic")),
                    description=str(t.get("description", "")).strip(),
                    examples=tuple(str(e) for e in t.get("examples", [])),
                    aliases=tuple(str(a) for a in t.get("aliases", [])),
                    custom=bool(t.get("custom", False)),
                    counter_examples=tuple(str(e) for e in t.get("counter_examples") or []),
                    sentiment=str(t["sentiment"]) if t.get("sentiment") else None,
                )
                for t in data["themes"]
            )
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"taxonomy is missing a required field: {exc}", file=source) from exc
        try:
            return cls(
                name=str(data.get("name", "custom")), version=int(data.get("version", 1)), themes=themes
            )
        except ConfigError as exc:  # a bad id, polarity or sentiment: name the file it came from
            exc.file = exc.file or source
            raise


def _extend(kept: tuple[str, ...], new: Sequence[str], *, drop: Sequence[str] = ()) -> tuple[str, ...]:
    """``kept`` then the ``new`` sentences it lacks, without those in ``drop``; order kept, no repeats."""
    out = [s for s in kept if s not in drop]
    out += [s for s in dict.fromkeys(new) if s not in out]
    return tuple(out)


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    src = Path(path) if path else DEFAULT_TAXONOMY_PATH
    try:
        data = yaml.safe_load(src.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError("taxonomy file not found", file=str(src)) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"taxonomy file is not valid YAML: {exc}", file=str(src)) from exc
    return Taxonomy.from_dict(data, source=str(src))


@lru_cache(maxsize=1)
def default_taxonomy() -> Taxonomy:
    return load_taxonomy(DEFAULT_TAXONOMY_PATH)
