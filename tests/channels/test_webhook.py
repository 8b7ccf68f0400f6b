"""``POST /channels/webhook`` on the app in-process, real turns through the session's pipeline, and the
signed callback of later replies to a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from kefu.channels.base import OutboundMessage
from kefu.channels.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, check_signature, signature, signed_headers
from kefu.runtime import Runtime
from tests.channels.wiring import app_client, channel_runtime, local_server

SECRET = "webhook-test-secret-不要泄露"


def _ids(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"  # the session's runtime is shared: every test its own ids


def _body(cid: str, mid: str, text: str, **extra: Any) -> bytes:
    return json.dumps({"conversation_id": cid, "message_id": mid, "text": text, **extra}, ensure_ascii=False).encode()


def _headers(body: bytes, secret: str = SECRET, now: float | None = None) -> dict[str, str]:
    return {"Content-Type": "application/json", **signed_headers(secret, body, now)}


@pytest.fixture
async def signed(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        channel_runtime(runtime, webhook_secret=SECRET, webhook_tolerance_s=60.0) as rt,
        app_client(rt) as client,
    ):
        yield client


async def _transcript(client: httpx.AsyncClient, cid: str) -> list[tuple[str, str]]:
    answer = await client.get(f"/v1/conversations/{cid}")
    if answer.status_code == 404:
        return []
    return [(m["role"], m["text"]) for m in answer.json()["messages"]]


async def test_a_signed_message_runs_a_turn_zh_and_en(signed: httpx.AsyncClient) -> None:
    cid = _ids("wh")
    body = _body(cid, "m1", "帮我查一下订单100001到哪了", user_id="u-1")
    answer = await signed.post("/channels/webhook", content=body, headers=_headers(body))
    assert answer.status_code == 200, answer.text
    turn = answer.json()
    assert turn["conversation_id"] == cid and turn["message_id"] == "m1"
    assert turn["intent"]["name"] == "order_status" and "SF1234567890" in turn["reply"]["text"]
    assert "顺丰" in turn["reply"]["text"]

    body = _body(cid, "m2", "and where is order 100002?", locale="en-US")
    answer = await signed.post("/channels/webhook", content=body, headers=_headers(body))
    assert answer.status_code == 200, answer.text
    assert "delivered" in answer.json()["reply"]["text"]
    roles = [role for role, _ in await _transcript(signed, cid)]
    assert roles == ["user", "bot", "user", "bot"]


async def test_forged_tampered_and_missing_signatures_are_refused_and_nothing_is_stored(
    signed: httpx.AsyncClient,
) -> None:
    cid = _ids("wh")
    body = _body(cid, "m1", "hello")
    forged = await signed.post("/channels/webhook", content=body, headers=_headers(body, secret="guessed"))
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "invalid_signature"

    headers = _headers(body)
    tampered = body.replace(b"hello", b"cancel order 100003")
    changed = await signed.post("/channels/webhook", content=tampered, headers=headers)
    assert changed.status_code == 401 and changed.json()["error"]["code"] == "invalid_signature"

    bare = await signed.post("/channels/webhook", content=body, headers={"Content-Type": "application/json"})
    assert bare.status_code == 401 and bare.json()["error"]["code"] == "signature_missing"

    for bad in ("sha1=abc", "sha256=xyz", "deadbeef"):
        odd = await signed.post("/channels/webhook", content=body, headers={**headers, SIGNATURE_HEADER: bad})
        assert odd.status_code == 401 and odd.json()["error"]["code"] == "invalid_signature", bad
    not_seconds = await signed.post("/channels/webhook", content=body, headers={**headers, TIMESTAMP_HEADER: "soon"})
    assert not_seconds.status_code == 401 and not_seconds.json()["error"]["code"] == "invalid_timestamp"
    assert await _transcript(signed, cid) == []

    # The genuine request still goes through afterwards (the refusals used up nothing).
    accepted = await signed.post("/channels/webhook", content=body, headers=headers)
    assert accepted.status_code == 200, accepted.text


async def test_stale_and_future_timestamps_are_refused(signed: httpx.AsyncClient) -> None:
    cid = _ids("wh")
    body = _body(cid, "m1", "hello")
    for offset in (-61, +61, -3600):
        answer = await signed.post("/channels/webhook", content=body, headers=_headers(body, now=time.time() + offset))
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "stale_timestamp", offset
    inside = await signed.post("/channels/webhook", content=body, headers=_headers(body, now=time.time() - 50))
    assert inside.status_code == 200, inside.text


async def test_a_replayed_signed_request_is_refused_but_a_newly_signed_redelivery_replays_the_answer(
    signed: httpx.AsyncClient,
) -> None:
    cid = _ids("wh")
    body = _body(cid, "m1", "订单100003能取消吗")
    headers = _headers(body)
    first = await signed.post("/channels/webhook", content=body, headers=headers)
    assert first.status_code == 200, first.text
    replayed = await signed.post("/channels/webhook", content=body, headers=headers)
    assert replayed.status_code == 409 and replayed.json()["error"]["code"] == "replayed_request"

    # The sender's own retry: same message, signed afresh -> the first answer, nothing appended.
    again = await signed.post("/channels/webhook", content=body, headers=_headers(body, now=time.time() + 1))
    assert again.status_code == 200 and again.json() == first.json()
    assert len(await _transcript(signed, cid)) == 2

    # The same message id with other text is a client bug, refused.
    other = _body(cid, "m1", "something else")
    conflict = await signed.post("/channels/webhook", content=other, headers=_headers(other))
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "message_id_conflict"
    assert len(await _transcript(signed, cid)) == 2


async def test_malformed_json_bad_fields_and_oversized_bodies(signed: httpx.AsyncClient, runtime: Runtime) -> None:
    cid = _ids("wh")
    cases: list[tuple[bytes, int, str]] = [
        (b'{"conversation_id": "x", "text": ', 400, "invalid_json"),
        (b"\xff\xfe not utf-8", 400, "invalid_json"),
        (b"[1, 2]", 422, "invalid_request"),
        (json.dumps({"conversation_id": cid, "text": "hi"}).encode(), 422, "invalid_request"),  # no message_id
        (_body("bad id!", "m1", "hi"), 422, "invalid_request"),
        (_body(cid, "m1", "hi", extra="field"), 422, "invalid_request"),
        (_body(cid, "m1", "hi", channel="web"), 422, "invalid_request"),
        (_body(cid, "m1", "   "), 422, "empty_text"),
        (_body(cid, "m1", "x" * (runtime.settings.max_text_chars + 1)), 422, "text_too_long"),
    ]
    for body, status, code in cases:
        headers = _headers(body)
        answer = await signed.post("/channels/webhook", content=body, headers=headers)
        assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), body[:60]
        # Refused inside kefu, nothing stored: the very same signed request is not a "replay".
        retried = await signed.post("/channels/webhook", content=body, headers=headers)
        assert retried.status_code == status
    assert (
        "message_id"
        in (await signed.post("/channels/webhook", content=cases[3][0], headers=_headers(cases[3][0]))).text
    )

    huge = _body(cid, "m1", "好" * runtime.settings.max_body_bytes)
    too_big = await signed.post("/channels/webhook", content=huge, headers=_headers(huge))
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "payload_too_large"
    assert await _transcript(signed, cid) == []


async def test_off_without_a_secret(runtime: Runtime) -> None:
    async with channel_runtime(runtime, webhook_secret="") as rt, app_client(rt) as client:
        body = _body(_ids("wh"), "m1", "hello")
        answer = await client.post("/channels/webhook", content=body, headers=_headers(body))
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "channel_disabled"
    assert "KEFU_WEBHOOK_SECRET" in answer.json()["error"]["message"]


class Receiver:
    """A webhook receiver on 127.0.0.1 that records what it gets and answers from a script of statuses."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        self.app = FastAPI()
        self.app.add_api_route("/hook", self.hook, methods=["POST"])

    async def hook(self, request: Request) -> JSONResponse:
        body = await request.body()
        with self._lock:
            self.calls.append((dict(request.headers), body))
            status = self.statuses.pop(0) if self.statuses else 200
        return JSONResponse({"ok": status < 300}, status_code=status)


