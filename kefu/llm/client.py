"""One backend protocol for every OpenAI-compatible model server (vLLM, SGLang, llama.cpp, Ollama,
DashScope's compatible mode): a streamed ``POST /chat/completions`` over httpx.

Always streamed, even when the caller wants the whole text: that gives time to first token for the
accounting, lets the customer see the answer grow, and tells a cut connection from a finished answer
(a finished stream ends with ``finish_reason`` or ``[DONE]``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import httpx

from kefu.llm.profiles import ModelProfile, encode_arguments, profile_for
from kefu.llm.tokens import QwenTokens, counter_for
from kefu.llm.types import BackendError, Completion, ModelVersion, RequestedCall, ToolSpec

TextSink = Callable[[str], Awaitable[None]]
_RETRYABLE_STATUS = frozenset({408, 429, 502, 503, 504})


class OpenAiBackend:
    """Talks to one model version. ``complete`` raises ``BackendError`` for anything but a finished answer."""

    def __init__(
        self,
        version: ModelVersion,
        *,
        api_key: str = "",
        client: httpx.AsyncClient | None = None,
        qwen_tokens: QwenTokens | None = None,
    ) -> None:
        self.version = version
        self.profile: ModelProfile = profile_for(version.model, version.profile)
        # Only used when the server reports no usage (vLLM does report it).
        self.count_tokens = counter_for(self.profile.name, qwen_tokens)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = client or httpx.AsyncClient(base_url=version.base_url.rstrip("/"), headers=headers)

    async def close(self) -> None:
        await self._client.aclose()

    def body(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[ToolSpec] = (),
        tool_choice: Any = None,
        defaults: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.version.model,
            "messages": [dict(m) for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            **dict(defaults or {}),
            **dict(self.version.params),
            **self.profile.request_extras(thinking=False),
        }
        if tools:
            body["tools"] = [t.to_openai() for t in tools]
            if tool_choice is not None or "tool_choice" not in body:
                body["tool_choice"] = tool_choice or "auto"
        else:
            body.pop("tool_choice", None)  # nothing offered: nothing to choose
        return body

    async def complete(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        timeout_s: float,
        tools: Sequence[ToolSpec] = (),
        tool_choice: Any = None,
        on_text: TextSink | None = None,
        defaults: Mapping[str, Any] | None = None,
    ) -> Completion:
        body = self.body(messages, tools, tool_choice, defaults)
        started = time.perf_counter()
        timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 2.0))
        try:
            async with self._client.stream("POST", "/chat/completions", json=body, timeout=timeout) as response:
                if response.status_code >= 400:
                    detail = (await response.aread()).decode("utf-8", "replace")[:300]
                    raise BackendError(
                        "http",
                        f"{self.version.name}: HTTP {response.status_code}: {detail}",
                        retryable=response.status_code in _RETRYABLE_STATUS,
                        status=response.status_code,
                    )
                return await self._read(response, body, started, on_text)
        except httpx.ConnectError as exc:
            raise BackendError("connect", f"{self.version.name}: cannot connect: {exc}", retryable=True) from exc
        except httpx.TimeoutException as exc:
            raise BackendError("timeout", f"{self.version.name}: no answer within {timeout_s:.1f} s") from exc
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            raise BackendError("cut", f"{self.version.name}: connection cut: {exc}") from exc
        except httpx.HTTPError as exc:
            raise BackendError("protocol", f"{self.version.name}: {type(exc).__name__}: {exc}") from exc

    async def _read(
        self, response: httpx.Response, body: Mapping[str, Any], started: float, on_text: TextSink | None
    ) -> Completion:
        visible = self.profile.stream_filter()
        shown: list[str] = []
        raw_calls: dict[int, dict[str, str]] = {}
        usage: Mapping[str, Any] | None = None
        finish: str | None = None
        done = False
        ttft: float | None = None
        pieces = 0

        async def show(text: str) -> None:
            if text:
                shown.append(text)
                if on_text is not None:
                    await on_text(text)

        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue  # SSE comments and blank separators
            data = line[5:].strip()
            if data == "[DONE]":
                done = True
                break
            try:
                chunk = json.loads(data)
            except ValueError as exc:
                raise BackendError("protocol", f"{self.version.name}: not JSON in the stream: {data[:80]!r}") from exc
            if not isinstance(chunk, dict):
                raise BackendError("protocol", f"{self.version.name}: unexpected stream chunk {data[:80]!r}")
            if isinstance(chunk.get("usage"), dict):
                usage = chunk["usage"]
            if "error" in chunk:
                raise BackendError("http", f"{self.version.name}: server error in stream: {str(chunk['error'])[:200]}")
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                content = delta.get("content")  # reasoning / reasoning_content are never read
                if isinstance(content, str) and content:
                    pieces += 1
                    if ttft is None:
                        ttft = time.perf_counter() - started
                    await show(visible.feed(content))
                for call in delta.get("tool_calls") or []:
                    slot = raw_calls.setdefault(int(call.get("index", 0)), {"id": "", "name": "", "arguments": ""})
                    function = call.get("function") or {}
                    slot["id"] = call.get("id") or slot["id"]
                    name = function.get("name") or ""
                    if name != slot["name"]:  # llama.cpp repeats the name in every delta; OpenAI sends it once
                        slot["name"] += name
                    arguments = function.get("arguments")
                    if arguments is not None:  # the first delta may carry only the name
                        slot["arguments"] += encode_arguments(arguments)
                if choice.get("finish_reason"):
                    finish = str(choice["finish_reason"])
        if not done and finish is None:
            raise BackendError("cut", f"{self.version.name}: the stream ended before the answer was finished")
        await show(visible.flush())
        calls = [RequestedCall(c["id"] or f"call_{i}", c["name"], c["arguments"]) for i, c in sorted(raw_calls.items())]
        calls += visible.tool_calls
        text = "".join(shown).strip()
        prompt_tokens = completion_tokens = 0
        if usage is not None:
            prompt_tokens = int(usage.get("prompt_tokens") or 0)
            completion_tokens = int(usage.get("completion_tokens") or 0)
        else:
            prompt_tokens = sum(self.count_tokens(str(m.get("content") or "")) + 4 for m in body["messages"])
            completion_tokens = pieces  # servers stream about one token per chunk
        return Completion(
            text=text,
            tool_calls=tuple(calls),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            ttft_s=ttft,
            total_s=time.perf_counter() - started,
            finish_reason=finish,
            usage_reported=usage is not None,
        )
