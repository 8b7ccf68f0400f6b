"""How many items: 3件, 两个, 一副, 数量5, x2, 2 pcs, qty: 3, three of them, "2 chargers" (a number before a product).

The value is the whole number as a string ("2"). This extractor runs last: order numbers, phone numbers,
money, dates and durations have already claimed their digits, so "13812345678", "199元" and "两个小时" never
become quantities. "一个" / "一件" alone is an article far more often than a count ("我有一个问题"), so it
counts only after a verb of buying or sending ("买一个", "少发了一件").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from kefu.nlu.numerals import EN_NUMBER_PATTERN, ZH_NUMBER_PATTERN, ZH_NUMERAL_CHARS, parse_int

_CLASSIFIERS: Final = "件个台只副对条部套盒箱包支张双把瓶袋份根"
_CLASSIFIER_SET: Final = frozenset(_CLASSIFIERS)
_ONE_AFTER: Final = "买要退换拍订来收到发寄少多漏缺再下"  # "买一个", "少发了一件"
_MAX: Final = 9999
# Words without which an English pattern cannot match: the cheap test that keeps the hot path short.
_EN_COUNT_WORDS: Final = frozenset({
    "pcs", "piece", "pieces", "unit", "units", "item", "items", "pair", "pairs", "set", "sets", "box", "boxes",
    "pack", "packs", "them", "these", "those",
})  # fmt: skip
_EN_LABEL_WORDS: Final = frozenset(("qty", "quantity"))


class QuantityFinder:
    """Finds item counts; regexes are compiled once per extractor."""

    def __init__(self) -> None:
        i = re.IGNORECASE
        self._zh = re.compile(
            rf"(?<![第几这那每])(?P<n>(?<![\d.])\d{{1,4}}|(?<![{ZH_NUMERAL_CHARS}]){ZH_NUMBER_PATTERN})\s?"
            rf"(?P<c>[{_CLASSIFIERS}])"
        )
        self._zh_label = re.compile(
            r"数量\s?(?:[:：]|为|是|改成|改为|改到|要)?\s?(?P<n>\d{1,4}|[一二两三四五六七八九十百]+)"
        )
        # "x2", "× 3", "2x"; not a model name ("X2000") or algebra ("3x = 10").
        self._times = re.compile(
            r"(?<![A-Za-z0-9.])(?:[x×*]\s?(?P<a>\d{1,3})|(?P<b>\d{1,3})\s?[x×])(?![A-Za-z0-9]|[.,]\d)(?!\s*[=+\-^*/²³])"
        )
        self._en = re.compile(
            rf"\b(?P<n>\d{{1,4}}|{EN_NUMBER_PATTERN})\s+(?:pcs|pieces?|units?|items?|pairs?|sets?|boxes|box|packs?"
            rf"|(?P<of>of\s+(?:them|these|those)))\b",
            i,
        )
        self._en_label = re.compile(
            rf"\b(?:qty|quantity)\s*(?:[:=]|of|is|to)?\s*(?P<n>\d{{1,4}}|{EN_NUMBER_PATTERN})\b", i
        )
        self._words = re.compile(r"[a-z]+")
        self._digit = re.compile(r"\d")
        self._before = re.compile(rf"(?:^|(?<=[\s(]))(?P<n>\d{{1,3}}|{EN_NUMBER_PATTERN})\s+$", i)

    def find(self, text: str) -> Iterator[tuple[int, int, str]]:
        """(start, end, "3") for each count."""
        if "数量" in text:
            for m in self._zh_label.finditer(text):
                yield from _emit(m.start(), m.end(), m["n"])
        if self._digit.search(text) and ("x" in text or "×" in text or "*" in text):
            for m in self._times.finditer(text):
                yield from _emit(m.start(), m.end(), m["a"] or m["b"])
        for m in self._zh.finditer(text) if not _CLASSIFIER_SET.isdisjoint(text) else ():
            if m["n"] in ("一", "1") and not _after_verb(text, m.start()):
                continue
            yield from _emit(m.start(), m.end(), m["n"])
        words = frozenset(self._words.findall(text.lower()))
        for m in self._en_label.finditer(text) if not words.isdisjoint(_EN_LABEL_WORDS) else ():
            yield from _emit(m.start(), m.end(), m["n"])
        for m in self._en.finditer(text) if not words.isdisjoint(_EN_COUNT_WORDS) else ():
            count = parse_int(m["n"])
            if m["of"] and (count is None or count < 2):
                continue  # "one of them is broken" picks one out, it does not count
            yield from _emit(m.start(), m.end(), m["n"])

    def before(self, text: str, start: int) -> tuple[str, int, int] | None:
        """A count written just before a product name ("2 chargers", "three earbuds"): (value, start, end)."""
        m = self._before.search(text, max(0, start - 16), start)
        if m is None:
            return None
        count = parse_int(m["n"])
        return (str(count), m.start(), m.end("n")) if count is not None and 0 < count <= _MAX else None


def _after_verb(text: str, start: int) -> bool:
    """ "买一个", "少发了一件": a verb (then maybe 了) right before the numeral."""
    before = text[max(0, start - 2) : start]
    return before[-1:] in _ONE_AFTER or (before[-1:] == "了" and before[:1] in _ONE_AFTER) if before else False


def _emit(start: int, end: int, raw: str) -> Iterator[tuple[int, int, str]]:
    count = parse_int(raw)
    if count is not None and 0 < count <= _MAX:
        yield start, end, str(count)
