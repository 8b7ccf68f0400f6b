"""Amounts of money with a currency: ¥199, 199.5 元, RMB 200, 两百块, 3块5, $25, 25 dollars, USD 25.00, €10.

The value is the amount with two decimals, a space and the ISO 4217 code ("199.00 CNY", "25.00 USD"), so a
refund flow can compare amounts without caring how they were written. A number without a currency ("iPhone
15", "15W") is never money; ¥ is read as yuan (the shop's home currency), not yen.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from types import MappingProxyType
from typing import Final

from kefu.nlu.numerals import DIGITS_PATTERN, NUMBER_PATTERN, parse_number

_PREFIX_CODES: Final = MappingProxyType(
    {
        "¥": "CNY", "￥": "CNY", "rmb": "CNY", "cny": "CNY", "$": "USD", "us$": "USD", "usd": "USD",
        "€": "EUR", "eur": "EUR", "£": "GBP", "gbp": "GBP", "hk$": "HKD", "hkd": "HKD", "jpy": "JPY",
    }
)  # fmt: skip
_SUFFIX_CODES: Final = MappingProxyType(
    {
        "元": "CNY", "块": "CNY", "块钱": "CNY", "人民币": "CNY", "rmb": "CNY", "cny": "CNY", "yuan": "CNY",
        "美元": "USD", "美金": "USD", "刀": "USD", "dollar": "USD", "dollars": "USD", "bucks": "USD",
        "usd": "USD", "$": "USD", "欧元": "EUR", "euro": "EUR", "euros": "EUR", "eur": "EUR", "€": "EUR",
        "英镑": "GBP", "gbp": "GBP", "港币": "HKD", "港元": "HKD", "hkd": "HKD", "日元": "JPY", "yen": "JPY",
        "jpy": "JPY",
    }
)  # fmt: skip

# 块 is also a measure word ("两块手表"): it is money only before 钱, a jiao digit, a non-Chinese character,
# or a particle / verb that follows prices ("200块的", "50块吗", "100块退给我").
_KUAI_FOLLOWERS = "钱的吗呢啊吧了呀哦么嘛左多以还就都也不太到给是退买怎可贵"
# 元 starts words too (元旦 New Year's Day, 元件 component).
_YUAN_NOT_BEFORE = "旦宵素件器首老月气"
_JIAO = "0-9一二两三四五六七八九"


class MoneyFinder:
    """Finds money amounts; regexes are compiled once per extractor, not per message."""

    def __init__(self) -> None:
        prefix = r"US\$|HK\$|RMB|CNY|USD|EUR|GBP|HKD|JPY|[¥￥$€£]"
        self._prefixed = re.compile(
            rf"(?<![A-Za-z0-9])(?P<cur>{prefix})\s?(?P<num>{DIGITS_PATTERN})(?![\d.,]*\d)(?!\s?%)",
            re.IGNORECASE,
        )
        zh_suffix = (
            rf"美元|美金|欧元|英镑|港币|港元|日元|人民币|刀(?![\u4e00-\u9fff])|元(?![{_YUAN_NOT_BEFORE}])"
            rf"|块(?:钱|(?P<jiao>[{_JIAO}])(?![0-9])毛?钱?|(?=[{_KUAI_FOLLOWERS}]|[^\u4e00-\u9fff]|$))"
        )
        en_suffix = r"(?:dollars?|bucks|usd|yuan|rmb|cny|euros?|eur|gbp|hkd|yen|jpy)(?![A-Za-z])|[$€]"
        self._suffixed = re.compile(
            rf"(?<![A-Za-z0-9.,])(?P<num>{NUMBER_PATTERN})\s?(?P<cur>{zh_suffix}|{en_suffix})",
            re.IGNORECASE,
        )
        self._hint = re.compile(r"[\d一二两三四五六七八九十百千万]")

    def find(self, text: str) -> Iterator[tuple[int, int, str]]:
        """(start, end, "199.00 CNY") for each amount, prefixed forms first."""
        if not self._hint.search(text):
            return
        for m in self._prefixed.finditer(text):
            amount = parse_number(m.group("num"))
            if amount is not None:
                yield m.start(), m.end(), format_money(amount, _PREFIX_CODES[m.group("cur").lower()])
        for m in self._suffixed.finditer(text):
            amount = parse_number(m.group("num"))
            if amount is None:
                continue
            jiao = m.group("jiao")
            if jiao:
                if amount != amount.to_integral_value():
                    continue
                amount += (parse_number(jiao) or Decimal(0)) / 10
            yield m.start(), m.end(), format_money(amount, _SUFFIX_CODES[_suffix_key(m.group("cur"))])


def _suffix_key(currency: str) -> str:
    """ "块5毛" → "块", "Dollars" → "dollars"."""
    key = currency.lower()
    if key.startswith("块"):
        return "块"
    if key.startswith(("刀", "元")):
        return key[0]
    return key


def format_money(amount: Decimal, currency: str) -> str:
    """The normalised value: two decimals and the ISO code ("199.00 CNY")."""
    return f"{amount.quantize(Decimal('0.01')):f} {currency}"
