"""Durations and deadlines ("24小时内", "3天内", "两周", "3-5个工作日", "within 48 hours", "in 2 weeks").

The value is an ISO-8601 duration. Minutes, hours, days and weeks are added up in minutes and written as
whole days when they are whole days (24小时 → ``P1D``, 两周 → ``P14D``), otherwise as hours and minutes
(5小时 → ``PT5H``, 36 hours → ``PT36H``, 半小时 → ``PT30M``); months and years stay calendar units (``P1M``,
``P1Y``; 半个月 → ``P15D``, 一年半 → ``P1Y6M``). A range keeps its upper bound, the deadline a customer
holds the shop to. Working days count as days (the calendar is the business's, not ours). Something "ago"
or "later" is a date (see ``kefu.nlu.dates``), which runs first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from decimal import Decimal
from types import MappingProxyType
from typing import Final

from kefu.nlu.numerals import BOUNDED_NUMBER_PATTERN, EN_NUMBER_PATTERN, parse_number

_MINUTES: Final = MappingProxyType({"minute": 1, "hour": 60, "day": 1440, "week": 10080})
_ZH_UNITS: Final = MappingProxyType(
    {
    "分钟": "minute", "小时": "hour", "钟头": "hour", "天": "day", "日": "day", "工作日": "day",
    "周": "week", "星期": "week", "礼拜": "week", "月": "month", "年": "year",
    }
)  # fmt: skip
_MAX: Final = MappingProxyType({"minute": 100000, "hour": 10000, "day": 1000, "week": 200, "month": 120, "year": 100})
_EN_UNITS: Final = (
    ("hour", ("hour", "hr", "h")),
    ("day", ("day",)),
    ("week", ("week", "wk")),
    ("month", ("month",)),
    ("year", ("year", "yr")),
)
_EN_UNIT_WORDS: Final = frozenset({
    "h", "hour", "hours", "hr", "hrs", "minute", "minutes", "min", "mins", "day", "days", "week", "weeks",
    "wk", "wks", "month", "months", "year", "years", "yr", "yrs",
})  # fmt: skip
_ZH_UNIT_CHARS: Final = frozenset("时钟分天日周期拜月年")
# "a day" is a duration after these words ("within a day", "it takes a week"), not in "twice a day".
_ARTICLE_CONTEXT = r"(?:within|in|for|under|over|after|about|around|than|least|most|only|just|take|takes|took|wait)"


class DurationFinder:
    """Finds durations in Chinese and English; regexes are compiled once per extractor."""

    def __init__(self) -> None:
        zh_units = "|".join(sorted(_ZH_UNITS, key=len, reverse=True))
        self._zh = re.compile(
            rf"(?<!第)(?:(?P<lo>{BOUNDED_NUMBER_PATTERN})\s?(?:-|~|～|到|至)\s?)?(?P<n>{BOUNDED_NUMBER_PATTERN}|半)\s?"
            rf"(?P<ge>个)?(?P<h1>半)?\s?(?P<u>{zh_units})(?P<h2>半)?(?P<w>以内|之内|内)?"
        )
        self._en = re.compile(
            rf"(?:\b(?P<ctx>{_ARTICLE_CONTEXT})\s+)?(?:(?P<lo>\b\d+(?:\.\d+)?)\s?(?:-|–|to)\s?)?"
            rf"(?P<n>(?<![\d.])\d+(?:\.\d+)?|\b(?:{EN_NUMBER_PATTERN}|half\s+an?|an?)\b)[\s-]?"
            r"(?P<u>hours?|hrs?|h|minutes?|mins?|(?:business|working)\s+days?|days?|weeks?|wks?|months?|years?|yrs?)\b"
            r"(?P<half>\s+and\s+a\s+half)?(?!\s+old\b)",
            re.IGNORECASE,
        )
        self._words = re.compile(r"[a-z]+")
        # The full patterns are tried only just before a unit word: scanning every position is slow.
        self._zh_unit = re.compile(zh_units)
        self._en_unit = re.compile(
            r"(?<![A-Za-z])(?:hours?|hrs?|h|minutes?|mins?|days?|weeks?|wks?|months?|years?|yrs?)\b", re.IGNORECASE
        )

    def find(self, text: str) -> Iterator[tuple[int, int, str]]:
        """(start, end, "P3D") for each duration."""
        if not _ZH_UNIT_CHARS.isdisjoint(text):
            for m in _anchored(self._zh, self._zh_unit, text, 24):
                value = self._zh_value(m, text)
                if value:
                    yield m.start(), m.end(), value
        if not _EN_UNIT_WORDS.isdisjoint(self._words.findall(text.lower())):
            for m in _anchored(self._en, self._en_unit, text, 48):
                value = self._en_value(m)
                if value:
                    yield m.start("lo") if m["lo"] else m.start("n"), m.end(), value

    @staticmethod
    def _zh_value(m: re.Match[str], text: str) -> str | None:
        unit, raw = m["u"], m["n"]
        if unit == "月" and not (m["ge"] or raw == "半" or m["h1"]):
            return None  # 三月 is March; 三个月 is three months
        if unit == "日" and not m["w"]:
            return None  # 3日 is the 3rd; 3日内 is within three days
        amount = parse_number(raw)
        if amount is None:
            return None
        if m["h1"] or m["h2"]:
            amount += Decimal("0.5")
        return to_iso(amount, _ZH_UNITS[unit])

    @staticmethod
    def _en_value(m: re.Match[str]) -> str | None:
        raw, unit = m["n"].lower(), m["u"].lower()
        if unit == "h" and not raw[0].isdigit():
            return None
        if raw in ("a", "an") and not m["ctx"]:
            return None  # "twice a day", "have a nice day"
        amount = Decimal("0.5") if raw.startswith("half") else parse_number(raw)
        if amount is None:
            return None
        if m["half"]:
            amount += Decimal("0.5")
        name = next(
            (k for k, prefixes in _EN_UNITS if unit.split()[-1].startswith(prefixes)),
            "minute",
        )
        return to_iso(amount, name)


def _anchored(pattern: re.Pattern[str], units: re.Pattern[str], text: str, reach: int) -> Iterator[re.Match[str]]:
    """Matches of ``pattern`` whose unit (group ``u``) ends where a match of ``units`` ends, searching only
    ``reach`` characters back from each unit word."""
    done = 0
    for unit in units.finditer(text):
        start = max(done, unit.start() - reach)
        for m in pattern.finditer(text, start, min(len(text), unit.end() + 12)):
            if m.end("u") == unit.end():
                done = m.end()
                yield m
                break


def to_iso(amount: Decimal, unit: str) -> str | None:
    """ISO-8601 duration for ``amount`` ``unit``s (minute, hour, day, week, month, year); None if absurd."""
    if amount <= 0 or amount > _MAX[unit]:
        return None
    if unit in ("month", "year"):
        months = amount * (12 if unit == "year" else 1)
        whole = int(months)
        years, rest = divmod(whole, 12) if unit == "year" else (0, whole)
        days = 15 if months != whole else 0
        parts = (f"{years}Y" if years else "") + (f"{rest}M" if rest else "") + (f"{days}D" if days else "")
        return f"P{parts}"
    minutes = math.ceil(amount * _MINUTES[unit])
    if minutes % 1440 == 0:
        return f"P{minutes // 1440}D"
    hours, rest_minutes = divmod(minutes, 60)
    return "PT" + (f"{hours}H" if hours else "") + (f"{rest_minutes}M" if rest_minutes else "")
