"""`/admin/privacy`: erase, purge and audit on the app in-process, with real turns through the pipeline."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from kefu.api import create_app
from kefu.runtime import Runtime
from tests.api.helpers import signed_in_headers
from tests.store.test_privacy import age_conversations

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """Signed in as an admin (every /admin route needs one)."""
    app = create_app(runtime.settings, runtime)
    headers = await signed_in_headers(app, "admin")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kefu", headers=headers) as c:
        yield c
    await app.state.access.close()


def _ids(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"  # the session's runtime is shared: every test its own ids


async def _chat(client: httpx.AsyncClient, cid: str, text: str, user_id: str | None = None) -> None:
    body = {"text": text, **({"user_id": user_id} if user_id else {})}
    answered = await client.post(f"/v1/conversations/{cid}/messages", json=body)
    assert answered.status_code == 200, answered.text


async def test_erase_a_user_then_their_next_message_starts_afresh(client: httpx.AsyncClient) -> None:
    user = _ids("用户-李四")
    first, second = _ids("pa"), _ids("pb")
    await _chat(client, first, "我的订单100003到哪了", user)
    await _chat(client, first, "取消订单100003", user)
    await _chat(client, second, "where is my order 100001", user)
    rated = await client.post(f"/v1/conversations/{second}/feedback", json={"rating": 5, "comment": "很好 great"})
    assert rated.status_code == 200

    dry = await client.post("/admin/privacy/erase", json={"user_id": user, "dry_run": True})
    assert dry.status_code == 200 and dry.json()["dry_run"] is True
    counts = dry.json()["counts"]
    assert counts["conversations"] == 2 and counts["turns"] == 3 and counts["feedback"] == 1
    assert (await client.get(f"/v1/conversations/{first}")).status_code == 200  # a dry run deletes nothing

    erased = await client.post("/admin/privacy/erase", json={"user_id": user})
    assert erased.status_code == 200
    assert erased.json()["counts"] == counts and erased.json()["found"] is True
    assert user not in erased.text and erased.json()["subject"].startswith("u_")
    for cid in (first, second):
        gone = await client.get(f"/v1/conversations/{cid}")
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "conversation_not_found"

    await _chat(client, first, "hello, it's me again", user)
    fresh = (await client.get(f"/v1/conversations/{first}")).json()
    assert [m["role"] for m in fresh["messages"]] == ["user", "bot"]
    assert fresh["messages"][0]["text"] == "hello, it's me again"

    unknown = await client.post("/admin/privacy/erase", json={"user_id": _ids("nobody")})
    assert unknown.status_code == 200 and unknown.json()["found"] is False and unknown.json()["total"] == 0

    audit = await client.get("/admin/privacy/audit", params={"limit": 3})
    assert audit.status_code == 200 and user not in audit.text
    entries = audit.json()["audit"]
    assert [(e["action"], e["dry_run"]) for e in entries] == [
        ("erase_user", False),
        ("erase_user", False),
        ("erase_user", True),
    ]
    assert entries[1]["subject"] == entries[2]["subject"] == erased.json()["subject"]
    assert entries[1]["actor"].startswith("user:test-admin")  # the signed-in admin, never an address


async def test_only_an_admin_may_erase(runtime: Runtime) -> None:
    app = create_app(runtime.settings, runtime)
    agent = await signed_in_headers(app, "agent")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kefu") as other:
        for headers, status in (({}, 401), (agent, 403)):
            refused = await other.post("/admin/privacy/erase", json={"user_id": "u1"}, headers=headers)
            assert refused.status_code == status and set(refused.json()) == {"error"}
            assert (await other.get("/admin/privacy/audit", headers=headers)).status_code == status
    await app.state.access.close()


async def test_erase_an_anonymous_conversation(client: httpx.AsyncClient) -> None:
    cid = _ids("anon")
    await _chat(client, cid, "退货政策是什么")
    erased = await client.post("/admin/privacy/erase", json={"conversation_id": cid})
    assert erased.status_code == 200 and erased.json()["action"] == "erase_conversation"
    assert erased.json()["counts"]["conversations"] == 1 and erased.json()["subject"].startswith("c_")
    assert (await client.get(f"/v1/conversations/{cid}")).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "invalid_subject"),
        ({"user_id": "a", "conversation_id": "b"}, 400, "invalid_subject"),
        ({"dry_run": True}, 400, "invalid_subject"),
        ({"user_id": ""}, 422, "invalid_request"),
        ({"user_id": "a\x00b"}, 422, "invalid_request"),
        ({"user_id": "x" * 257}, 422, "invalid_request"),
        ({"conversation_id": "no spaces allowed"}, 422, "invalid_request"),
        ({"user_id": "a", "dry_run": "yes"}, 422, "invalid_request"),
        ({"userid": "a"}, 422, "invalid_request"),
        ([], 422, "invalid_request"),
    ],
)
async def test_erase_refuses_unclear_requests(client: httpx.AsyncClient, body: object, status: int, code: str) -> None:
    refused = await client.post("/admin/privacy/erase", json=body)
    assert refused.status_code == status, refused.text
    assert refused.json()["error"]["code"] == code


async def test_purge(client: httpx.AsyncClient, runtime: Runtime) -> None:
    old, recent = _ids("old"), _ids("recent")
    await _chat(client, old, "hi")
    await _chat(client, recent, "你好")
    await age_conversations(runtime.engine, [old], 100)

    off = await client.post("/admin/privacy/purge", json={})
    assert off.status_code == 409 and off.json()["error"]["code"] == "retention_off"
    for bad in ({"older_than_days": 0}, {"older_than_days": "30"}, {"older_than_days": 1.5}, {"days": 30}):
        assert (await client.post("/admin/privacy/purge", json=bad)).status_code == 422, bad

    dry = await client.post("/admin/privacy/purge", json={"older_than_days": 90, "dry_run": True})
    assert dry.status_code == 200 and dry.json()["counts"]["conversations"] >= 1
    assert (await client.get(f"/v1/conversations/{old}")).status_code == 200

    original = runtime.settings
    runtime.settings = original.model_copy(update={"retention_days": 90})
    try:
        purged = await client.post("/admin/privacy/purge", json={})
    finally:
        runtime.settings = original
    assert purged.status_code == 200 and purged.json()["action"] == "purge"
    assert purged.json()["counts"]["conversations"] >= 1
    assert (await client.get(f"/v1/conversations/{old}")).status_code == 404
    assert (await client.get(f"/v1/conversations/{recent}")).status_code == 200
