"""Calendar dates, absolute or relative, resolved against a reference day ("today") to ISO ``YYYY-MM-DD``.

Rules, the same in both languages so a flow gets one answer:

* 昨天 / yesterday, 前天, 明天 / tomorrow, 后天 ...: today plus or minus days.
* 上周五 / last Friday: Friday of the previous Monday–Sunday week; 下周一 / next Monday: of the following
  week; 周五 / this Friday / on Friday: of the current week; "coming Friday" is the first one after today
  and "this past Friday" the last one before it.
* 3天前 / 3 days ago, 两周后 / 2 weeks later / from now: today shifted (months by the calendar).
* 11月20日 / Nov 20 / 20 November without a year: the year that puts the date nearest to today
  (so in late November "1月5日" is next January); 本月3号 / on the 3rd: the nearest such day of a month.
* 2026-11-20, 2026/11/20, 2026年11月20日: as written. Digits alone (an order number, 20261120) are never a date.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from datetime import date, timedelta
from types import MappingProxyType
from typing import Final

from kefu.nlu.numerals import BOUNDED_NUMBER_PATTERN, EN_NUMBER_PATTERN, parse_int

_ZH_WEEKDAYS: Final = MappingProxyType({"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6})
_ZH_DAY_WORDS: Final = MappingProxyType(
    {
        "大前天": -3, "前天": -2, "昨天": -1, "昨日": -1, "昨儿": -1, "今天": 0, "今日": 0, "今儿": 0,
        "明天": 1, "明日": 1, "明儿": 1, "后天": 2, "大后天": 3,
    }
)  # fmt: skip
_EN_WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_EN_MONTHS: Final = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")

_ZH_MONTH = r"\d{1,2}|十[一二]?|[一二三四五六七八九]"
_ZH_DAY = r"\d{1,2}|[一二三]?十[一二三四五六七八九]?|[一二三四五六七八九]"
_EN_MONTH = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
_EN_WEEKDAY = r"monday|tuesday|wednesday|thursday|friday|saturday|sunday"
# Words without which an English pattern cannot match: the cheap test that keeps the hot path short.
_MONTH_WORDS: Final = frozenset({
    "jan", "january", "feb", "february", "mar", "march", "apr", "april", "may", "jun", "june", "jul", "july",
    "aug", "august", "sep", "sept", "september", "oct", "october", "nov", "november", "dec", "december",
})  # fmt: skip
_WEEKDAY_WORDS: Final = frozenset(
    {*_EN_WEEKDAY.split("|"), "mon", "tue", "tues", "wed", "thu", "thur", "thurs", "fri", "sat", "sun"}
)
_DAY_WORDS: Final = frozenset({
    "yesterday", "today", "tonight", "tomorrow", "tmrw",
})  # fmt: skip
_SHIFT_WORDS: Final = frozenset({
    "ago", "earlier", "later", "now",
})  # fmt: skip
_ORDINAL_WORDS: Final = frozenset({
    "st", "nd", "rd", "th",
})  # fmt: skip
_EN_WEEKDAY_SHORT = r"mon|tues?|wed|thu(?:rs?)?|fri|sat|sun"
_EN_UNIT = r"days?|weeks?|months?|years?"


class DateFinder:
    """Finds dates in Chinese and English; regexes are compiled once per extractor."""

    def __init__(self) -> None:
        i = re.IGNORECASE
        self._iso = re.compile(r"(?<![\d.])(?P<y>(?:19|20)\d\d)(?P<s>[-/.])(?P<m>\d{1,2})(?P=s)(?P<d>\d{1,2})(?![\d.])")
        self._zh_full = re.compile(
            rf"(?<![\d.])(?:(?P<y>\d{{4}}|[〇零一二三四五六七八九]{{4}})\s?年\s?)?(?P<m>{_ZH_MONTH})\s?月\s?"
            rf"(?P<d>{_ZH_DAY})(?:\s?[日号])?(?![\d十])"
        )
        self._zh_month_day = re.compile(rf"(?P<rel>本月|这个?月|上个?月|下个?月)\s?(?P<d>{_ZH_DAY})\s?[日号]")
        self._zh_word = re.compile("|".join(sorted(_ZH_DAY_WORDS, key=len, reverse=True)))
        self._zh_weekday = re.compile(
            r"(?<![每一二两三四五六七八九十\d几])(?P<rel>上上个?|下下个?|上个?|下个?|这个?|本)?"
            r"(?:周|星期|礼拜)(?P<wd>[一二三四五六日天])"
        )
        self._zh_shift = re.compile(
            rf"(?<!第)(?P<n>{BOUNDED_NUMBER_PATTERN})\s?(?P<u>天|日|个?星期|个?礼拜|周|个月|年)"
            r"(?P<dir>以前|之前|前|以后|之后|后)"
        )
        self._en_word = re.compile(
            r"\b(?:(?:the\s+)?day\s+before\s+yesterday|(?:the\s+)?day\s+after\s+tomorrow|yesterday|today"
            r"|tonight|tomorrow|tmrw)\b",
            i,
        )
        self._en_shift = re.compile(
            rf"\b(?P<n>\d{{1,3}}|{EN_NUMBER_PATTERN}|an?)\s+(?P<u>{_EN_UNIT})\s+(?P<dir>ago|earlier|later|from\s+now)\b",
            i,
        )
        self._en_weekday = re.compile(
            rf"\b(?:(?P<rel>last|next|this\s+past|this|coming|past|on)\s+)?(?P<wd>{_EN_WEEKDAY})\b(?!s)"
            rf"|\b(?P<rel2>last|next|this|coming|on)\s+(?P<wd2>{_EN_WEEKDAY_SHORT})\b\.?",
            i,
        )
        self._en_month_day = re.compile(
            rf"\b(?P<mon>{_EN_MONTH})\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\b(?![:.]\d)(?:,?\s+(?P<y>(?:19|20)\d\d)\b)?",
            i,
        )
        self._en_day_month = re.compile(
            rf"\b(?:the\s+)?(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<mon>{_EN_MONTH})\b\.?(?!\s+be\b)"
            rf"(?:,?\s+(?P<y>(?:19|20)\d\d)\b)?",
            i,
        )
        self._en_nth = re.compile(
            r"\b(?:on|by|since|until|till|before|after|from)\s+(?P<the>the\s+(?P<d>\d{1,2})(?:st|nd|rd|th))\b", i
        )
        self._cjk = re.compile(r"[\u4e00-\u9fff]")
        self._words = re.compile(r"[a-z]+")

    def find(self, text: str, today: date) -> Iterator[tuple[int, int, str]]:
        """(start, end, "YYYY-MM-DD") for each date, most specific forms first."""
        for m in self._iso.finditer(text):
            yield from _emit(m.start(), m.end(), _valid(int(m["y"]), int(m["m"]), int(m["d"])))
        if self._cjk.search(text):
            yield from self._find_zh(text, today)
        words = frozenset(self._words.findall(text.lower()))
        if words:
            yield from self._find_en(text, today, words)

    def _find_zh(self, text: str, today: date) -> Iterator[tuple[int, int, str]]:
        has_month = "月" in text
        for m in self._zh_full.finditer(text) if has_month else ():
            month, day = parse_int(m["m"]), parse_int(m["d"])
            if month is None or day is None:
                continue
            year = parse_int(m["y"]) if m["y"] else None
            found = _valid(year, month, day) if year is not None else nearest_month_day(today, day, month)
            yield from _emit(m.start(), m.end(), found)
        for m in self._zh_month_day.finditer(text) if has_month else ():
            rel, day = m["rel"], parse_int(m["d"])
            offset = -1 if rel.startswith("上") else 1 if rel.startswith("下") else 0
            yield from _emit(m.start(), m.end(), _day_of_month(add_months(today, offset), day or 0))
        for m in self._zh_word.finditer(text) if "天" in text or "日" in text or "儿" in text else ():
            yield m.start(), m.end(), (today + timedelta(days=_ZH_DAY_WORDS[m.group()])).isoformat()
        for m in self._zh_weekday.finditer(text) if "周" in text or "星期" in text or "礼拜" in text else ():
            rel = (m["rel"] or "").rstrip("个")
            week = {"上上": -2, "上": -1, "下": 1, "下下": 2}.get(rel, 0)
            yield m.start(), m.end(), weekday_in_week(today, _ZH_WEEKDAYS[m["wd"]], week).isoformat()
        for m in self._zh_shift.finditer(text) if "前" in text or "后" in text else ():
            n = parse_int(m["n"])
            if n is not None and n <= 1000:
                sign = -1 if m["dir"].endswith("前") else 1
                yield m.start(), m.end(), shift(today, sign * n, m["u"]).isoformat()

    def _find_en(self, text: str, today: date, words: frozenset[str]) -> Iterator[tuple[int, int, str]]:
        if not words.isdisjoint(_MONTH_WORDS):
            for m in self._en_month_day.finditer(text):
                yield from _emit(m.start(), m.end(), _month_day(today, m["mon"], int(m["d"]), m["y"]))
            for m in self._en_day_month.finditer(text):
                yield from _emit(m.start(), m.end(), _month_day(today, m["mon"], int(m["d"]), m["y"]))
        for m in self._en_nth.finditer(text) if not words.isdisjoint(_ORDINAL_WORDS) else ():
            yield from _emit(m.start("the"), m.end(), nearest_month_day(today, int(m["d"])))
        for m in self._en_word.finditer(text) if not words.isdisjoint(_DAY_WORDS) else ():
            word = m.group().lower()
            days = -2 if "before" in word else 2 if "after" in word else -1 if word == "yesterday" else 0
            days = 1 if word.startswith("tom") or word == "tmrw" else days
            yield m.start(), m.end(), (today + timedelta(days=days)).isoformat()
        for m in self._en_shift.finditer(text) if not words.isdisjoint(_SHIFT_WORDS) else ():
            n = parse_int(m["n"])
            if n is not None and n <= 1000:
                sign = -1 if m["dir"].lower() in ("ago", "earlier") else 1
                yield m.start(), m.end(), shift(today, sign * n, m["u"].lower()).isoformat()
        for m in self._en_weekday.finditer(text) if not words.isdisjoint(_WEEKDAY_WORDS) else ():
            rel = (m["rel"] or m["rel2"] or "").lower()
            weekday = _EN_WEEKDAYS.index((m["wd"] or m["wd2"])[:3].lower())
            start = m.start("wd" if m["wd"] else "wd2") if rel == "on" else m.start()
            yield start, m.end(), _en_weekday(today, weekday, " ".join(rel.split())).isoformat()


def _emit(start: int, end: int, found: date | None) -> Iterator[tuple[int, int, str]]:
    if found is not None:
        yield start, end, found.isoformat()


def _valid(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _en_weekday(today: date, weekday: int, rel: str) -> date:
    if rel == "coming":
        return today + timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)
    if rel in ("past", "this past"):
        return today - timedelta(days=(today.weekday() - weekday - 1) % 7 + 1)
    return weekday_in_week(today, weekday, {"last": -1, "next": 1}.get(rel, 0))


def _month_day(today: date, month_name: str, day: int, year: str | None) -> date | None:
    month = _EN_MONTHS.index(month_name[:3].lower()) + 1
    return _valid(int(year), month, day) if year else nearest_month_day(today, day, month)


def _day_of_month(month: date, day: int) -> date | None:
    return _valid(month.year, month.month, day)


def weekday_in_week(today: date, weekday: int, week_offset: int) -> date:
    """Day ``weekday`` (Monday 0) of the Monday–Sunday week ``week_offset`` weeks from today's."""
    monday = today - timedelta(days=today.weekday())
    return monday + timedelta(days=7 * week_offset + weekday)


def add_months(day: date, months: int) -> date:
    """Same day ``months`` later (or earlier), clamped to the month's last day (Jan 31 + 1 → Feb 28)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def shift(today: date, n: int, unit: str) -> date:
    """Today moved by ``n`` units (天/日/day, 周/星期/礼拜/week, 月/month, 年/year)."""
    if "月" in unit or unit.startswith("month"):
        return add_months(today, n)
    if "年" in unit or unit.startswith("year"):
        return add_months(today, 12 * n)
    weeks = any(w in unit for w in ("周", "星期", "礼拜", "week"))
    return today + timedelta(days=n * (7 if weeks else 1))


def nearest_month_day(today: date, day: int, month: int | None = None) -> date | None:
    """The date with this day (and month, if given) nearest to today: last, this or next month / year."""
    if month is not None:
        candidates = [_valid(today.year + k, month, day) for k in (-1, 0, 1)]
    else:
        candidates = [_day_of_month(add_months(today.replace(day=1), k), day) for k in (-1, 0, 1)]
    valid = [c for c in candidates if c is not None]
    return min(valid, key=lambda c: (abs((c - today).days), c < today)) if valid else None
