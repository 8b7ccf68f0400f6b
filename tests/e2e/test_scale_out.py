"""Two server processes on one PostgreSQL database and one Redis: turns of a conversation never
interleave, a message sent to both is answered once, and nothing is lost."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import post_concurrently, start_server, stop_server

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
def two_servers(postgres_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    env = {"KEFU_DATABASE_URL": postgres_url, "KEFU_REDIS_URL": redis_url}
    started = []
    try:
        for name in ("a", "b"):
            started.append(start_server(tmp_path_factory.mktemp(f"replica-{name}"), **env))
        yield [base for _, base in started]
    finally:
        for process, _ in started:
            stop_server(process)


def test_demo_order_on_postgres(two_servers: list[str]) -> None:
    url = f"{two_servers[0]}/v1/conversations/pg-{uuid.uuid4().hex}/messages"
    data = httpx.post(url, json={"text": "订单100001到哪了"})
    assert data.status_code == 200 and "SF1234567890" in data.json()["reply"]["text"]


def test_one_conversation_across_two_replicas(two_servers: list[str]) -> None:
    cid = f"pg-{uuid.uuid4().hex}"

    responses = post_concurrently(two_servers, cid, [f"what are the shipping fees? ({i})" for i in range(40)])
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
    messages = httpx.get(f"{two_servers[1]}/v1/conversations/{cid}").json()["messages"]
    assert [m["role"] for m in messages] == ["user", "bot"] * 40
    assert sorted(m["text"] for m in messages if m["role"] == "user") == sorted(
        f"what are the shipping fees? ({i})" for i in range(40)
    )


def test_same_message_to_both_replicas_is_answered_once(two_servers: list[str]) -> None:
    cid = f"pg-{uuid.uuid4().hex}"

    async def both() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as client:
            body = {"text": "where is order 100001", "message_id": "only-once"}
            return await asyncio.gather(
                *(client.post(f"{base}/v1/conversations/{cid}/messages", json=body) for base in two_servers * 3)
            )

    responses = asyncio.run(both())
    assert all(r.status_code == 200 for r in responses)
    assert len({r.json()["reply"]["text"] for r in responses}) == 1
    messages = httpx.get(f"{two_servers[0]}/v1/conversations/{cid}").json()["messages"]
    assert [m["role"] for m in messages] == ["user", "bot"]


@pytest.fixture(scope="module")
def two_servers_without_redis(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    started = []
    try:
        for name in ("c", "d"):
            started.append(start_server(tmp_path_factory.mktemp(f"replica-{name}"), KEFU_DATABASE_URL=postgres_url))
        yield [base for _, base in started]
    finally:
        for process, _ in started:
            stop_server(process)


def test_replicas_without_redis_never_fork_and_lose_nothing(two_servers_without_redis: list[str]) -> None:
    bases = two_servers_without_redis
    cid = f"pg-{uuid.uuid4().hex}"
    texts = [f"what are the shipping fees? ({i})" for i in range(30)]
    responses = post_concurrently(bases, cid, texts)
    assert {r.status_code for r in responses} <= {200, 503}
    for i, response in enumerate(responses):  # a 503 stored nothing: the client retries the same message id
        if response.status_code == 503:
            assert response.json()["error"]["code"] == "conversation_busy"
            retry = httpx.post(
                f"{bases[0]}/v1/conversations/{cid}/messages", json={"text": texts[i], "message_id": f"m{i}"}
            )
            assert retry.status_code == 200
    messages = httpx.get(f"{bases[1]}/v1/conversations/{cid}").json()["messages"]
    assert [m["role"] for m in messages] == ["user", "bot"] * 30
    assert sorted(m["text"] for m in messages if m["role"] == "user") == sorted(texts)
