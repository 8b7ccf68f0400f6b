"""Per-message language detection for Chinese and English. Pure and fast (no model)."""

from __future__ import annotations

import re
from typing import Literal

from kefu.core.types import Locale

Detected = Literal["zh", "en", "mixed"]

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def detect(text: str) -> Detected:
    """``zh`` when Chinese characters carry the message, ``en`` when Latin words do, ``mixed`` when both do."""
    han = len(_CJK.findall(text))
    words = len(_LATIN_WORD.findall(text))
    if han == 0:
        return "en"
    if words == 0:
        return "zh"
    # A Chinese sentence with a product name or an English word in it is still Chinese.
    if han >= 2 * words:
        return "zh"
    if words >= 3 * han:
        return "en"
    return "mixed"


def reply_locale(text: str, hint: Locale) -> Locale:
    """The language to answer in. Mixed text is answered in Chinese; text with no words (an order number,
    a "?") in ``hint``, the language the conversation already uses."""
    detected = detect(text)
    if detected == "en":
        return "en" if _LATIN_WORD.search(text) else hint
    return "zh"
