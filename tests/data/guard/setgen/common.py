"""Small helpers every value builder uses: weighted choice, random digits, full-width typing."""

from collections.abc import Sequence
from random import Random
from typing import TypeVar

Choice = TypeVar("Choice")


def weighted(rng: Random, options: Sequence[tuple[Choice, int]]) -> Choice:
    """One option, drawn with the integer weight written beside it."""
    values = [value for value, _ in options]
    weights = [weight for _, weight in options]
    return rng.choices(values, weights=weights, k=1)[0]


def digits(rng: Random, count: int, first_nonzero: bool = False) -> str:
    head = str(rng.randrange(1, 10)) if first_nonzero and count else ""
    return head + "".join(str(rng.randrange(10)) for _ in range(count - len(head)))


def full_width(text: str) -> str:
    """What a Chinese IME in full-width mode types: ASCII letters, digits and signs shifted to U+FF01..FF5E."""
    return "".join(chr(ord(char) + 0xFEE0) if "!" <= char <= "~" else char for char in text)


def maybe_full_width(rng: Random, lang: str, text: str, zh_rate: float, en_rate: float = 0.0) -> str:
    return full_width(text) if rng.random() < (zh_rate if lang == "zh" else en_rate) else text


def grouped(number: str, sizes: Sequence[int], separator: str) -> str:
    """Split a number into groups of the given sizes; the last size repeats for what is left."""
    groups: list[str] = []
    position = 0
    index = 0
    while position < len(number):
        size = sizes[min(index, len(sizes) - 1)]
        groups.append(number[position : position + size])
        position += size
        index += 1
    return separator.join(groups)


def words(text: str, separator: str | None = None) -> tuple[str, ...]:
    """A pool written as one string (keeps long pools short on the page); split on white space by default."""
    return tuple(part.strip() for part in text.split(separator) if part.strip())
