"""PII spans found by validated patterns, and their redaction.

Numbers are only PII when their format checks out (GB 11643 checksum and a real birth date for resident ids,
Luhn for bank cards, real area codes for landlines) and no order, tracking or invoice cue stands just before
them: an order number that happens to pass Luhn is still an order number. Addresses and names are found by
their structure and cue words (``pii_text``); everything else (prices, dates, model numbers) is left alone.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from kefu.core.types import Span
from kefu.guard.pii_text import find_addresses, find_names

PII_TYPES = ("ID_CARD", "PHONE", "BANK_CARD", "EMAIL", "IP", "ADDRESS", "NAME")

# Full-width ASCII (０-９, ＋, ＠ ...) and the ideographic space map one character to one, so offsets found in
# the folded text are offsets in the original.
_FOLD = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20, 0x2010: 0x2D, 0x2013: 0x2D, 0x2212: 0x2D}

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9_.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}(?![A-Za-z])"
)
_IPV4 = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?::\d{1,5})?(?![\d]|\.\d)"
)
_IPV6_CANDIDATE = re.compile(
    r"\[?(?<![A-Za-z0-9_:])[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*(?:%\w+)?\]?(?::\d{1,5})?"
)
# 18 characters, sometimes typed in 6-8-4 groups: region, birth date, sequence and check character.
_ID_CARD = re.compile(
    r"(?<![0-9A-Za-z])[1-8]\d{5}[ -]?(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])[ -]?\d{3}[\dXx]"
    r"(?![0-9A-Za-z])"
)
# 16-19 digits, possibly in groups split by single spaces or dashes.
_CARD = re.compile(r"(?<![A-Za-z0-9_-])(?:\d(?:[ -]| {2})?){15,18}\d(?![A-Za-z0-9_]|-\d)")
_MOBILE = re.compile(r"(?<![A-Za-z0-9_+])(?:(?:\+|00)86[\s-]?|\(\+?86\)\s?)?1[3-9]\d(?:[\s-]?\d{4}){2}(?!\d)")
_AREA = r"(?:10|2\d|[3-9]\d{2})"  # Beijing, the 02x cities, then three-digit codes
_LANDLINE = re.compile(
    rf"(?<![A-Za-z0-9_+])(?:(?:\+|00)86[\s-]?(?:\(0?{_AREA}\)|0?{_AREA})|\(0{_AREA}\)|0{_AREA})"
    r"[\s-]?[2-9]\d{2,3}[\s-]?\d{4}(?:\s*(?:转|分机|ext\.?|x)\s*\d{1,6}|-\d{1,5})?(?!\d)",
    re.IGNORECASE,
)
_INTERNATIONAL = re.compile(
    r"(?<![A-Za-z0-9_+])(?:\+|00)(?!86)[1-9]\d{0,2}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{1,5}(?:[\s.-]?\d{2,5}){1,4}"
    r"(?:\s*(?:ext\.?|x|转)\s*\d{1,6})?(?!\d)",
    re.IGNORECASE,
)
# UK mobiles in their national form (07xxx xxxxxx).
_UK_MOBILE = re.compile(r"(?<![A-Za-z0-9_+])07\d{3}\s?\d{6}(?!\d)")
# North American numbers without a country code, only with separators (a bare 10-digit run is too often an id).
_NANP = re.compile(r"(?<![A-Za-z0-9_+(])(?:\([2-9]\d{2}\)\s?|[2-9]\d{2}[\s.-])[2-9]\d{2}[\s.-]\d{4}(?!\d)")
# A number written right after one of these is that thing, not personal data.
_NOT_PII_CUE = re.compile(
    r"(?:订单|单号|运单|快递|物流|发票|编号|型号|货号|流水|交易号|优惠码|券码|工单|批次|序列号|条码|版本|固件|"
    r"\b(?:order|tracking|waybill|invoice|ref(?:erence)?|sku|coupon|ticket|case|serial|s/?n|imei|model|part|"
    r"receipt|transaction|confirmation|booking|version|ver|build|firmware)\b)[^\d\n]{0,8}$",
    re.IGNORECASE,
)
_PII_CUE = re.compile(
    r"(?:电话|手机|号码|卡号|银行卡|信用卡|储蓄卡|身份证|证件|联系|致电|"
    r"\b(?:phone|mobile|tel|call|cell|card|id|whatsapp|contact)\b)[^\d\n]{0,8}$",
    re.IGNORECASE,
)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_CARD_PREFIX = re.compile(r"^(?:3[0-9]|4|5[1-5]|2[2-7]|6|9)")


def fold_width(text: str) -> str:
    return text.translate(_FOLD)


def id_card_valid(number: str) -> bool:
    """GB 11643 checksum of an 18-character resident identity number."""
    body, check = number[:17], number[17].upper()
    return body.isdigit() and _ID_CHECK[sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS, strict=True)) % 11] == check


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _cued_as_not_pii(text: str, start: int) -> bool:
    before = text[max(0, start - 20) : start]
    not_pii = _NOT_PII_CUE.search(before)
    if not_pii is None:
        return False
    pii = _PII_CUE.search(before)
    # "订单的联系电话 138..." : the nearer cue wins.
    return pii is None or pii.start() < not_pii.start()


def _ipv6(text: str) -> Iterable[tuple[int, int]]:
    for m in _IPV6_CANDIDATE.finditer(text):
        raw = m.group(0)
        core = raw
        port = re.search(r"\]:\d{1,5}$", core)
        if port:
            core = core[: port.start() + 1]
        core = core.strip("[]").split("%")[0]
        if core.count(":") < 2:
            continue
        try:
            ipaddress.IPv6Address(core)
        except ValueError:
            continue
        yield m.start(), m.end()


def _numbers(text: str) -> Iterable[tuple[str, int, int]]:
    for m in _ID_CARD.finditer(text):
        if id_card_valid(re.sub(r"[ -]", "", m.group(0))) and not _cued_as_not_pii(text, m.start()):
            yield "ID_CARD", m.start(), m.end()
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group(0))
        if _CARD_PREFIX.match(digits) and luhn_valid(digits) and not _cued_as_not_pii(text, m.start()):
            yield "BANK_CARD", m.start(), m.end()
    for pattern in (_MOBILE, _LANDLINE, _INTERNATIONAL, _UK_MOBILE, _NANP):
        for m in pattern.finditer(text):
            count = sum(c.isdigit() for c in m.group(0))
            if 7 <= count <= 17 and not _cued_as_not_pii(text, m.start()):
                yield "PHONE", m.start(), m.end()


# Every kind of PII needs one of these: a digit, an @, an IPv6 colon, or a cue word of a name or an address.
# Most strings in a turn's events (intent names, flow steps, template keys) have none and are skipped.
_MAYBE_PII = re.compile(
    r"[0-9０-９@:：]|[省市区县镇乡路街道巷弄号栋幢室楼座村苑先生女士小姐老师经理总收叫名人是]"
    r"|(?i:name|this is|i am|i'm|it's|it is|\bto\b|\bfor\b|mr|mrs|ms\b|miss|dr\b|regards|thanks|sincerely|signed"
    r"|recipient|addressee|holder|contact)"
)


def find_pii(text: str) -> tuple[Span, ...]:
    """Every PII span in ``text``; earlier kinds win where spans overlap (an email's digits are not a phone)."""
    if _MAYBE_PII.search(text) is None:
        return ()
    folded = fold_width(text)
    found: list[tuple[str, int, int]] = []
    found.extend(("EMAIL", m.start(), m.end()) for m in _EMAIL.finditer(folded))
    found.extend(("IP", s, e) for s, e in _ipv6(folded))  # first: "::ffff:10.0.0.1" is one address
    found.extend(("IP", m.start(), m.end()) for m in _IPV4.finditer(folded) if not _cued_as_not_pii(folded, m.start()))
    found.extend(_numbers(folded))
    found.extend(("ADDRESS", s, e) for s, e in find_addresses(folded))
    found.extend(("NAME", s, e) for s, e in find_names(folded))
    spans: list[Span] = []
    for kind, start, end in found:
        if any(start < s.end and s.start < end for s in spans):
            continue
        spans.append(Span(kind, start, end, text[start:end]))
    return tuple(sorted(spans, key=lambda s: s.start))


def redact(text: str, spans: tuple[Span, ...]) -> str:
    """``text`` with every span replaced by ``[TYPE]``."""
    out, last = [], 0
    for span in spans:
        out.append(text[last : span.start])
        out.append(f"[{span.type}]")
        last = span.end
    out.append(text[last:])
    return "".join(out)
