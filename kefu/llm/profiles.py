"""Per-model-family quirks of OpenAI-compatible chat servers (vLLM, llama.cpp, SGLang, Ollama).

A profile says what extra request fields a family needs and how to read its replies: only the
customer-visible text (never the model's reasoning) and the tool calls it asked for, whether the server
parsed them into ``tool_calls`` or left Hermes-style ``<tool_call>`` blocks in the content.

One scanner (:class:`ContentFilter`) does the reading for streamed and whole replies alike, so a streamed
answer shows the same text as the same answer read at once. Its one known difference: a stray ``</think>``
after visible text (the opening tag was in the prompt template) drops everything before it in a whole reply,
but a stream has already shown that text; the stream only hides the tag itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal, Protocol

from kefu.llm.types import RequestedCall

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
TOOL_OPEN, TOOL_CLOSE = "<tool_call>", "</tool_call>"
# Tags that end plain text; a stray </think> is among them so it never reaches the customer.
_TEXT_TAGS = (THINK_OPEN, THINK_CLOSE, TOOL_OPEN)


class StreamFilter(Protocol):
    def feed(self, piece: str) -> str: ...
    def flush(self) -> str: ...
    @property
    def tool_calls(self) -> list[RequestedCall]: ...


class ModelProfile(Protocol):
    name: str

    def request_extras(self, *, thinking: bool = False) -> dict[str, Any]: ...
    def message_text(self, message: Mapping[str, Any]) -> str: ...
    def tool_calls(self, message: Mapping[str, Any]) -> list[RequestedCall]: ...
    def stream_filter(self) -> StreamFilter: ...


def _partial_tag_len(text: str, tags: tuple[str, ...]) -> int:
    """Length of the longest tail of ``text`` that is a proper prefix of one of ``tags``."""
    for k in range(min(len(text), max(map(len, tags)) - 1), 0, -1):
        tail = text[-k:]
        if any(tag.startswith(tail) for tag in tags):
            return k
    return 0


def encode_arguments(arguments: Any) -> str:
    """Tool-call arguments as JSON text: kept as the model wrote them, or encoded when a server decoded them."""
    if isinstance(arguments, str):
        return arguments  # as the model wrote it
    return json.dumps({} if arguments is None else arguments, ensure_ascii=False)


def _hermes_call(body: str, call_id: str) -> RequestedCall | None:
    """The call in one Hermes block body, or None when it is not a JSON object with a string name."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    arguments = data.get("arguments", data.get("parameters"))  # some fine-tunes write "parameters"
    return RequestedCall(id=call_id, name=data["name"], arguments=encode_arguments(arguments))


