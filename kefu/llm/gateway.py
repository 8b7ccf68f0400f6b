"""Routing and resilience: which model version answers this turn, and what happens when it cannot.

The chain for a turn is canary (when the user falls in the experiment) → stable → local → nothing (the
caller then keeps the template reply). Each backend has a circuit breaker; a call that failed before
anything was received is retried once with jitter when time allows; every attempt is bounded by the
turn's deadline, so a dead or hung server can delay a turn but never hold it past the deadline.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kefu.llm.breaker import CircuitBreaker, State
from kefu.llm.client import OpenAiBackend, TextSink
from kefu.llm.registry import CallRecord, ModelRegistry, Routing
from kefu.llm.tokens import QwenTokens
from kefu.llm.types import BackendError, Completion, ModelVersion, ToolSpec, Variant

log = logging.getLogger(__name__)
MIN_ATTEMPT_S = 0.25  # below this much time left an attempt cannot finish; stop and let the template answer


class GatewayObserver(Protocol):
    def llm_call(self, record: CallRecord) -> None: ...

    def circuit(self, name: str, state: State) -> None: ...


@dataclass(frozen=True, slots=True)
class Route:
    version: ModelVersion
    variant: Variant


@dataclass(slots=True)
class Attempt:
    route: Route
    outcome: str  # ok, or an error kind (connect, timeout, http, protocol, cut, circuit_open)
    detail: str = ""
    completion: Completion | None = None
    seconds: float = 0.0


@dataclass(slots=True)
class GatewayAnswer:
    route: Route | None  # None: no model answered
    completion: Completion | None
    attempts: list[Attempt] = field(default_factory=list)
    streamed: bool = False  # some text reached the customer (even if the stream was cut afterwards)


def in_canary(user_key: str, canary: str, percent: float) -> bool:
    """Sticky assignment: the same user always lands on the same side of one experiment."""
    if percent <= 0:
        return False
    digest = hashlib.sha256(f"{canary}\x1f{user_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100.0 < percent


def chain(routing: Routing, local: ModelVersion | None, user_key: str, language: str) -> list[Route]:
    routes: list[Route] = []
    if routing.canary is not None and in_canary(user_key, routing.canary.name, routing.canary_percent):
        routes.append(Route(routing.canary, "canary"))
    if routing.stable is not None:
        routes.append(Route(routing.stable, "stable"))
    if local is not None:
        routes.append(Route(local, "local"))
    seen: set[str] = set()
    ordered: list[Route] = []
    for route in routes:
        if route.version.name in seen or not route.version.speaks(language):
            continue
        seen.add(route.version.name)
        ordered.append(route)
    return ordered


class LlmGateway:
    def __init__(
        self,
        registry: ModelRegistry,
        *,
        local: ModelVersion | None = None,
        call_timeout_s: float = 6.0,
        retries: int = 1,
        api_keys: Mapping[str, str] | None = None,
        default_api_key: str = "",
        breaker: Callable[[], CircuitBreaker] = CircuitBreaker,
        observer: GatewayObserver | None = None,
        qwen_tokens: QwenTokens | None = None,
    ) -> None:
        self.registry = registry
        self.local = local
        self.call_timeout_s = call_timeout_s
        self.retries = retries
        self._api_keys = dict(api_keys or {})
        self._default_api_key = default_api_key
        self._make_breaker = breaker
        self._breakers: dict[str, CircuitBreaker] = {}
        self._backends: dict[tuple[str, str, str], OpenAiBackend] = {}
        self.observer = observer
        self.qwen_tokens = qwen_tokens  # shared by every Qwen backend (loading it costs 0.6 s)
        self._routing: Routing | None = None

    async def refresh(self) -> Routing:
        """Re-read the aliases (after a change made in this process, and by ``watch`` for the others)."""
        self._routing = await self.registry.routing()
        return self._routing

    async def watch(self, interval_s: float) -> None:
        """Keep the routing current: a promotion made by another process (``kefu model promote``, another
        replica's admin call) applies within ``interval_s``, and turns never wait for the database."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.refresh()
            except Exception:  # a database hiccup keeps the last routing; the next poll tries again
                log.exception("could not re-read the model registry")

    async def routes(self, user_key: str, language: str) -> list[Route]:
        routing = self._routing or await self.refresh()
        return chain(routing, self.local, user_key, language)

    def assignment(self, user_key: str, language: str) -> Route | None:
        """The model that would write for this user now (for tagging every turn with its variant)."""
        if self._routing is None:
            return None
        routes = chain(self._routing, self.local, user_key, language)
        return routes[0] if routes else None

    def backend(self, version: ModelVersion) -> OpenAiBackend:
        key = (version.name, version.base_url, version.model)
        backend = self._backends.get(key)
        if backend is None or backend.version != version:
            api_key = self._api_keys.get(version.name, self._default_api_key)
            backend = self._backends[key] = OpenAiBackend(version, api_key=api_key, qwen_tokens=self.qwen_tokens)
        return backend

    def breaker(self, name: str) -> CircuitBreaker:
        found = self._breakers.get(name)
        if found is None:
            found = self._breakers[name] = self._make_breaker()
        return found

    def circuit_states(self) -> dict[str, State]:
        return {name: b.state for name, b in self._breakers.items()}

    async def complete(
        self,
        routes: Sequence[Route],
        messages_for: Callable[[Route], Sequence[Mapping[str, Any]]],
        *,
        deadline: float,
        tools: Sequence[ToolSpec] = (),
        tool_choice: Any = None,
        on_text: TextSink | None = None,
        committed: Callable[[], bool] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> GatewayAnswer:
        """Ask the routes in order until one answers; ``deadline`` is a ``time.monotonic()`` instant.
        ``committed`` tells whether the customer has seen text yet (a writer may hold model text back);
        by default any streamed text counts. ``params`` are defaults a version's own sampling overrides."""
        answer = GatewayAnswer(None, None)
        streamed = False

        async def sink(text: str) -> None:
            nonlocal streamed
            streamed = True
            if on_text is not None:
                await on_text(text)

        def seen() -> bool:
            answer.streamed = committed() if committed is not None else streamed
            return answer.streamed

        for route in routes:
            if seen():
                break  # the customer saw text from a model that failed: another model must not add to it
            breaker = self.breaker(route.version.name)
            if not breaker.allow():
                answer.attempts.append(Attempt(route, "circuit_open", "circuit breaker open"))
                continue
            completion = await self._try(
                route, messages_for(route), deadline, tools, tool_choice, sink, answer, seen, params or {}
            )
            self._report_circuit(route.version.name, breaker)
            if completion is not None:
                answer.route, answer.completion = route, completion
                return answer
            if deadline - time.monotonic() < MIN_ATTEMPT_S:
                break
        seen()
        return answer

    async def _try(
        self,
        route: Route,
        messages: Sequence[Mapping[str, Any]],
        deadline: float,
        tools: Sequence[ToolSpec],
        tool_choice: Any,
        sink: TextSink,
        answer: GatewayAnswer,
        seen: Callable[[], bool],
        params: Mapping[str, Any],
    ) -> Completion | None:
        breaker = self.breaker(route.version.name)
        backend = self.backend(route.version)
        for attempt in range(self.retries + 1):
            remaining = deadline - time.monotonic()
            if remaining < MIN_ATTEMPT_S:
                answer.attempts.append(Attempt(route, "timeout", "no time left before the turn's deadline"))
                breaker.release()
                return None
            started = time.perf_counter()
            try:
                completion = await asyncio.wait_for(
                    backend.complete(
                        messages,
                        timeout_s=min(self.call_timeout_s, remaining),
                        tools=tools,
                        tool_choice=tool_choice,
                        on_text=sink,
                        defaults=params,
                    ),
                    timeout=remaining,
                )
            except (BackendError, TimeoutError) as exc:
                error = exc if isinstance(exc, BackendError) else BackendError("timeout", "turn deadline reached")
                answer.attempts.append(Attempt(route, error.kind, str(error), seconds=time.perf_counter() - started))
                log.warning("model %s (%s) failed: %s", route.version.name, route.variant, error)
                retry = error.retryable and not seen() and attempt < self.retries
                if not retry:
                    breaker.failed()
                    return None
                await asyncio.sleep(random.uniform(0.05, 0.2))  # jitter: replicas do not retry in lockstep
                continue
            breaker.succeeded()
            answer.attempts.append(Attempt(route, "ok", completion=completion, seconds=completion.total_s))
            return completion
        return None

    def _report_circuit(self, name: str, breaker: CircuitBreaker) -> None:
        if self.observer is not None:
            self.observer.circuit(name, breaker.state)

    async def account(self, answer: GatewayAnswer, conversation_id: str, message_id: str, outcome: str) -> None:
        """Store and export one row per attempt; ``outcome`` replaces "ok" for the answering attempt
        (e.g. "rejected" when the writer refused an ungrounded answer)."""
        records = []
        for attempt in answer.attempts:
            c = attempt.completion
            records.append(
                CallRecord(
                    conversation_id=conversation_id,
                    message_id=message_id,
                    name=attempt.route.version.name,
                    model=attempt.route.version.model,
                    variant=attempt.route.variant,
                    outcome=outcome if attempt.outcome == "ok" else attempt.outcome,
                    prompt_tokens=c.prompt_tokens if c else 0,
                    completion_tokens=c.completion_tokens if c else 0,
                    ttft_ms=None if c is None or c.ttft_s is None else round(c.ttft_s * 1000, 2),
                    total_ms=round(attempt.seconds * 1000, 2),
                )
            )
        if self.observer is not None:
            for record in records:
                self.observer.llm_call(record)
        await self.registry.record(records)

    async def close(self) -> None:
        backends = list(self._backends.values())
        self._backends.clear()
        await asyncio.gather(*(b.close() for b in backends), return_exceptions=True)
