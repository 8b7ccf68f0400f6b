"""Encodings attackers use to slip an instruction past a filter, applied to template text marked «enc:text»."""

import base64
import codecs
import re
import urllib.parse
from collections.abc import Callable, Mapping
from types import MappingProxyType

LEET = str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"})
# Cyrillic letters that look like Latin ones.
HOMOGLYPHS = str.maketrans({"a": "а", "e": "е", "o": "о", "i": "і", "c": "с", "p": "р", "x": "х", "y": "у"})
ZERO_WIDTH_SPACE = "\u200b"


def full_width_text(text: str) -> str:
    return "".join(
        chr(ord(char) + 0xFEE0) if "!" <= char <= "~" else "\u3000" if char == " " else char for char in text
    )


def spaced(text: str) -> str:
    return "  ".join(" ".join(word) for word in text.split(" "))


ENCODERS: Mapping[str, Callable[[str], str]] = MappingProxyType(
    {
        "b64": lambda text: base64.b64encode(text.encode()).decode(),
        "couponb64": lambda text: base64.b64encode(text.encode()).decode().rstrip("="),
        "leet": lambda text: text.translate(LEET),
        "spaced": spaced,
        "zw": lambda text: ZERO_WIDTH_SPACE.join(text),
        "fullwidth": full_width_text,
        "homoglyph": lambda text: text.translate(HOMOGLYPHS),
        "rot13": lambda text: codecs.encode(text, "rot13"),
        "url": lambda text: urllib.parse.quote(text),
        "reverse": lambda text: text[::-1],
        "hex": lambda text: " ".join(f"{byte:02x}" for byte in text.encode()),
        "uescape": lambda text: "".join(f"\\u{ord(char):04x}" for char in text),
    }
)
ENCODED = re.compile(r"«([a-z0-9]+):([^»]+)»")


def apply_encodings(template: str) -> str:
    def encode(match: re.Match[str]) -> str:
        return ENCODERS[match.group(1)](match.group(2))

    return ENCODED.sub(encode, template)
