"""Routing and resilience against real servers: the session's llama.cpp server, a closed port, and
servers that misbehave (garbage, an error status, a cut stream, a hang)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from kefu.llm.breaker import CircuitBreaker
from kefu.llm.client import OpenAiBackend
from kefu.llm.gateway import LlmGateway, Route, chain, in_canary
from kefu.llm.local import free_port
from kefu.llm.registry import ModelRegistry, Routing
from kefu.llm.types import BackendError, ModelVersion, RequestedCall
from tests.llm.misbehaving import misbehaving_server

ASK = [{"role": "user", "content": "Say hello to the customer in one short sentence."}]
SHORT = {"max_tokens": 16, "temperature": 0.0}


def v(name: str, url: str = "http://127.0.0.1:9/v1", languages: tuple[str, ...] = ()) -> ModelVersion:
    return ModelVersion(name=name, base_url=url, model="smollm2-135m-instruct", languages=languages)


@pytest.fixture(scope="module")
def bad() -> Iterator[str]:
    with misbehaving_server() as root:
        yield root


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there


def test_the_chain_is_canary_stable_local_without_repeats_and_in_the_customers_language() -> None:
    routing = Routing(1, stable=v("s"), canary=v("c"), canary_percent=100.0)
    assert [(r.version.name, r.variant) for r in chain(routing, v("l"), "u1", "en")] == [
        ("c", "canary"),
        ("s", "stable"),
        ("l", "local"),
    ]
    english_only = v("l", languages=("en",))
    assert [r.version.name for r in chain(routing, english_only, "u1", "zh")] == ["c", "s"]
    assert [r.version.name for r in chain(Routing(1, v("l"), None, 0.0), v("l"), "u", "en")] == ["l"]


def test_canary_assignment_is_sticky_and_close_to_the_share() -> None:
    users = [f"user-{i}" for i in range(10_000)]
    chosen = [u for u in users if in_canary(u, "v2", 20.0)]
    assert 1800 <= len(chosen) <= 2200
    assert chosen == [u for u in users if in_canary(u, "v2", 20.0)]  # the same users every time
    assert not any(in_canary(u, "v2", 0.0) for u in users[:500])
    assert all(in_canary(u, "v2", 100.0) for u in users[:500])
    other = {u for u in users if in_canary(u, "v3", 20.0)}
    assert other != set(chosen)  # a new experiment draws its own sample


async def test_a_real_llama_server_answers_with_timings(sqlite_registry: ModelRegistry, llama_server: str) -> None:
    gateway = LlmGateway(sqlite_registry)
    try:
        answer = await gateway.complete([Route(v("local", llama_server), "local")], lambda r: ASK,
                                        deadline=time.monotonic() + 30, params=SHORT)  # fmt: skip
    finally:
        await gateway.close()
    assert answer.completion is not None and answer.route is not None
    assert answer.completion.text
    assert answer.completion.completion_tokens > 0 and answer.completion.prompt_tokens > 0
    assert answer.completion.ttft_s is not None and answer.completion.ttft_s <= answer.completion.total_s
    assert [a.outcome for a in answer.attempts] == ["ok"]


async def test_a_dead_server_is_retried_once_then_the_next_model_answers(
    sqlite_registry: ModelRegistry, llama_server: str
) -> None:
    gateway = LlmGateway(sqlite_registry)
    routes = [Route(v("stable-dead", dead_url()), "stable"), Route(v("local", llama_server), "local")]
    try:
        answer = await gateway.complete(routes, lambda r: ASK, deadline=time.monotonic() + 30, params=SHORT)
        await gateway.account(answer, "conv-1", "msg-1", "ok")
    finally:
        await gateway.close()
    assert answer.route is not None and answer.route.variant == "local"
    assert [(a.route.version.name, a.outcome) for a in answer.attempts] == [
        ("stable-dead", "connect"),
        ("stable-dead", "connect"),
        ("local", "ok"),
    ]
    usage = {(u["name"], u["variant"]): u for u in await sqlite_registry.usage()}
    assert usage["stable-dead", "stable"]["calls"] == 2 and usage["stable-dead", "stable"]["answered"] == 0
    assert usage["local", "local"]["answered"] == 1


@pytest.mark.parametrize(
    ("kind", "error", "retryable", "status"),
    [("garbage", "protocol", False, None), ("error", "http", True, 503), ("notfound", "http", False, 404)],
)
async def test_bad_answers_are_named_errors(
    bad: str, kind: str, error: str, retryable: bool, status: int | None
) -> None:
    backend = OpenAiBackend(v(kind, f"{bad}/{kind}/v1"))
    try:
        with pytest.raises(BackendError) as caught:
            await backend.complete(ASK, timeout_s=5)
    finally:
        await backend.close()
    assert caught.value.kind == error
    assert caught.value.retryable is retryable
    assert caught.value.status == status
    assert kind in str(caught.value)


async def test_streamed_tool_call_pieces_make_one_call(bad: str) -> None:
    backend = OpenAiBackend(v("tools", f"{bad}/tools/v1"))
    try:
        completion = await backend.complete(ASK, timeout_s=5)
    finally:
        await backend.close()
    assert completion.tool_calls == (RequestedCall("call_a", "lookup_order", '{"order_id": "100001"}'),)
    assert completion.text == "" and completion.finish_reason == "tool_calls"


async def test_a_stream_cut_half_way_is_a_cut_error_and_no_other_model_adds_to_what_was_shown(
    sqlite_registry: ModelRegistry, bad: str, llama_server: str
) -> None:
    shown: list[str] = []

    async def sink(text: str) -> None:
        shown.append(text)

    gateway = LlmGateway(sqlite_registry)
    routes = [Route(v("cut", f"{bad}/cut/v1"), "stable"), Route(v("local", llama_server), "local")]
    try:
        answer = await gateway.complete(routes, lambda r: ASK, deadline=time.monotonic() + 10, on_text=sink)
    finally:
        await gateway.close()
    assert "".join(shown).startswith("Returns are accepted within 7 days [1].")
    assert answer.streamed and answer.completion is None
    assert [a.outcome for a in answer.attempts] == ["cut"]


async def test_a_hung_server_cannot_hold_the_turn_past_its_deadline(sqlite_registry: ModelRegistry, bad: str) -> None:
    gateway = LlmGateway(sqlite_registry, call_timeout_s=30)
    started = time.monotonic()
    try:
        answer = await gateway.complete(
            [Route(v("hang", f"{bad}/hang/v1"), "stable")], lambda r: ASK, deadline=started + 1.0
        )
    finally:
        await gateway.close()
    assert time.monotonic() - started < 1.5
    assert answer.completion is None and answer.attempts[0].outcome == "timeout"


async def test_the_circuit_opens_and_then_a_dead_server_costs_nothing(sqlite_registry: ModelRegistry) -> None:
    gateway = LlmGateway(sqlite_registry, retries=0, breaker=lambda: CircuitBreaker(failures_to_open=2, cooldown_s=60))
    route = [Route(v("dead", dead_url()), "stable")]
    try:
        for _ in range(2):
            await gateway.complete(route, lambda r: ASK, deadline=time.monotonic() + 5)
        started = time.perf_counter()
        answer = await gateway.complete(route, lambda r: ASK, deadline=time.monotonic() + 5)
    finally:
        await gateway.close()
    assert time.perf_counter() - started < 0.05
    assert [a.outcome for a in answer.attempts] == ["circuit_open"]
    assert gateway.circuit_states() == {"dead": "open"}


async def test_routing_is_read_once_and_refreshed_not_per_turn(sqlite_registry: ModelRegistry) -> None:
    gateway = LlmGateway(sqlite_registry)
    await sqlite_registry.add(v("s1"), actor="t")
    await sqlite_registry.add(v("s2"), actor="t")
    await sqlite_registry.promote("s1", actor="t")
    assert gateway.assignment("u1", "en") is None  # nothing read yet
    assert [r.version.name for r in await gateway.routes("u1", "en")] == ["s1"]
    await sqlite_registry.start_experiment("s2", 100.0, actor="t")
    assert [r.version.name for r in await gateway.routes("u1", "en")] == ["s1"]  # the cached routing
    await gateway.refresh()
    assert [r.variant for r in await gateway.routes("u1", "en")] == ["canary", "stable"]
    assigned = gateway.assignment("u1", "en")
    assert assigned is not None and (assigned.version.name, assigned.variant) == ("s2", "canary")
    await gateway.close()
