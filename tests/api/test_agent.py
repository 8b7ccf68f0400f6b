"""The agent API over HTTP against a real server, on SQLite and PostgreSQL: a customer hands over, agents
claim (one wins), chat, leave notes, give the conversation back and close it; tickets when nobody is
online; and every refusal with its precise code."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kefu.access.passwords import hash_password
from tests.handoff.serving import PASSWORD, Server, serve

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def server(database_url: str, tmp_path: Path) -> AsyncIterator[Server]:
    async with serve(database_url, tmp_path) as running:
        yield running


def _cid() -> str:
    return f"agent-api-{uuid.uuid4().hex[:10]}"


async def _say(customer: httpx.AsyncClient, cid: str, text: str, **extra: Any) -> dict[str, Any]:
    answered = await customer.post(f"/v1/conversations/{cid}/messages", json={"text": text, **extra})
    assert answered.status_code == 200, answered.text
    body: dict[str, Any] = answered.json()
    return body


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    return error


def _waiting(queue: dict[str, Any], cid: str) -> dict[str, Any] | None:
    return next((e for e in queue["waiting"] if e["conversation_id"] == cid), None)


async def test_handover_claim_chat_notes_return_and_close(server: Server) -> None:
    cid, user = _cid(), f"用户-{uuid.uuid4().hex[:6]}"
    alice, _ = await server.agent()
    bob, _ = await server.agent()
    async with server.customer() as customer, alice, bob:
        assert (await alice.post("/agent/presence")).status_code == 200  # alice's console is open
        first = await _say(customer, cid, "帮我查一下订单100004现在是什么状态", user_id=user)
        assert first["owner"] == "bot"
        handed = await _say(customer, cid, "转人工", user_id=user)
        assert handed["owner"] == "agent" and handed["handoff"] is True
        assert "没有人工客服在线" not in handed["reply"]["text"]  # alice is online

        queue = (await alice.get("/agent/queue")).json()
        entry = _waiting(queue, cid)
        assert entry is not None and entry["language"] == "zh" and entry["status"] == "waiting"
        assert entry["agents_online"] is True and entry["user_id"] == user and entry["waiting_s"] >= 0
        assert "100004" in entry["summary"]["text"] and "帮我查一下订单100004现在是什么状态" in entry["summary"]["text"]
        assert any(a["name"].startswith("agent-") for a in queue["online_agents"])

        claimed = await alice.post(f"/agent/conversations/{cid}/claim")
        assert claimed.status_code == 200 and claimed.json()["handoff"]["status"] == "claimed"
        assert claimed.json()["handoff"]["assignee"].startswith("agent-")
        error = _error(await bob.post(f"/agent/conversations/{cid}/claim"), 409, "already_claimed")
        assert "已被其他客服认领" in error["message"]
        assert (await alice.post(f"/agent/conversations/{cid}/claim")).status_code == 200  # hers already
        queue = (await bob.get("/agent/queue")).json()
        assert _waiting(queue, cid) is None and any(e["conversation_id"] == cid for e in queue["claimed"])

        _error(await bob.post(f"/agent/conversations/{cid}/messages", json={"text": "hi"}), 403, "not_owner")
        body = {"text": "您好，我是客服，已经看到您的耳机问题。", "message_id": "am-1"}
        sent = await alice.post(f"/agent/conversations/{cid}/messages", json=body)
        assert sent.status_code == 201 and sent.json()["role"] == "agent" and not sent.json()["replayed"]
        again = await alice.post(f"/agent/conversations/{cid}/messages", json=body)
        assert again.status_code == 200 and again.json()["replayed"] is True
        clash = {"text": "something else", "message_id": "am-1"}
        _error(await alice.post(f"/agent/conversations/{cid}/messages", json=clash), 409, "message_id_conflict")

        silent = await _say(customer, cid, "好的，谢谢，订单号是100004", user_id=user)
        assert silent["reply"]["text"] == "" and silent["owner"] == "agent"  # the bot says nothing

        noted = await bob.post(f"/agent/conversations/{cid}/notes", json={"text": "客户是老客户，优先处理"})
        assert noted.status_code == 201 and noted.json()["text"] == "客户是老客户，优先处理"

        transcript = (await customer.get(f"/v1/conversations/{cid}")).json()
        assert [m["role"] for m in transcript["messages"]] == ["user", "bot", "user", "bot", "agent", "user"]
        assert transcript["messages"][4]["text"] == body["text"]
        assert "老客户" not in str(transcript)  # a note is never shown to the customer

        view = (await alice.get(f"/agent/conversations/{cid}")).json()
        assert view["owner"] == "agent" and view["handoff"]["status"] == "claimed"
        assert [n["text"] for n in view["notes"]] == ["客户是老客户，优先处理"]
        roles = [m["role"] for m in view["messages"]]
        assert roles.count("agent") == 1 and "system" in roles
        assert [m["role"] for m in view["bot_transcript"]] == ["user", "bot", "user", "bot"]
        order = next(o for o in view["orders"] if o["order_id"] == "100004")
        assert order["found"] and order["order"]["status"] == "delivered"

        returned = await alice.post(f"/agent/conversations/{cid}/return")
        assert returned.status_code == 200 and returned.json()["owner"] == "bot"
        answered = await _say(customer, cid, "订单100001到哪了", user_id=user)
        assert answered["owner"] == "bot" and answered["reply"]["text"]  # the bot answers again

        await _say(customer, cid, "还是转人工吧", user_id=user)
        assert (await bob.post(f"/agent/conversations/{cid}/claim")).status_code == 200
        error = _error(
            await bob.post(f"/agent/conversations/{cid}/close", json={"resolution": "happy"}), 422, "unknown_resolution"
        )
        assert "resolved" in error["message"] and "refund_issued" in error["message"]
        _error(await alice.post(f"/agent/conversations/{cid}/close", json={"resolution": "resolved"}), 403, "not_owner")
        closed = await bob.post(f"/agent/conversations/{cid}/close", json={"resolution": "resolved"})
        assert closed.status_code == 200 and closed.json()["handoff"]["resolution"] == "resolved"
        _error(await bob.post(f"/agent/conversations/{cid}/messages", json={"text": "bye"}), 409, "conversation_closed")
        _error(await bob.post(f"/agent/conversations/{cid}/claim"), 409, "conversation_closed")
        assert (await customer.get(f"/v1/conversations/{cid}")).json()["owner"] == "closed"

        metrics = (await customer.get("/metrics")).text
        waits = re.search(r"^kefu_handoff_wait_seconds_count (\S+)$", metrics, re.MULTILINE)
        assert waits is not None and float(waits.group(1)) == 2  # two claims, each observed once


async def test_nobody_online_ticket_and_contact_en(server: Server) -> None:
    cid = _cid()
    agent, _ = await server.agent()
    async with server.customer() as customer, agent:
        handed = await _say(customer, cid, "I want to talk to a person", locale="en")
        assert handed["owner"] == "agent"
        assert "No colleague is online right now" in handed["reply"]["text"]
        assert "leave a phone number or an e-mail address" in handed["reply"]["text"]
        tickets = (await agent.get("/agent/tickets")).json()["tickets"]
        ticket = next(t for t in tickets if t["conversation_id"] == cid)
        assert ticket["contact_needed"] is True and ticket["language"] == "en" and ticket["status"] == "open"

        noted = await _say(customer, cid, "my email is Li.Lei@Example.com", locale="en")
        assert noted["reply"]["text"].startswith("Thank you, I've added l***@example.com")
        ticket = next(t for t in (await agent.get("/agent/tickets")).json()["tickets"] if t["conversation_id"] == cid)
        assert (ticket["email"], ticket["contact_needed"]) == ("li.lei@example.com", False)
        assert (await customer.get(f"/v1/conversations/{cid}")).json()["messages"][-1]["role"] == "bot"

        # An agent who comes online still finds the conversation in the queue, and closing it closes the ticket.
        assert (await agent.post(f"/agent/conversations/{cid}/claim")).status_code == 200
        await agent.post(f"/agent/conversations/{cid}/close", json={"resolution": "callback_scheduled"})
        closed = (await agent.get("/agent/tickets", params={"status": "closed"})).json()["tickets"]
        assert any(t["conversation_id"] == cid and t["closed_at"] for t in closed)
        assert not any(t["conversation_id"] == cid for t in (await agent.get("/agent/tickets")).json()["tickets"])

        signed_off = await agent.delete("/agent/presence")
        assert signed_off.status_code == 204


async def test_two_agents_claiming_at_once_one_wins(server: Server) -> None:
    cid = _cid()
    first, _ = await server.agent()
    second, _ = await server.agent()
    async with server.customer() as customer, first, second:
        await _say(customer, cid, "转人工")
        answers = await asyncio.gather(
            first.post(f"/agent/conversations/{cid}/claim"), second.post(f"/agent/conversations/{cid}/claim")
        )
    assert sorted(a.status_code for a in answers) == [200, 409]
    assert next(a for a in answers if a.status_code == 409).json()["error"]["code"] == "already_claimed"


async def test_refusals(server: Server) -> None:
    cid, unknown = _cid(), _cid()
    agent, _ = await server.agent()
    async with server.customer() as customer, agent, httpx.AsyncClient(base_url=server.url) as nobody:
        await _say(customer, cid, "hello")  # a conversation the bot owns
        _error(await nobody.get("/agent/queue"), 401, "unauthorized")
        _error(await customer.get("/agent/queue"), 403, "forbidden")  # a channel key is not an agent
        _error(await customer.post(f"/agent/conversations/{cid}/claim"), 403, "forbidden")

        _error(await agent.get(f"/agent/conversations/{unknown}"), 404, "conversation_not_found")
        _error(await agent.post(f"/agent/conversations/{unknown}/claim"), 404, "conversation_not_found")
        _error(
            await agent.post(f"/agent/conversations/{unknown}/messages", json={"text": "hi"}),
            404,
            "conversation_not_found",
        )
        _error(
            await agent.post(f"/agent/conversations/{unknown}/notes", json={"text": "x"}), 404, "conversation_not_found"
        )
        _error(await agent.post(f"/agent/conversations/{unknown}/return"), 404, "conversation_not_found")
        _error(await agent.get("/agent/conversations/bad%20id"), 400, "invalid_conversation_id")
        _error(await agent.post(f"/agent/conversations/{cid}/claim"), 409, "not_waiting")
        _error(await agent.post(f"/agent/conversations/{cid}/messages", json={"text": "hi"}), 403, "not_owner")
        _error(await agent.post(f"/agent/conversations/{cid}/return"), 403, "not_owner")
        _error(await agent.post(f"/agent/conversations/{cid}/close", json={"resolution": "resolved"}), 403, "not_owner")

        await _say(customer, cid, "转人工")
        await agent.post(f"/agent/conversations/{cid}/claim")
        url = f"/agent/conversations/{cid}/messages"
        _error(await agent.post(url, json={"text": ""}), 422, "empty_text")
        _error(await agent.post(url, json={"text": " \n\t "}), 422, "empty_text")
        limit = server.runtime.settings.max_text_chars
        _error(await agent.post(url, json={"text": "好" * (limit + 1)}), 422, "text_too_long")
        _error(await agent.post(url, json={"text": "a\x00b"}), 422, "invalid_text")
        _error(await agent.post(url, json={"text": "hi", "message_id": "not an id!"}), 422, "invalid_request")
        _error(await agent.post(url, json={"text": "hi", "urgent": True}), 422, "invalid_request")
        _error(await agent.post(url, json=["hi"]), 422, "invalid_request")
        _error(
            await agent.post(url, content=b"{not json", headers={"Content-Type": "application/json"}),
            400,
            "invalid_json",
        )
        _error(await agent.post(f"/agent/conversations/{cid}/notes", json={"text": ""}), 422, "empty_text")
        _error(await agent.post(f"/agent/conversations/{cid}/close", json={}), 422, "invalid_request")
        _error(await agent.get("/agent/canned", params={"locale": "fr"}), 422, "invalid_request")
        _error(await agent.get("/agent/tickets", params={"status": "lost"}), 422, "invalid_request")
        # Nothing a refused request sent was stored.
        view = (await agent.get(f"/agent/conversations/{cid}")).json()
        assert not [m for m in view["messages"] if m["role"] == "agent"] and view["notes"] == []


async def test_canned_replies_resolutions_and_the_console_page(server: Server) -> None:
    agent, _ = await server.agent()
    async with agent:
        zh = (await agent.get("/agent/canned", params={"locale": "zh"})).json()
        en = (await agent.get("/agent/canned", params={"locale": "en"})).json()
        assert zh["locale"] == "zh" and en["locale"] == "en" and len(zh["replies"]) == len(en["replies"]) >= 5
        assert zh["replies"][0]["id"] == en["replies"][0]["id"] and "您好" in zh["replies"][0]["text"]
        default = (await agent.get("/agent/canned")).json()
        assert default["locale"] == server.runtime.settings.default_locale
        codes = [r["code"] for r in (await agent.get("/agent/resolutions")).json()["resolutions"]]
        assert "resolved" in codes and "spam" in codes
        page = await agent.get("/console")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        for testid in ("login-username", "login-password", "login-submit", "queue-list", "reply-input", "reply-send",
                       "return-to-bot", "close", "resolution", "canned-select", "note-input", "orders-list",
                       "bot-transcript", "lang-toggle"):  # fmt: skip
            assert f'data-testid="{testid}"' in page.text, testid
        script = await agent.get("/static/console.js")
        assert script.status_code == 200 and "/agent/ws" in script.text and "https://" not in script.text


async def test_the_console_session_cookie_works_on_this_site_only(server: Server) -> None:
    cid = _cid()
    await server.app.state.access.store.create_account("cookie-agent", "agent", hash_password(PASSWORD))
    async with server.customer() as customer, httpx.AsyncClient(base_url=server.url) as browser:
        await _say(customer, cid, "转人工")
        signed = await browser.post("/auth/login", json={"username": "cookie-agent", "password": PASSWORD})
        assert signed.status_code == 200 and "kefu_session" in browser.cookies
        forged = await browser.post(f"/agent/conversations/{cid}/claim", headers={"Origin": "https://evil.example"})
        _error(forged, 403, "cross_origin")
        own_site = await browser.post(f"/agent/conversations/{cid}/claim", headers={"Origin": server.url})
        assert own_site.status_code == 200
        assert (await browser.get("/agent/queue")).status_code == 200
