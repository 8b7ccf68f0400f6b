"""The open loop against real servers on 127.0.0.1: requests leave on schedule while the server stalls,
latency counts from the scheduled time, every request is bounded, sessions keep their turns in order."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections import defaultdict

import pytest

from kefu.llm.local import free_port
from kefu.loadtest.floor import FloorServer
from kefu.loadtest.runner import LoadPlan, LoadRun, Target

HAN = re.compile(r"[\u4e00-\u9fff]")


async def run_against(server: FloorServer, **plan: object) -> tuple[LoadRun, float]:
    """Run a plan against ``server``; returns the run and how long it took."""
    port = await server.start()
    loop = asyncio.get_running_loop()
    run = LoadRun(LoadPlan(Target("127.0.0.1", port, ""), **plan))  # type: ignore[arg-type]
    started = loop.time()
    try:
        await run.execute()
    finally:
        await server.close()
    return run, loop.time() - started


async def test_requests_leave_on_schedule_while_the_server_stalls() -> None:
    server = FloorServer(delay_s=0.8)
    run, took = await run_against(server, rps=50, duration_s=1.0, arrival="fixed", timeout_s=5)
    assert len(server.arrivals) == 50
    first = server.arrivals[0]
    # Every request reached the server at its scheduled time (every 20 ms), although no answer came back
    # before 0.8 s: a closed loop would have sent one request per client and then waited.
    for i, at in enumerate(server.arrivals):
        assert abs((at - first) - i * 0.02) < 0.05, (i, at - first)
    summary = run.summary()
    assert summary["ok"] == 50 and summary["errors"] == 0
    assert 0.8 <= summary["latency"]["p50_ms"] / 1000 < 1.0
    # A session's next turn waits for its answer, so every send before the first answer opened a session.
    assert summary["sessions_started"] >= 40
    assert took < 1.0 + 0.8 + 0.5


async def test_latency_counts_from_the_scheduled_time_not_the_send() -> None:
    # One connection, 100 ms per answer, 20 requests/s offered: the server can answer 10/s, so requests
    # wait in the generator. Measured from the schedule, the k-th waits ~0.1 + 0.05 k s; measured from the
    # send it would look like a steady 100 ms (coordinated omission).
    server = FloorServer(delay_s=0.1)
    run, _ = await run_against(server, rps=20, duration_s=1.0, arrival="fixed", max_connections=1, timeout_s=5)
    latencies = [s.latency_s for s in run.samples]
    assert len(latencies) == 20
    assert max(latencies) > 0.9
    assert sorted(latencies) == pytest.approx(latencies, abs=0.03)  # grows with each request
    assert run.summary()["send_lag"]["p99_ms"] < 50  # the generator itself kept the schedule


async def test_every_request_is_bounded_and_the_run_ends_by_itself() -> None:
    server = FloorServer(delay_s=3.0)
    run, took = await run_against(server, rps=20, duration_s=0.5, arrival="fixed", timeout_s=0.3)
    summary = run.summary()
    assert summary["requests"] == 10 and summary["ok"] == 0
    assert summary["errors_by_kind"] == {"timeout": 10}
    assert took < 0.5 + 0.3 + 0.5


async def test_http_errors_and_refused_connections_are_counted_by_kind() -> None:
    run, _ = await run_against(FloorServer(status=503), rps=20, duration_s=0.5, arrival="fixed")
    assert run.summary()["errors_by_kind"] == {"http_503": 10}

    refused = LoadRun(LoadPlan(Target("127.0.0.1", free_port(), ""), 20, 0.25, "fixed", timeout_s=2))
    await refused.execute()
    assert refused.summary()["errors_by_kind"] == {"connection": 5}


async def test_sessions_send_their_turns_in_order_each_after_the_previous_answer() -> None:
    server = FloorServer(delay_s=0.05)
    run, _ = await run_against(server, rps=40, duration_s=2.0, arrival="poisson", seed=5)
    assert run.summary()["errors"] == 0
    turns: dict[str, list[tuple[float, int, str]]] = defaultdict(list)
    for at, (line, body) in zip(server.arrivals, server.requests, strict=True):
        conversation = line.split("/")[3]
        payload = json.loads(body)
        assert payload["message_id"].startswith(conversation + "-")
        turns[conversation].append((at, int(payload["message_id"].rsplit("-", 1)[1]), payload["text"]))
    assert any(len(t) >= 3 for t in turns.values())  # multi-turn sessions happened
    for sent in turns.values():
        assert [index for _, index, _ in sent] == list(range(len(sent)))
        for (before, _, _), (after, _, _) in itertools.pairwise(sent):
            assert after - before >= 0.05 - 0.005  # the next turn left after the previous answer came
    texts = [text for sent in turns.values() for _, _, text in sent]
    assert any(HAN.search(t) for t in texts) and any(not HAN.search(t) for t in texts)


async def test_english_only_sessions() -> None:
    server = FloorServer()
    await run_against(server, rps=50, duration_s=0.5, locales=("en",))
    assert server.requests and not any(HAN.search(body.decode()) for _, body in server.requests)
