"""What a pack declares about its entities: regex patterns, keyword lists and names of things (products)."""

from __future__ import annotations

import re
from dataclasses import dataclass


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
