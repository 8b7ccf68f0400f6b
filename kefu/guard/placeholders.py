"""Reversible redaction for text sent to a model: each PII value becomes a numbered placeholder such as
``[PHONE_1]``, the same value always the same placeholder within one turn, and the model's reply (and the
arguments of any tool it calls) get the real values back, so the customer still sees their own number and a
tool can still use it, while the model server never receives it."""

from __future__ import annotations

import re
from typing import Any

from kefu.guard.pii import find_pii

_PLACEHOLDER = re.compile(r"\[([A-Z_]+?)_(\d{1,3})\]")


class Placeholders:
    """One turn's mapping. Not shared between turns: numbering restarts for every conversation turn."""

    def __init__(self) -> None:
        self._by_value: dict[str, str] = {}
        self._by_token: dict[str, str] = {}
        self._counts: dict[str, int] = {}

    def hide(self, text: str) -> str:
        spans = find_pii(text)
        if not spans:
            return text
        out, last = [], 0
        for span in spans:
            out.append(text[last : span.start])
            out.append(self._token(span.type, span.text))
            last = span.end
        out.append(text[last:])
        return "".join(out)

    def _token(self, kind: str, value: str) -> str:
        token = self._by_value.get(value)
        if token is None:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            token = f"[{kind}_{self._counts[kind]}]"
            self._by_value[value] = token
            self._by_token[token] = value
        return token

    def reveal(self, text: str) -> str:
        if not self._by_token or "[" not in text:
            return text
        return _PLACEHOLDER.sub(lambda m: self._by_token.get(m.group(0), m.group(0)), text)

    def reveal_args(self, value: Any) -> Any:
        """A tool call's arguments with the real values put back (strings anywhere inside)."""
        if isinstance(value, str):
            return self.reveal(value)
        if isinstance(value, dict):
            return {k: self.reveal_args(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.reveal_args(v) for v in value]
        return value

    @property
    def hidden(self) -> int:
        return len(self._by_token)
