"""Entity extraction: built-in phone and e-mail patterns, the pack's patterns, keyword lists and product names."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kefu.core.types import Entity

# Mainland mobile numbers with optional +86 and spaces/dashes, then other international numbers.
_CN_MOBILE = re.compile(r"(?<![\d+])(?:\+?86[\s-]?)?(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?!\d)")
_INTL_PHONE = re.compile(r"(?<![\w+])\+(?!86)\d{1,3}[\s-]?\(?\d{1,4}\)?(?:[\s-]?\d{2,4}){2,4}(?!\d)")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


@dataclass(frozen=True, slots=True)
class PatternSpec:
    """A pack entity found by a regular expression; ``group`` picks the value, digits-only if ``digits``."""

    type: str
    pattern: re.Pattern[str]
    group: int = 0
    digits: bool = False


@dataclass(frozen=True, slots=True)
class KeywordSpec:
    """A pack entity found by keywords (any language); the value is the entity type's canonical ``value``."""

    type: str
    value: str
    keywords: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NameSpec:
    """Names that point to one thing (a product's names and aliases in both languages)."""

    type: str
    value: str
    names: tuple[str, ...]


class EntityExtractor:
    """Finds entities; where two overlap, the earlier (more specific) extractor wins."""

    def __init__(
        self,
        patterns: Iterable[PatternSpec] = (),
        keywords: Iterable[KeywordSpec] = (),
        names: Iterable[NameSpec] = (),
    ) -> None:
        self.patterns = tuple(patterns)
        self.keywords = tuple(keywords)
        # Longest names first so "Wireless Earbuds Pro" beats "earbuds".
        pairs = [(n.lower(), spec) for spec in names for n in spec.names if n.strip()]
        self._names = sorted(pairs, key=lambda p: -len(p[0]))

    def extract(self, text: str) -> tuple[Entity, ...]:
        found: list[Entity] = []
        taken: list[tuple[int, int]] = []

        def add(kind: str, value: str, start: int, end: int) -> None:
            if any(start < e and s < end for s, e in taken):
                return
            taken.append((start, end))
            found.append(Entity(kind, value, start, end, text[start:end]))

        for m in _EMAIL.finditer(text):
            add("email", m.group(0).lower(), m.start(), m.end())
        for m in _CN_MOBILE.finditer(text):
            add("phone", "".join(m.groups()), m.start(), m.end())
        for m in _INTL_PHONE.finditer(text):
            add("phone", "+" + re.sub(r"\D", "", m.group(0)), m.start(), m.end())
        for spec in self.patterns:
            for m in spec.pattern.finditer(text):
                raw = m.group(spec.group)
                value = re.sub(r"\D", "", raw) if spec.digits else raw
                add(spec.type, value, m.start(spec.group), m.end(spec.group))
        lowered = text.lower()
        for name, name_spec in self._names:
            start = lowered.find(name)
            while start != -1:
                if _word_bounded(lowered, start, start + len(name)):
                    add(name_spec.type, name_spec.value, start, start + len(name))
                start = lowered.find(name, start + 1)
        for kw_spec in self.keywords:
            for keyword in kw_spec.keywords:
                start = lowered.find(keyword.lower())
                if start != -1 and _word_bounded(lowered, start, start + len(keyword)):
                    add(kw_spec.type, kw_spec.value, start, start + len(keyword))
                    break
        found.sort(key=lambda e: e.start)
        return tuple(found)


def _word_bounded(text: str, start: int, end: int) -> bool:
    """Latin names must not match inside a longer word ("pro" in "problem"); Chinese has no spaces."""
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    first, last = text[start], text[end - 1]
    if first.isascii() and first.isalnum() and before.isascii() and before.isalnum():
        return False
    return not (last.isascii() and last.isalnum() and after.isascii() and after.isalnum())


def build_extractor(config: Mapping[str, object], products: Iterable[NameSpec] = ()) -> EntityExtractor:
    """From a pack's ``entities:`` mapping: ``{type: {pattern, group?, digits?} | {keywords: {lang: [...]}}}``."""
    patterns: list[PatternSpec] = []
    keywords: list[KeywordSpec] = []
    for kind, raw in config.items():
        if not isinstance(raw, Mapping):
            raise ValueError(f"entity {kind!r}: expected a mapping")
        if "pattern" in raw:
            try:
                compiled = re.compile(str(raw["pattern"]))
            except re.error as exc:
                raise ValueError(f"entity {kind!r}: bad pattern: {exc}") from exc
            group = raw.get("group", 0)
            patterns.append(
                PatternSpec(kind, compiled, int(group) if isinstance(group, int) else 0, bool(raw.get("digits")))
            )
        elif "keywords" in raw:
            by_lang = raw["keywords"]
            if not isinstance(by_lang, Mapping):
                raise ValueError(f"entity {kind!r}: keywords must map languages to lists")
            words = tuple(str(w) for lang_words in by_lang.values() for w in lang_words)
            keywords.append(KeywordSpec(kind, str(raw.get("value", "yes")), words))
        else:
            raise ValueError(f"entity {kind!r}: needs 'pattern' or 'keywords'")
    return EntityExtractor(patterns, keywords, products)