async def test_later_replies_are_posted_to_the_callback_signed(runtime: Runtime) -> None:
    receiver = Receiver([503, 200])
    with local_server(receiver.app) as base:
        async with channel_runtime(runtime, webhook_secret=SECRET, webhook_callback_url=f"{base}/hook") as rt:
            cid = _ids("wh")
            async with app_client(rt) as client:
                body = _body(cid, "m1", "转人工", user_id="u-7")
                turn = await client.post("/channels/webhook", content=body, headers=_headers(body))
                assert turn.status_code == 200 and turn.json()["owner"] == "agent"
            assert receiver.calls == []  # the turn's own reply came back on the request

            said = OutboundMessage.said_by(
                "agent", cid, "您好，我是客服小王，请问有什么可以帮您？", "agent", channel="webhook", user_id="u-7"
            )
            assert await rt.outbox.send(said) is True
            assert len(receiver.calls) == 2  # a 503 first, then delivered on the retry
            for headers, raw in receiver.calls:
                check_signature(SECRET, headers["x-kefu-timestamp"], headers["x-kefu-signature"], raw, time.time(), 60)
            delivered = json.loads(receiver.calls[-1][1])
            assert delivered["conversation_id"] == cid and delivered["role"] == "agent"
            assert delivered["text"] == said.text and delivered["message_id"] == said.message_id
            assert delivered["user_id"] == "u-7" and delivered["owner"] == "agent"

            # Another channel's message never reaches the webhook receiver.
            assert await rt.outbox.send(
                OutboundMessage.said_by("agent", cid, "hi", "agent", channel="web", user_id=None)
            )
            assert len(receiver.calls) == 2

            # A receiver that refuses (4xx) is not retried; the failure is reported to the outbox.
            receiver.statuses[:] = [400]
            assert await rt.outbox.send(said) is False
            assert len(receiver.calls) == 3


def test_signature_is_the_hmac_of_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    body = b'{"text": "hi"}'
    expected = hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature("k", "1700000000", body) == "sha256=" + expected
    assert check_signature("k", "1700000000", "sha256=" + expected.upper(), body, 1700000010, 60) == 1700000000
