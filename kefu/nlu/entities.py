"""Entity extraction in Chinese and English: contact details, the pack's patterns, money, dates, durations,
product names (fuzzy), the pack's keyword flags and quantities.

Every value is normalised so flows compare values, not spellings: phone numbers as digits, e-mails lower
case, money "199.00 CNY", dates "2026-11-20", durations "P3D", quantities "2", products their SKU.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date

from kefu.core.types import Entity
from kefu.nlu.dates import DateFinder
from kefu.nlu.durations import DurationFinder
from kefu.nlu.fuzzy_names import NameMatcher, word_bounded
from kefu.nlu.money import MoneyFinder
from kefu.nlu.quantities import QuantityFinder
from kefu.nlu.specs import KeywordSpec, NameSpec, PatternSpec

__all__ = ["EntityExtractor", "KeywordSpec", "NameSpec", "PatternSpec", "build_extractor"]


class EntityExtractor:
    """Finds entities; where two overlap, the earlier (more specific) extractor wins.

    The order is: e-mail, phone, money, the pack's patterns (order numbers), dates, durations, product
    names, the pack's keywords, quantities. So "¥199" is money, not a count, "13812345678" is a phone
    number and "两个小时" a duration; quantities take only digits nobody else wanted.
    """

    def __init__(
        self,
        patterns: Iterable[PatternSpec] = (),
        keywords: Iterable[KeywordSpec] = (),
        names: Iterable[NameSpec] = (),
    ) -> None:
        self.patterns = tuple(patterns)
        self.keywords = tuple(keywords)
        self._keywords = tuple((spec, tuple(k.lower() for k in spec.keywords)) for spec in self.keywords)
        # Mainland mobile numbers with optional +86 and spaces/dashes, then other international numbers.
        self._cn_mobile = re.compile(r"(?<![\d+])(?:\+?86[\s-]?)?(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?!\d)")
        self._intl_phone = re.compile(r"(?<![\w+])\+(?!86)\d{1,3}[\s-]?\(?\d{1,4}\)?(?:[\s-]?\d{2,4}){2,4}(?!\d)")
        self._email = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
        self._non_digit = re.compile(r"\D")
        self._money = MoneyFinder()
        self._dates = DateFinder()
        self._durations = DurationFinder()
        self._names = NameMatcher(names)
        self._quantities = QuantityFinder()

    def extract(self, text: str, *, today: date | None = None) -> tuple[Entity, ...]:
        """Entities in ``text`` in order of position; relative dates are resolved against ``today``."""
        day = today or date.today()
        found: list[Entity] = []
        taken: list[tuple[int, int]] = []

        def add(kind: str, value: str, start: int, end: int) -> bool:
            if start >= end or any(start < e and s < end for s, e in taken):
                return False
            taken.append((start, end))
            found.append(Entity(kind, value, start, end, text[start:end]))
            return True

        if "@" in text:
            for m in self._email.finditer(text):
                add("email", m.group(0).lower(), m.start(), m.end())
        for m in self._cn_mobile.finditer(text):
            add("phone", "".join(m.groups()), m.start(), m.end())
        if "+" in text:
            for m in self._intl_phone.finditer(text):
                add("phone", "+" + self._non_digit.sub("", m.group(0)), m.start(), m.end())
        for start, end, value in self._money.find(text):
            add("money", value, start, end)
        for spec in self.patterns:
            for m in spec.pattern.finditer(text):
                raw = m.group(spec.group)
                value = self._non_digit.sub("", raw) if spec.digits else raw
                add(spec.type, value, m.start(spec.group), m.end(spec.group))
        for start, end, value in self._dates.find(text, day):
            add("date", value, start, end)
        for start, end, value in self._durations.find(text):
            add("duration", value, start, end)
        products: list[int] = []
        for start, end, (kind, value) in self._names.find(text):
            if add(kind, value, start, end):
                products.append(start)
        lowered = text.lower()
        for kw_spec, words in self._keywords:
            for keyword in words:
                start = lowered.find(keyword)
                end = start + len(keyword)
                if start != -1 and word_bounded(lowered, start, end) and add(kw_spec.type, kw_spec.value, start, end):
                    break  # one flag per keyword list; a keyword inside another entity does not count
        for start, end, value in self._quantities.find(text):
            add("quantity", value, start, end)
        for product_start in products:
            before = self._quantities.before(text, product_start)
            if before is not None:
                add("quantity", *before)
        found.sort(key=lambda e: e.start)
        return tuple(found)


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
