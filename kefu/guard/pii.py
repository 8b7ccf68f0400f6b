"""PII spans found by validated patterns (checksums where the format has one) and ``[TYPE]`` redaction."""

from __future__ import annotations

import re

from kefu.core.types import Span

_ID_CARD = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_BANK_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){15,18}\d(?![\d-])")
_PHONE = re.compile(
    r"(?<![\d+])(?:\+?86[\s-]?)?1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}(?!\d)|(?<![\w+])\+\d{1,3}[\s-]?\d{2,4}(?:[\s-]?\d{2,4}){2,3}(?!\d)"
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


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


def find_pii(text: str) -> tuple[Span, ...]:
    spans: list[Span] = []

    def add(kind: str, m: re.Match[str]) -> None:
        if not any(m.start() < s.end and s.start < m.end() for s in spans):
            spans.append(Span(kind, m.start(), m.end(), m.group(0)))

    for m in _EMAIL.finditer(text):
        add("EMAIL", m)
    for m in _ID_CARD.finditer(text):
        if id_card_valid(m.group(0)):
            add("ID_CARD", m)
    for m in _BANK_CARD.finditer(text):
        if luhn_valid(re.sub(r"\D", "", m.group(0))):
            add("BANK_CARD", m)
    for m in _PHONE.finditer(text):
        add("PHONE", m)
    return tuple(sorted(spans, key=lambda s: s.start))


def redact(text: str, spans: tuple[Span, ...]) -> str:
    out, last = [], 0
    for span in spans:
        out.append(text[last : span.start])
        out.append(f"[{span.type}]")
        last = span.end
    out.append(text[last:])
    return "".join(out)
