"""What the simulated model says: a deterministic, grounded answer built from the passages in the prompt.

kefu's writer only shows sentences the passages support, with their citation numbers, so the simulator
answers the way a well-behaved Qwen3 would: two or three sentences copied from the first passages, each
followed by its number (``... [1].`` / ``…… [1]。``). A prompt without passages gets a fixed filler
paragraph in the customer's language. The same prompt always gets the same answer."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# "[1] Title\nbody" blocks, up to the next block or the customer's message (kefu.llm.prompt's layout).
_PASSAGE = re.compile(
    r"^\[(\d+)\] [^\n]*\n(.+?)(?=\n\n\[\d+\] |\n\n(?:Customer's message:|顾客的消息：)|\Z)", re.M | re.S
)
_LIST_MARK = re.compile(r"^\s*(?:[-*•]|\d+[.)、])\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s*")
MAX_SENTENCES = 3
FILLER = {
    "en": (
        "This is a simulated answer from the kefu vLLM simulator. It has the length of a short customer-service "
        "reply and says nothing about any order. A real model would answer from the passages it was given."
    ),
    "zh": (
        "这是 kefu vLLM 模拟器生成的模拟回答。它的长度和一条简短的客服回复相当，不涉及任何订单。"
        "真实模型会根据提供的资料作答。"
    ),
}


def language_of(text: str) -> str:
    """zh when the text has any Han character, else en."""
    return "zh" if _CJK.search(text) else "en"


def _content(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # OpenAI content parts
        return "".join(str(part.get("text") or "") for part in content if isinstance(part, Mapping))
    return str(content or "")


def _cited(sentence: str, number: str, language: str) -> str:
    end = sentence[-1] if sentence[-1] in ".!?。！？" else ""
    body = sentence[: len(sentence) - len(end)].rstrip()
    return f"{body} [{number}]{end or ('。' if language == 'zh' else '.')}"


def answer_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """The answer to the last user message: sentences of its passages with citations, or the filler."""
    last = next((_content(m) for m in reversed(messages) if m.get("role") == "user"), "")
    language = language_of(last)
    sentences: list[str] = []
    for match in _PASSAGE.finditer(last):
        number = match.group(1)
        for line in match.group(2).splitlines():
            line = _LIST_MARK.sub("", line).strip()
            if not line or line.endswith((":", "：")):
                continue  # a list's lead-in says nothing by itself
            for sentence in _SENTENCE_END.split(line):
                if sentence.strip() and len(sentences) < MAX_SENTENCES:
                    sentences.append(_cited(sentence.strip(), number, language))
        if len(sentences) >= MAX_SENTENCES:
            break
    if not sentences:
        return FILLER[language]
    return ("" if language == "zh" else " ").join(sentences)


def split_pieces(text: str, count: int) -> list[str]:
    """``text`` cut into ``count`` consecutive pieces of about equal length (one per streamed token)."""
    count = max(1, count)
    bounds = [round(i * len(text) / count) for i in range(count + 1)]
    return [text[bounds[i] : bounds[i + 1]] for i in range(count)]
