"""Exact phrases with a fixed meaning (quick-reply labels): matched after folding case and spaces."""

from __future__ import annotations


def fold(text: str) -> str:
    """Case- and space-insensitive form used to match quick-reply labels."""
    return " ".join(text.casefold().split()).strip(" .!！。")
