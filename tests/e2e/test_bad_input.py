"""Bad input: a precise 4xx with {"error": {"code", "message"}}, nothing stored half-way, server keeps serving."""

from __future__ import annotations

import uuid

import httpx
import pytest


def url(server: str, cid: str) -> str:
    return f"{server}/v1/conversations/{cid}/messages"


@pytest.mark.parametrize(
    ("content", "headers", "status", "code"),
    [
        (b"{not json", {"content-type": "application/json"}, 400, "invalid_json"),
        (b'{"text": 42}', {"content-type": "application/json"}, 422, "invalid_request"),
        (b'{"text": ""}', {"content-type": "application/json"}, 422, "empty_text"),
        (b'{"text": "   "}', {"content-type": "application/json"}, 422, "empty_text"),
        ('{"text": "' + "好" * 4001 + '"}', {"content-type": "application/json"}, 422, "text_too_long"),
        (b'{"text": "\\u0000x"}', {"content-type": "application/json"}, 422, "invalid_text"),
        (b'{"text": "\\ud800"}', {"content-type": "application/json"}, 422, "invalid_text"),
        (b'{"text": "\xff\xfe hi"}', {"content-type": "application/json"}, 400, "invalid_json"),
        (b'{"text": "hi", "locale": "fr"}', {"content-type": "application/json"}, 422, "invalid_request"),
        (
            b'{"text": "hi", "message_id": "bad id!"}',
            {"content-type": "application/json"},
            422,
            "invalid_request",
        ),
        (b'{"text": "hi", "unknown": 1}', {"content-type": "application/json"}, 422, "invalid_request"),
        (b"[1, 2]", {"content-type": "application/json"}, 422, "invalid_request"),
        (b"", {"content-type": "application/json"}, 422, "invalid_request"),
        (b"x" * (10 * 1024 * 1024), {"content-type": "application/json"}, 413, "payload_too_large"),
    ],
)
def test_bad_message_bodies(server: str, content: bytes | str, headers: dict[str, str], status: int, code: str) -> None:
    cid = f"bad-{uuid.uuid4().hex}"
    response = httpx.post(url(server, cid), content=content, headers=headers, timeout=60)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    # Nothing was stored for the refused request.
    assert httpx.get(f"{server}/v1/conversations/{cid}").status_code == 404


def test_streamed_body_over_the_limit_without_length(server: str) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(200):
            yield b"x" * 65536

    response = httpx.post(url(server, f"bad-{uuid.uuid4().hex}"), content=chunks(), timeout=60)
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("cid", ["has space", "x" * 129, "emoji😀", "semi;colon"])
def test_bad_conversation_ids(server: str, cid: str) -> None:
    response = httpx.post(url(server, cid), json={"text": "hi"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_conversation_id"


def test_unknown_conversation_and_bad_feedback(server: str) -> None:
    missing = httpx.get(f"{server}/v1/conversations/never-seen-{uuid.uuid4().hex}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "conversation_not_found"
    cid = f"fb-{uuid.uuid4().hex}"
    assert httpx.post(f"{server}/v1/conversations/{cid}/feedback", json={"rating": 5}).status_code == 404
    httpx.post(url(server, cid), json={"text": "hi"})
    for body in ({"rating": 0}, {"rating": 6}, {"rating": "five"}, {"rating": True}, {}):
        bad = httpx.post(f"{server}/v1/conversations/{cid}/feedback", json=body)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"


def test_wrong_method_and_path(server: str) -> None:
    assert httpx.delete(url(server, "abc")).json()["error"]["code"] == "method_not_allowed"
    assert httpx.get(f"{server}/v2/nothing").json()["error"]["code"] == "not_found"


def test_server_keeps_serving_after_bad_input(server: str) -> None:
    for _ in range(3):
        httpx.post(url(server, "after-bad"), content=b"{oops", headers={"content-type": "application/json"})
    ok = httpx.post(url(server, f"ok-{uuid.uuid4().hex}"), json={"text": "hello"})
    assert ok.status_code == 200
