"""The LLM gateway through the running server with a real llama.cpp engine: grounded answers with
citations and a `model` field, streaming, registry changes on the next turn, and a killed model server."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import start_llama
from tests.e2e.admin import add_admin, admin_client
from tests.e2e.conftest import free_port, start_server, stop_server

QUESTION_EN = "What payment methods do you accept?"
QUESTION_ZH = "退货政策是什么？"


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    llama = start_llama()  # its own engine: the last test kills it
    try:
        yield llama
    finally:
        llama.stop()


@pytest.fixture(scope="module")
def llm_server(engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # Generous limits (turn and model call): the model's answers on a loaded 2-core machine, not the limits,
    # are under test here (the limits are tested with a hung server in tests/llm/test_gateway.py).
    data = tmp_path_factory.mktemp("llm-server")
    add_admin(data)
    process, base = start_server(
        data, KEFU_LLM_LOCAL_URL=engine.base_url, KEFU_TURN_DEADLINE_S="40", KEFU_LLM_CALL_TIMEOUT_S="30"
    )
    try:
        yield base
    finally:
        stop_server(process)


def ask(base: str, text: str, conversation: str | None = None) -> dict[str, Any]:
    body = {"text": text, "user_id": uuid.uuid4().hex}
    url = f"{base}/v1/conversations/{conversation or uuid.uuid4().hex}/messages"
    response = httpx.post(url, json=body, timeout=60)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def stream_turn(
    base: str, text: str, conversation: str | None = None, on_delta: Callable[[int], None] = lambda n: None
) -> tuple[list[str], dict[str, Any]]:
    """The SSE deltas of one turn and its final JSON; ``on_delta`` hears how many deltas have come."""
    url = f"{base}/v1/conversations/{conversation or uuid.uuid4().hex}/messages"
    deltas: list[str] = []
    final: dict[str, Any] = {}
    headers = {"Accept": "text/event-stream"}
    with httpx.stream("POST", url, json={"text": text}, headers=headers, timeout=60) as response:
        assert response.status_code == 200
        kind = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                payload = json.loads(line[6:])
                if kind == "delta":
                    deltas.append(payload["text"])
                    on_delta(len(deltas))
                else:
                    final = payload
    return deltas, final


def test_the_local_model_writes_a_cited_english_knowledge_answer(llm_server: str) -> None:
    reply = ask(llm_server, QUESTION_EN)
    assert reply["model"] == {"id": "smollm2-135m-instruct", "version": "local", "variant": "stable"}
    text = reply["reply"]["text"]
    assert "[1]" in text and "(Sources: [1] " in text
    assert reply["reply"]["citations"] and reply["reply"]["citations"][0]["id"] == "payment-methods"
    assert text.rstrip().endswith("Did that solve your question?")  # the flow's own question still follows


def test_chinese_stays_with_the_templates_when_the_model_writes_english_only(llm_server: str) -> None:
    reply = ask(llm_server, QUESTION_ZH)
    assert reply["model"] is None
    assert "7 天" in reply["reply"]["text"] and reply["reply"]["citations"][0]["id"] == "returns-policy"


def test_facts_from_tools_stay_with_the_templates(llm_server: str) -> None:
    reply = ask(llm_server, "Where is my order 100001?")
    assert reply["model"] is None
    assert "SF1234567890" in reply["reply"]["text"]


def test_the_answer_streams_as_the_model_writes_it(llm_server: str) -> None:
    deltas, final = stream_turn(llm_server, QUESTION_EN)
    assert final["model"]["version"] == "local"
    assert len(deltas) >= 3  # sentence by sentence, not one block
    assert "".join(deltas) == final["reply"]["text"]


def test_websocket_clients_can_ask_for_the_stream_too(llm_server: str) -> None:
    async def chat() -> list[dict[str, Any]]:
        url = llm_server.replace("http://", "ws://") + f"/v1/ws/{uuid.uuid4().hex}"
        frames: list[dict[str, Any]] = []
        async with websockets.connect(url) as socket:
            await socket.send(json.dumps({"text": QUESTION_EN, "stream": True}))
            while not frames or "delta" in frames[-1]:
                frames.append(json.loads(await socket.recv()))
            await socket.send(json.dumps({"text": "thanks", "stream": "yes"}))  # not a boolean: refused
            frames.append(json.loads(await socket.recv()))
        return frames

    frames = asyncio.run(chat())
    *deltas, final, refused = frames
    assert len(deltas) >= 3 and final["model"]["version"] == "local"
    assert "".join(d["delta"] for d in deltas) == final["reply"]["text"]
    assert refused["error"]["code"] == "invalid_request"


def test_a_promotion_applies_on_the_next_turn_and_a_rollback_undoes_it(llm_server: str) -> None:
    admin = admin_client(llm_server, timeout=10)
    dead = {"name": "dead-v2", "base_url": f"http://127.0.0.1:{free_port()}/v1", "model": "qwen3-14b"}
    assert admin.post("/admin/models", json=dead).status_code == 201
    assert admin.post("/admin/models", json=dead).status_code == 409
    assert admin.post("/admin/models/nope/promote", json={}).status_code == 404
    assert admin.post("/admin/experiments", json={"canary": "dead-v2", "percent": 150}).status_code == 422
    moved = admin.post("/admin/models/dead-v2/promote", json={"alias": "stable"}).json()
    assert moved == {"alias": "stable", "from": "local", "to": "dead-v2"}

    reply = ask(llm_server, QUESTION_EN)
    assert reply["model"] == {"id": "smollm2-135m-instruct", "version": "local", "variant": "local"}

    assert admin.post("/admin/models/rollback", json={}).json() == {"alias": "stable", "from": "dead-v2", "to": "local"}
    assert ask(llm_server, QUESTION_EN)["model"]["variant"] == "stable"
    audit = admin.get("/admin/models/audit").json()["audit"]
    assert [a["action"] for a in audit[:2]] == ["rollback", "promote"]
    assert audit[0]["actor"].startswith("user:e2e-admin")
    listed = admin.get("/admin/models").json()
    assert listed["aliases"]["stable"]["name"] == "local"
    assert {v["name"] for v in listed["versions"]} >= {"local", "dead-v2"}


def test_a_model_server_killed_mid_answer_costs_the_answer_not_the_turn(llm_server: str, engine: Any) -> None:
    conversation = uuid.uuid4().hex

    def kill_at_first(count: int) -> None:
        if count == 1:
            engine.kill()  # the model server dies while it is writing this answer

    deltas, final = stream_turn(llm_server, QUESTION_EN, conversation, kill_at_first)
    # What the customer saw is the stored reply, cited, whether the kill cut the answer or came after it.
    assert "".join(deltas) == final["reply"]["text"]
    assert final["model"]["version"] == "local" and final["reply"]["citations"]
    assert final["reply"]["text"].rstrip().endswith("Did that solve your question?")

    for _ in range(3):  # the next turns find it dead; then its circuit opens and turns skip it
        started = time.monotonic()
        reply = ask(llm_server, QUESTION_EN, conversation)
        assert time.monotonic() - started < 8.5
        assert reply["model"] is None
        assert "(Source: Payment methods" in reply["reply"]["text"]  # the extractive answer, cited
    metrics = httpx.get(f"{llm_server}/metrics", timeout=10).text
    assert 'kefu_llm_calls_total{model="local",outcome="connect",variant="stable"}' in metrics
    assert 'kefu_llm_circuit_state{model="local"} 2.0' in metrics
