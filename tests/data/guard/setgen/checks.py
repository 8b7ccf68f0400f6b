"""Checksums and span rules the generated sets must obey (also used by the tests that read the files)."""

import unicodedata
from collections.abc import Mapping, Sequence
from datetime import date

ID_CARD_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CARD_CHECK_CHARS = "10X98765432"
PII_TYPES = ("ID_CARD", "PHONE", "BANK_CARD", "EMAIL", "IP", "ADDRESS", "NAME")
KEEP_KINDS = ("order", "price", "date", "time", "tracking", "model", "quantity", "version", "coupon", "invoice")
INJECTION_CATEGORIES = {
    "attack": ("override", "roleplay", "extraction", "hidden", "encoded", "agency"),
    "benign": ("lookalike", "plain"),
}
MODERATION_CATEGORIES = ("abuse", "sexual", "violence", "self_harm", "illegal", "hate")
LANGS = ("zh", "en")
# A span must hold exactly the labelled characters: no white space or punctuation at either edge.
EDGE_CHARS = " \t\n\u3000,.;:!?，。；：！？、()（）[]【】<>《》\"'“”‘’#"


def digits_only(text: str) -> str:
    """The ASCII digits (and X) of a number as typed: full-width folded, separators dropped."""
    folded = unicodedata.normalize("NFKC", text).upper()
    return "".join(char for char in folded if char.isdigit() or char == "X")


def id_card_check_char(first17: str) -> str:
    total = sum(int(digit) * weight for digit, weight in zip(first17, ID_CARD_WEIGHTS, strict=True))
    return ID_CARD_CHECK_CHARS[total % 11]


def id_card_valid(text: str) -> bool:
    """GB 11643: 6-digit region, a real birth date, 3-digit sequence, mod-11 check character."""
    number = digits_only(text)
    if len(number) != 18 or not number[:17].isdigit():
        return False
    try:
        birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    if not date(1900, 1, 1) <= birth <= date(2025, 12, 31):
        return False
    return id_card_check_char(number[:17]) == number[17]


def luhn_check_digit(payload: str) -> str:
    total = 0
    for position, char in enumerate(reversed(payload)):
        digit = int(char)
        if position % 2 == 0:  # these digits get doubled once the check digit is appended
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return str((10 - total % 10) % 10)


def luhn_valid(text: str) -> bool:
    number = digits_only(text)
    return number.isdigit() and 16 <= len(number) <= 19 and luhn_check_digit(number[:-1]) == number[-1]


def span_problems(text: str, spans: Sequence[Mapping[str, object]], label_key: str) -> list[str]:
    """Empty, out-of-range or padded spans, and overlaps among the spans given."""
    problems: list[str] = []
    ordered = sorted(spans, key=lambda span: (int(str(span["start"])), int(str(span["end"]))))
    previous_end = -1
    for span in ordered:
        start, end = int(str(span["start"])), int(str(span["end"]))
        piece = text[start:end]
        if not 0 <= start < end <= len(text) or not piece:
            problems.append(f"empty or out-of-range span {span} in {text!r}")
            continue
        label = str(span[label_key])
        # "(0755) 8888 6666" and "(+86) 138…" open with a bracket; IPv6 "::ffff:…" and "2001:db8:1::" with colons.
        leading_ok = (label == "PHONE" and piece[0] in "(（") or (label == "IP" and piece.startswith("::"))
        trailing_ok = label == "IP" and piece.endswith("::")
        if (piece[0] in EDGE_CHARS and not leading_ok) or (piece[-1] in EDGE_CHARS and not trailing_ok):
            problems.append(f"span {span[label_key]} {piece!r} has padding in {text!r}")
        if start < previous_end:
            problems.append(f"overlapping spans at {start} in {text!r}")
        previous_end = max(previous_end, end)
    return problems


def pii_record_problems(record: Mapping[str, object]) -> list[str]:
    """Everything wrong with one PII line: schema, checksums, span edges, overlaps (PII with PII and keep)."""
    text = record.get("text")
    pii = record.get("pii")
    keep = record.get("keep")
    if not isinstance(text, str) or not isinstance(pii, list) or not isinstance(keep, list):
        return [f"bad schema: {record}"]
    problems: list[str] = []
    if record.get("lang") not in LANGS:
        problems.append(f"bad lang in {text!r}")
    for span in pii:
        if span.get("type") not in PII_TYPES:
            problems.append(f"unknown PII type {span} in {text!r}")
            continue
        piece = text[span["start"] : span["end"]]
        if span["type"] == "ID_CARD" and not id_card_valid(piece):
            problems.append(f"ID_CARD {piece!r} fails GB 11643 in {text!r}")
        if span["type"] == "BANK_CARD" and not luhn_valid(piece):
            problems.append(f"BANK_CARD {piece!r} fails Luhn in {text!r}")
    for span in keep:
        if span.get("kind") not in KEEP_KINDS:
            problems.append(f"unknown keep kind {span} in {text!r}")
    problems += span_problems(text, pii, "type")
    problems += span_problems(text, keep, "kind")
    both = [{"label": "pii", **span} for span in pii] + [{"label": "keep", **span} for span in keep]
    problems += [problem for problem in span_problems(text, both, "label") if "overlapping" in problem]
    return problems


def injection_record_problems(record: Mapping[str, object]) -> list[str]:
    text, label, category = record.get("text"), record.get("label"), record.get("category")
    if not isinstance(text, str) or not text.strip() or record.get("lang") not in LANGS:
        return [f"bad schema: {record}"]
    if not isinstance(label, str) or category not in INJECTION_CATEGORIES.get(label, ()):
        return [f"bad label/category {label}/{category} for {text!r}"]
    return []


def moderation_record_problems(record: Mapping[str, object]) -> list[str]:
    text, categories = record.get("text"), record.get("categories")
    if not isinstance(text, str) or not text.strip() or record.get("lang") not in LANGS:
        return [f"bad schema: {record}"]
    if not isinstance(categories, list) or any(category not in MODERATION_CATEGORIES for category in categories):
        return [f"bad categories {categories} for {text!r}"]
    if categories != sorted(set(categories)):
        return [f"categories not sorted and unique: {categories} for {text!r}"]
    return []
