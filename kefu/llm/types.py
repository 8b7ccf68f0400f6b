"""Data of the LLM gateway: registered model versions, what one call produced, and why one failed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Variant = Literal["stable", "canary", "local"]
ALIASES: tuple[str, ...] = ("stable", "canary")
# Request parameters a version may set; anything else is refused when the version is added. ``tool_choice``
# applies to the first call of a turn that offers tools (e.g. "required" for a model that under-calls).
SAMPLING_KEYS = frozenset(
    {"temperature", "top_p", "top_k", "max_tokens", "presence_penalty", "frequency_penalty", "seed", "stop",
     "tool_choice"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One registered model version: where it is served and how it is asked."""

    name: str  # the registry's key, e.g. "qwen3-14b-2026-11"
    base_url: str  # OpenAI-compatible root, e.g. http://vllm:8000/v1
    model: str  # the server's model id, e.g. Qwen/Qwen3-14B
    params: Mapping[str, Any] = field(default_factory=dict)  # sampling parameters (SAMPLING_KEYS)
    profile: str | None = None  # model-family quirks; None: chosen from the model id
    languages: tuple[str, ...] = ()  # languages it may answer in; empty: all
    notes: str = ""

    def speaks(self, language: str) -> bool:
        return not self.languages or language in self.languages

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "base_url": self.base_url,
            "model": self.model,
            "params": dict(self.params),
            "profile": self.profile,
            "languages": list(self.languages),
            "notes": self.notes,
        }


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool offered to the model (OpenAI ``tools`` entry)."""

    name: str
    description: str
    parameters: Mapping[str, Any]

    def to_openai(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": dict(self.parameters)},
        }


@dataclass(frozen=True, slots=True)
class RequestedCall:
    """A tool call the model asked for; ``arguments`` is the raw JSON text it wrote."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Completion:
    """What one call to a model server produced (the customer-visible text only)."""

    text: str
    tool_calls: tuple[RequestedCall, ...]
    prompt_tokens: int
    completion_tokens: int
    ttft_s: float | None  # time to the first streamed byte of content; None when no content came
    total_s: float
    finish_reason: str | None
    usage_reported: bool  # False: token counts are kefu's estimate (the server sent no usage)


ErrorKind = Literal["connect", "timeout", "http", "protocol", "cut", "circuit_open"]


class BackendError(Exception):
    """A model server did not produce a usable answer. ``retryable``: nothing was received yet, so asking
    again cannot duplicate anything the customer saw."""

    def __init__(self, kind: ErrorKind, message: str, *, retryable: bool = False, status: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable
        self.status = status

    def __str__(self) -> str:
        return f"{self.kind}: {self.args[0]}"
