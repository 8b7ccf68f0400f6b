"""Every log line of a request carries its trace id; the turn's line carries the conversation and the stage
timings, and nothing the customer typed or who they are."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import structlog

from kefu.api import create_app
from kefu.guard.pseudonym import Pseudonymizer
from kefu.obs.logs import configure_logging
from kefu.runtime import Runtime

pytestmark = pytest.mark.asyncio

PHONE = "13912345678"
SECRET = b"trace-test-secret"


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging("info", True, Pseudonymizer(SECRET), stream=stream)
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime.settings, runtime)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kefu") as c:
        yield c
    await app.state.access.close()


def _turn_lines(stream: io.StringIO) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [entry for entry in lines if entry.get("msg") == "turn"]


async def test_turn_line_has_trace_conversation_and_stages(client: httpx.AsyncClient, log_stream: io.StringIO) -> None:
    cid = f"trace-{uuid.uuid4().hex[:10]}"
    answered = await client.post(
        f"/v1/conversations/{cid}/messages",
        json={"text": f"我的订单100001到哪了？电话{PHONE}", "user_id": "alice"},
        headers={"X-Request-ID": "edge-4b1d-0001"},
    )
    assert answered.status_code == 200 and answered.headers["x-request-id"] == "edge-4b1d-0001"
    [line] = _turn_lines(log_stream)
    assert line["trace_id"] == "edge-4b1d-0001" and line["conversation_id"] == cid
    assert line["level"] == "info" and line["logger"] == "kefu.core.pipeline"
    stages = line["stages_ms"]
    assert isinstance(stages, dict) and {"guard", "nlu", "dialogue", "tools", "respond", "store"} <= set(stages)
    assert all(isinstance(ms, float | int) and ms >= 0 for ms in stages.values())
    assert 0 < sum(stages.values()) <= float(line["ms"])  # type: ignore[arg-type]
    raw = log_stream.getvalue()
    assert PHONE not in raw and "alice" not in raw and "到哪了" not in raw


async def test_concurrent_requests_keep_their_own_ids(client: httpx.AsyncClient, log_stream: io.StringIO) -> None:
    sent = {f"conc-{uuid.uuid4().hex[:10]}": f"req-{i:04d}-{uuid.uuid4().hex[:8]}" for i in range(6)}
    texts = ["hello", "你好", "where is my order 100003", "我要退货", "shipping time?", "发票怎么开"]

    async def one(cid: str, trace: str, text: str) -> httpx.Response:
        return await client.post(
            f"/v1/conversations/{cid}/messages", json={"text": text}, headers={"X-Request-ID": trace}
        )

    answers = await asyncio.gather(*(one(c, t, x) for (c, t), x in zip(sent.items(), texts, strict=True)))
    assert [a.headers["x-request-id"] for a in answers] == list(sent.values())
    seen = {str(line["conversation_id"]): line["trace_id"] for line in _turn_lines(log_stream)}
    assert seen == sent


async def test_a_request_without_an_id_gets_one(client: httpx.AsyncClient, log_stream: io.StringIO) -> None:
    cid = f"trace-{uuid.uuid4().hex[:10]}"
    answered = await client.post(f"/v1/conversations/{cid}/messages", json={"text": "hi"})
    generated = answered.headers["x-request-id"]
    assert len(generated) == 32
    assert [line["trace_id"] for line in _turn_lines(log_stream)] == [generated]
    # Outside a request nothing is bound: a background line has no trace id.
    logging.getLogger("kefu.test.background").info("tick")
    assert "trace_id" not in json.loads(log_stream.getvalue().splitlines()[-1])
