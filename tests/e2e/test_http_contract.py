"""The HTTP contract over a real socket: replies, idempotency, ordering, streams, and bad input."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
import websockets

from tests.e2e.conftest import post_concurrently

pytestmark = pytest.mark.e2e


def new_id() -> str:
    return f"c-{uuid.uuid4().hex}"


def test_reply_shape(server: str) -> None:
    response = httpx.post(f"{server}/v1/conversations/{new_id()}/messages", json={"text": "你好", "user_id": "u1"})
    assert response.status_code == 200
    data = response.json()
    assert set(data) == {
        "conversation_id",
        "message_id",
        "reply",
        "intent",
        "entities",
        "state",
        "handoff",
        "owner",
        "model",
    }
    assert set(data["reply"]) == {"text", "citations", "quick_replies"}
    assert data["model"] is None and data["owner"] == "bot" and data["intent"]["name"] == "greeting"


def test_knowledge_answer_is_cited(server: str) -> None:
    data = httpx.post(
        f"{server}/v1/conversations/{new_id()}/messages", json={"text": "how long is the warranty?"}
    ).json()
    assert data["reply"]["citations"] and data["reply"]["citations"][0]["id"] == "warranty"
    assert "1-year" in data["reply"]["text"] or "12 months" in data["reply"]["text"]


def test_same_message_id_is_answered_once(server: str) -> None:
    cid = new_id()
    url = f"{server}/v1/conversations/{cid}/messages"
    first = httpx.post(url, json={"text": "where is order 100001", "message_id": "m-1"})
    second = httpx.post(url, json={"text": "where is order 100001", "message_id": "m-1"})
    assert first.status_code == second.status_code == 200 and first.json() == second.json()
    conflict = httpx.post(url, json={"text": "something else", "message_id": "m-1"})
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "message_id_conflict"
    transcript = httpx.get(f"{server}/v1/conversations/{cid}").json()
    assert [m["role"] for m in transcript["messages"]] == ["user", "bot"]


def test_fifty_concurrent_posts_leave_fifty_ordered_pairs(server: str) -> None:
    cid = new_id()

    responses = post_concurrently([server], cid, [f"运费怎么算？第{i}问" for i in range(50)])
    assert all(r.status_code == 200 for r in responses)
    messages = httpx.get(f"{server}/v1/conversations/{cid}").json()["messages"]
    assert [m["role"] for m in messages] == ["user", "bot"] * 50
    answers = {r.json()["message_id"]: r.json()["reply"]["text"] for r in responses}
    users = [m["text"] for m in messages if m["role"] == "user"]
    assert sorted(users) == sorted(f"运费怎么算？第{i}问" for i in range(50))
    for i in range(0, 100, 2):  # each bot line is the answer to the user line before it
        number = messages[i]["text"].split("第")[1].rstrip("问")
        assert messages[i + 1]["text"] == answers[f"m{number}"]


def test_sse_stream(server: str) -> None:
    with httpx.stream(
        "POST",
        f"{server}/v1/conversations/{new_id()}/messages",
        json={"text": "where is order 100001"},
        headers={"Accept": "text/event-stream"},
        timeout=30,
    ) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        body = response.read().decode()
    events = [block for block in body.split("\n\n") if block.strip()]
    kinds = [block.split("\n")[0].removeprefix("event: ") for block in events]
    assert kinds[-1] == "reply" and kinds[:-1] and set(kinds[:-1]) == {"delta"}
    final = json.loads(events[-1].split("data: ", 1)[1])
    deltas = "".join(json.loads(b.split("data: ", 1)[1])["text"] for b in events[:-1])
    assert deltas == final["reply"]["text"] and "SF1234567890" in deltas


def test_websocket(server: str) -> None:
    async def chat() -> list[dict[str, object]]:
        url = server.replace("http://", "ws://") + f"/v1/ws/{new_id()}"
        async with websockets.connect(url) as socket:
            await socket.send(json.dumps({"text": "hello"}))
            first = json.loads(await socket.recv())
            await socket.send("{not json")
            error = json.loads(await socket.recv())
            await socket.send(json.dumps({"text": ""}))
            empty = json.loads(await socket.recv())
            await socket.send(json.dumps({"text": "where is order 100001"}))
            second = json.loads(await socket.recv())
            return [first, error, empty, second]

    first, error, empty, second = asyncio.run(chat())
    assert first["intent"]["name"] == "greeting"  # type: ignore[index]
    assert error["error"]["code"] == "invalid_json"  # type: ignore[index]
    assert empty["error"]["code"] == "empty_text"  # type: ignore[index]
    assert "SF1234567890" in second["reply"]["text"]  # type: ignore[index]


def test_openai_facade(server: str) -> None:
    cid = new_id()
    body = {"model": "kefu", "user": cid, "messages": [{"role": "user", "content": "where is order 100001"}]}
    response = httpx.post(f"{server}/v1/chat/completions", json=body)
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "chat.completion" and "SF1234567890" in data["choices"][0]["message"]["content"]
    again = httpx.post(f"{server}/v1/chat/completions", json=body).json()  # a retry is answered once
    assert again["choices"] == data["choices"]
    assert len(httpx.get(f"{server}/v1/conversations/{cid}").json()["messages"]) == 2
    with httpx.stream("POST", f"{server}/v1/chat/completions", json={**body, "stream": True, "user": new_id()}) as r:
        lines = [line for line in r.read().decode().split("\n") if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    text = "".join(json.loads(line[6:])["choices"][0]["delta"].get("content", "") for line in lines[:-1])
    assert "SF1234567890" in text
    wrong = httpx.post(f"{server}/v1/chat/completions", json={**body, "model": "gpt-4"})
    assert wrong.status_code == 404 and wrong.json()["error"]["code"] == "model_not_found"


def test_feedback_health_metrics_and_page(server: str) -> None:
    cid = new_id()
    httpx.post(f"{server}/v1/conversations/{cid}/messages", json={"text": "hi"})
    assert httpx.post(f"{server}/v1/conversations/{cid}/feedback", json={"rating": 5, "comment": "好"}).json()["stored"]
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server}/readyz").json()["status"] == "ready"
    metrics = httpx.get(f"{server}/metrics").text
    assert 'kefu_turn_duration_seconds_bucket{le="0.005",stage="nlu"}' in metrics
    assert 'kefu_csat_ratings_total{rating="5",variant=' in metrics  # by A/B arm
    httpx.post(f"{server}/v1/conversations/{cid}/messages", json={"text": ""})
    assert 'kefu_http_errors_total{code="empty_text"}' in httpx.get(f"{server}/metrics").text
    page = httpx.get(f"{server}/")
    assert page.status_code == 200 and "kefu" in page.text and "/static/chat.js" in page.text
    assert httpx.get(f"{server}/static/chat.js").status_code == 200
    assert httpx.get(f"{server}/openapi.json").json()["paths"]["/v1/conversations/{conversation_id}/messages"]
    docs = httpx.get(f"{server}/docs").text
    assert "/docs-assets/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
    assert httpx.get(f"{server}/docs-assets/swagger-ui-bundle.js").status_code == 200


def test_terminal_chat_against_the_server(server: str) -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    done = subprocess.run(
        [sys.executable, "-m", "kefu.cli.main", "chat", "--url", server],
        input="订单100003能取消吗\n确认取消\nexit\n",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert "100003" in done.stdout and "已为您取消" in done.stdout


def test_regional_locales_and_channel_case_are_accepted(server: str) -> None:
    body = {"text": "100001", "locale": "zh-CN", "channel": "WeChat"}
    data = httpx.post(f"{server}/v1/conversations/{new_id()}/messages", json=body).json()
    assert "顺丰" in data["reply"]["text"]  # no words in the text: the locale decides the language
    refused = httpx.post(f"{server}/v1/conversations/{new_id()}/messages", json={"text": "hi", "locale": "fr-FR"})
    assert refused.status_code == 422