class ContentFilter:
    """Streams content while hiding ``<think>`` and ``<tool_call>`` blocks; collects the Hermes calls.

    A tail that could still become a tag (at most ``len("<tool_call>") - 1`` characters) is held back until
    the next piece shows whether it is one. Whitespace before the first visible character is dropped; later
    whitespace is kept, so "A<think>x</think> B" still reads "A B".
    """

    def __init__(self) -> None:
        self._mode: Literal["text", "think", "tool"] = "text"
        self._buf = ""  # not yet decided (text mode) or not yet closed (block modes)
        # Nothing shown yet: leading whitespace is dropped (Qwen writes "\n\n" after its </think> block).
        self._leading = True
        self._calls: list[RequestedCall] = []

    @property
    def tool_calls(self) -> list[RequestedCall]:
        return list(self._calls)

    def _show(self, text: str) -> str:
        if self._leading:
            text = text.lstrip()
            self._leading = not text
        return text

    def feed(self, piece: str) -> str:
        self._buf += piece
        out: list[str] = []
        while True:
            if self._mode == "text":
                found = [(i, tag) for tag in _TEXT_TAGS if (i := self._buf.find(tag)) >= 0]
                if not found:
                    keep = _partial_tag_len(self._buf, _TEXT_TAGS)
                    out.append(self._show(self._buf[: len(self._buf) - keep]))
                    self._buf = self._buf[len(self._buf) - keep :]
                    return "".join(out)
                i, tag = min(found)
                out.append(self._show(self._buf[:i]))
                self._buf = self._buf[i + len(tag) :]
                if tag == THINK_OPEN:
                    self._mode = "think"
                elif tag == TOOL_OPEN:
                    self._mode = "tool"
                # else a stray </think>: only the tag is hidden
            else:
                close = THINK_CLOSE if self._mode == "think" else TOOL_CLOSE
                i = self._buf.find(close)
                if i < 0:
                    if self._mode == "think":  # reasoning is never needed: keep only a possible partial tag
                        self._buf = self._buf[len(self._buf) - _partial_tag_len(self._buf, (close,)) :]
                    return "".join(out)
                if self._mode == "tool":
                    call = _hermes_call(self._buf[:i], f"call_{len(self._calls)}")
                    if call is not None:
                        self._calls.append(call)
                self._buf = self._buf[i + len(close) :]
                self._mode = "text"

    def flush(self) -> str:
        """The held-back tail; nothing when the stream ended inside a block (the model was cut off)."""
        text = self._show(self._buf) if self._mode == "text" else ""
        self._buf = ""
        return text


def _content(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text")
    return ""


def _scan(content: str) -> tuple[str, list[RequestedCall]]:
    """Visible text and Hermes calls of a whole reply."""
    close, open_ = content.find(THINK_CLOSE), content.find(THINK_OPEN)
    if close >= 0 and (open_ < 0 or close < open_):
        # vLLM's reasoning parser can leave the closing tag when the opening one was in the template:
        # everything before it was reasoning.
        content = content[close + len(THINK_CLOSE) :]
    scanner = ContentFilter()
    text = scanner.feed(content) + scanner.flush()
    return text.strip(), scanner.tool_calls


class _Profile:
    """What every family shares: reasoning and Hermes blocks are stripped from what the customer sees."""

    name: str = ""

    def request_extras(self, *, thinking: bool = False) -> dict[str, Any]:
        return {}

    def message_text(self, message: Mapping[str, Any]) -> str:
        # "reasoning" / "reasoning_content" are deliberately never read: they are not for the customer.
        return _scan(_content(message))[0]

    def tool_calls(self, message: Mapping[str, Any]) -> list[RequestedCall]:
        listed = message.get("tool_calls")
        if not listed:
            return _scan(_content(message))[1]
        calls: list[RequestedCall] = []
        for entry in listed:
            function = entry.get("function") if isinstance(entry, Mapping) else None
            if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
                continue
            call_id = entry.get("id")
            calls.append(
                RequestedCall(
                    id=call_id if isinstance(call_id, str) and call_id else f"call_{len(calls)}",
                    name=function["name"],
                    arguments=encode_arguments(function.get("arguments")),
                )
            )
        return calls

    def stream_filter(self) -> StreamFilter:
        return ContentFilter()


class GenericProfile(_Profile):
    name = "generic"


class Qwen3Profile(_Profile):
    name = "qwen3"

    def request_extras(self, *, thinking: bool = False) -> dict[str, Any]:
        # Qwen3's chat template thinks by default; vLLM and SGLang pass this through to the template.
        return {"chat_template_kwargs": {"enable_thinking": thinking}}


PROFILES: Mapping[str, type[_Profile]] = {"generic": GenericProfile, "qwen3": Qwen3Profile}


def profile_for(model_id: str, name: str | None = None) -> ModelProfile:
    """The profile called ``name``, or when None the one the model id suggests."""
    if name is not None:
        if name not in PROFILES:
            raise ValueError(f"unknown model profile {name!r}; known: {', '.join(sorted(PROFILES))}")
        return PROFILES[name]()
    return Qwen3Profile() if "qwen3" in model_id.lower() else GenericProfile()
