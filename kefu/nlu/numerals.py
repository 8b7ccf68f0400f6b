"""Numbers as customers type them: Arabic digits, Chinese numerals (一二两三…十百千万, 半) or English words.

One parser shared by money, quantities, durations and dates, so "两百元", "两个" and "两周" agree on what
"两" is. The ``*_PATTERN`` strings are regex fragments for those extractors to embed; ``parse_number``
turns what such a fragment matched into a ``Decimal`` (``None`` when it is not a number after all).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Final

_ZH_DIGITS: Final = MappingProxyType(
    {
        "零": 0, "〇": 0, "一": 1, "壹": 1, "二": 2, "两": 2, "贰": 2, "三": 3, "叁": 3, "四": 4, "肆": 4,
        "五": 5, "伍": 5, "六": 6, "陆": 6, "七": 7, "柒": 7, "八": 8, "捌": 8, "九": 9, "玖": 9,
    }
)  # fmt: skip
_ZH_SMALL_UNITS: Final = MappingProxyType({"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000})
_ZH_BIG_UNITS: Final = MappingProxyType({"万": 10**4, "萬": 10**4, "亿": 10**8})

_EN_UNITS: Final = MappingProxyType(
    {
        "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
        "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
        "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "a": 1, "an": 1, "single": 1,
        "couple": 2, "dozen": 12,
    }
)  # fmt: skip
_EN_TENS: Final = MappingProxyType(
    {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
)

ZH_NUMERAL_CHARS: Final = "".join([*_ZH_DIGITS, *_ZH_SMALL_UNITS, *_ZH_BIG_UNITS])
"""Every character a Chinese numeral may contain (for character classes)."""

ZH_NUMBER_PATTERN: Final = rf"[{ZH_NUMERAL_CHARS}]+(?:点[{''.join(_ZH_DIGITS)}]+)?"
"""A Chinese numeral: 两, 十二, 三千五百, 一万二, 三点五."""

DIGITS_PATTERN: Final = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
"""Arabic digits with optional thousands separators and decimals: 5, 1,299, 199.5."""

_EN_SMALL = "zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen"
EN_NUMBER_PATTERN: Final = (
    rf"(?:(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)(?:[\s-](?:one|two|three|four|five|six|seven|"
    rf"eight|nine))?|{_EN_SMALL}|seventeen|eighteen|nineteen|a\s+dozen|dozen|a\s+couple\s+of|a\s+couple)"
)
"""English number words up to ninety-nine ("twenty-four", "a dozen"); embed with word boundaries."""

NUMBER_PATTERN: Final = rf"(?:{DIGITS_PATTERN}[万千]?|{ZH_NUMBER_PATTERN})"
"""Digits (with an optional 万/千 multiplier: 1.2万) or a Chinese numeral; English words are separate."""

BOUNDED_NUMBER_PATTERN: Final = rf"(?:(?<![\d.,]){DIGITS_PATTERN}[万千]?|(?<![{ZH_NUMERAL_CHARS}]){ZH_NUMBER_PATTERN})"
"""``NUMBER_PATTERN`` that is not the tail of a longer number (in 13天 only 13, in 十二个 only 十二)."""

_MIXED = re.compile(r"(\d+(?:\.\d+)?)([万千百])")


def parse_number(text: str) -> Decimal | None:
    """The value of digits, a Chinese numeral (半 is 0.5) or English number words; ``None`` if it is none."""
    raw = text.strip().lower()
    if not raw:
        return None
    if raw[0].isdigit():
        mixed = _MIXED.fullmatch(raw)
        if mixed:
            unit = {"万": 10**4, "千": 1000, "百": 100}[mixed.group(2)]
            return Decimal(mixed.group(1)) * unit
        try:
            return Decimal(raw.replace(",", ""))
        except InvalidOperation:
            return None
    if raw == "半":
        return Decimal("0.5")
    if raw[0].isascii():
        words = _parse_en(raw)
        return None if words is None else Decimal(words)
    return _parse_zh(raw)


def parse_int(text: str) -> int | None:
    """Like ``parse_number`` but only whole numbers ("三" → 3, "2.5" → None)."""
    value = parse_number(text)
    if value is None or value != value.to_integral_value():
        return None
    return int(value)


def _parse_en(raw: str) -> int | None:
    words = [w for w in re.split(r"[\s-]+", raw) if w and w != "of"]
    if words[:1] == ["a"] and len(words) > 1:  # "a dozen", "a couple"
        words = words[1:]
    if len(words) == 1:
        word = words[0]
        return _EN_UNITS.get(word, _EN_TENS.get(word))
    if len(words) == 2 and words[0] in _EN_TENS and _EN_UNITS.get(words[1], 0) in range(1, 10):
        return _EN_TENS[words[0]] + _EN_UNITS[words[1]]
    return None


def _parse_zh(raw: str) -> Decimal | None:
    whole, _, fraction = raw.partition("点")
    integer = _parse_zh_integer(whole) if whole else 0
    if integer is None:
        return None
    if not fraction:
        return Decimal(integer)
    if any(ch not in _ZH_DIGITS for ch in fraction):
        return None
    return Decimal(f"{integer}.{''.join(str(_ZH_DIGITS[ch]) for ch in fraction)}")


def _parse_zh_integer(raw: str) -> int | None:
    """三千五百 → 3500; colloquial 三千五 → 3500, 一万二 → 12000; digit strings 二零二六 → 2026."""
    if any(ch not in _ZH_DIGITS and ch not in _ZH_SMALL_UNITS and ch not in _ZH_BIG_UNITS for ch in raw):
        return None
    if all(ch in _ZH_DIGITS for ch in raw):
        return int("".join(str(_ZH_DIGITS[ch]) for ch in raw))
    result = section = number = 0
    last_unit = 1
    for ch in raw:
        if ch in _ZH_DIGITS:
            number = _ZH_DIGITS[ch]
        elif ch in _ZH_SMALL_UNITS:
            last_unit = _ZH_SMALL_UNITS[ch]
            section += (number or 1) * last_unit
            number = 0
        else:
            big = _ZH_BIG_UNITS[ch]
            if big > 10**4:
                result = (result + section + number) * big
            else:
                result += (section + number) * big
            section = number = 0
            last_unit = big
    if number and raw[-1] in _ZH_DIGITS and len(raw) > 1 and raw[-2] in _ZH_SMALL_UNITS.keys() | _ZH_BIG_UNITS:
        number *= max(last_unit // 10, 1)  # 三千五 is 3500, 十五 stays 15
    return result + section + number
