"""``/channels/wechat`` on the app in-process with real turns, and a real local HTTP server standing in for
api.weixin.qq.com: URL check, XML in and out (zh and en), the passive path, the late path through the
customer-service API, WeChat's retries (one turn, one answer), non-text messages and agents' replies.

The late path needs a turn slower than the reply window. The window is made small through the settings,
and the turn is slow for a real reason: the conversation is busy (the test holds its lock, as a turn of
an earlier message would), so the turn waits for it before it runs."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from xml.etree.ElementTree import fromstring

import httpx
import pytest

from kefu.channels.base import OutboundMessage
from kefu.channels.wechat import signature
from kefu.runtime import Runtime
from tests.channels.wechat_standin import APP_ID, APP_SECRET, WeChatStandIn
from tests.channels.wiring import app_client, channel_runtime, eventually, local_server

TOKEN = "wechat-test-token"
ACCOUNT = "gh_0123456789ab"


def _openid() -> str:
    return "o" + uuid.uuid4().hex[:27]  # WeChat OpenIDs are 28 characters


def _msg_id() -> str:
    return str(uuid.uuid4().int % 10**19)


def _query(token: str = TOKEN, **extra: str) -> dict[str, str]:
    timestamp, nonce = str(int(time.time())), uuid.uuid4().hex[:10]
    return {"signature": signature(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce, **extra}


def text_xml(openid: str, content: str, msg_id: str) -> bytes:
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    ).encode()


def other_xml(openid: str, msg_type: str, inner: str = "", msg_id: str | None = None, created: int = 0) -> bytes:
    msg = f"<MsgId>{msg_id}</MsgId>" if msg_id else ""
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{created or int(time.time())}</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>"
        f"{inner}{msg}</xml>"
    ).encode()


def reply_fields(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/xml"), answer.text
    root = fromstring(answer.text)
    assert root.tag == "xml"
    return {child.tag: child.text or "" for child in root}


@dataclass
class WeChat:
    client: httpx.AsyncClient
    runtime: Runtime
    api: WeChatStandIn

    async def push(self, body: bytes) -> httpx.Response:
        return await self.client.post(
            "/channels/wechat", content=body, params=_query(openid="x"), headers={"Content-Type": "text/xml"}
        )

    async def transcript(self, openid: str) -> list[tuple[str, str]]:
        answer = await self.client.get(f"/v1/conversations/wx:{openid}")
        if answer.status_code == 404:
            return []
        return [(m["role"], m["text"]) for m in answer.json()["messages"]]


@pytest.fixture
def standin() -> Iterator[tuple[WeChatStandIn, str]]:
    api = WeChatStandIn()
    with local_server(api.app) as base:
        yield api, base


async def _wechat(runtime: Runtime, standin: tuple[WeChatStandIn, str], window_s: float) -> AsyncIterator[WeChat]:
    api, base = standin
    settings = {
        "wechat_token": TOKEN,
        "wechat_app_id": APP_ID,
        "wechat_app_secret": APP_SECRET,
        "wechat_api_base": base,
        "wechat_reply_window_s": window_s,
    }
    async with channel_runtime(runtime, **settings) as rt, app_client(rt) as client:
        yield WeChat(client, rt, api)


@pytest.fixture
async def wechat(runtime: Runtime, standin: tuple[WeChatStandIn, str]) -> AsyncIterator[WeChat]:
    async for ready in _wechat(runtime, standin, 4.5):
        yield ready


@pytest.fixture
async def slow_window(runtime: Runtime, standin: tuple[WeChatStandIn, str]) -> AsyncIterator[WeChat]:
    async for ready in _wechat(runtime, standin, 0.6):
        yield ready


@pytest.fixture
async def wide_window(runtime: Runtime, standin: tuple[WeChatStandIn, str]) -> AsyncIterator[WeChat]:
    async for ready in _wechat(runtime, standin, 1.5):
        yield ready


async def busy_for(runtime: Runtime, conversation_id: str, seconds: float, held: asyncio.Event) -> None:
    """Keeps the conversation busy (as an earlier turn would) for ``seconds``."""
    async with runtime.pipeline.locks.hold(conversation_id):
        held.set()
        await asyncio.sleep(seconds)


# --- URL check ----------------------------------------------------------------------------------------


async def test_url_verification_echoes_echostr_only_with_the_right_signature(wechat: WeChat) -> None:
    good = await wechat.client.get("/channels/wechat", params=_query(echostr="5837397520665436492"))
    assert good.status_code == 200 and good.text == "5837397520665436492"
    assert good.headers["content-type"].startswith("text/plain")

    wrong = await wechat.client.get("/channels/wechat", params=_query(token="not-the-token", echostr="123"))
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "invalid_signature"
    query = _query(echostr="123")
    query["timestamp"] = str(int(query["timestamp"]) + 1)  # signed for another timestamp
    assert (await wechat.client.get("/channels/wechat", params=query)).status_code == 403
    assert (await wechat.client.get("/channels/wechat", params={"echostr": "123"})).status_code == 403
    odd = await wechat.client.get("/channels/wechat", params=_query(echostr="<script>alert(1)</script>"))
    assert odd.status_code == 400 and odd.json()["error"]["code"] == "invalid_echostr"


async def test_off_without_a_token(runtime: Runtime) -> None:
    async with channel_runtime(runtime, wechat_token="") as rt, app_client(rt) as client:
        answer = await client.get("/channels/wechat", params=_query(echostr="1"))
        pushed = await client.post("/channels/wechat", content=text_xml(_openid(), "hi", _msg_id()), params=_query())
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "channel_disabled"
    assert pushed.status_code == 404 and "KEFU_WECHAT_TOKEN" in pushed.json()["error"]["message"]


# --- bad input ----------------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<xml><ToUserName>gh_1</ToUserName><FromUserName>oABC</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&lol3;</Content><MsgId>1</MsgId></xml>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh_1</ToUserName><FromUserName>oABC</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>2</MsgId></xml>"""


async def test_bad_pushes_are_refused_with_clear_errors(wechat: WeChat, runtime: Runtime) -> None:
    openid = _openid()
    body = text_xml(openid, "你好", _msg_id())
    unsigned = await wechat.client.post("/channels/wechat", content=body)
    assert unsigned.status_code == 403 and unsigned.json()["error"]["code"] == "invalid_signature"
    forged = await wechat.client.post("/channels/wechat", content=body, params=_query(token="guess"))
    assert forged.status_code == 403

    malformed = {
        b"": "empty",
        b"<xml><ToUserName>gh_1</ToUserName>": "not well-formed",
        b"not xml at all": "not well-formed",
        b"<root><MsgType>text</MsgType></root>": "root element",
        BILLION_LAUGHS: "forbidden",
        EXTERNAL_ENTITY: "forbidden",
        other_xml(openid, "text").replace(
            f"<FromUserName><![CDATA[{openid}]]></FromUserName>".encode(), b""
        ): "missing",
        other_xml("../../etc", "text", "<Content>x</Content>", "1"): "OpenID",
        other_xml(openid, "text", "<Content>x</Content>", "12ab"): "MsgId",
    }
    for xml, reason in malformed.items():
        answer = await wechat.push(xml)
        assert answer.status_code == 400, (xml[:50], answer.text)
        assert answer.json()["error"]["code"] == "malformed_xml" and reason in answer.json()["error"]["message"]

    encrypted = await wechat.client.post("/channels/wechat", content=body, params=_query(encrypt_type="aes"))
    assert encrypted.status_code == 400 and encrypted.json()["error"]["code"] == "encryption_unconfigured"
    unknown = await wechat.client.post("/channels/wechat", content=body, params=_query(encrypt_type="rot13"))
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "encryption_unsupported"
    huge = text_xml(openid, "好" * runtime.settings.max_body_bytes, _msg_id())
    too_big = await wechat.push(huge)
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "payload_too_large"
    assert await wechat.transcript(openid) == []
    assert wechat.api.sends == [] and wechat.api.token_calls == []


# --- the passive path -----------------------------------------------------------------------------------


async def test_a_text_message_gets_a_passive_xml_reply_in_its_language(wechat: WeChat) -> None:
    openid = _openid()
    started = time.monotonic()
    zh = reply_fields(await wechat.push(text_xml(openid, "帮我看看订单100001到哪了", _msg_id())))
    assert time.monotonic() - started < wechat.runtime.settings.wechat_reply_window_s
    assert zh["ToUserName"] == openid and zh["FromUserName"] == ACCOUNT and zh["MsgType"] == "text"
    assert abs(int(zh["CreateTime"]) - time.time()) < 60
    assert "SF1234567890" in zh["Content"] and "顺丰" in zh["Content"]

    en = reply_fields(await wechat.push(text_xml(openid, "Is order 100002 still returnable?", _msg_id())))
    assert en["ToUserName"] == openid and "100002" in en["Content"]
    assert "return" in en["Content"].lower() and not any("\u4e00" <= c <= "\u9fff" for c in en["Content"])

    transcript = await wechat.transcript(openid)
    assert [role for role, _ in transcript] == ["user", "bot", "user", "bot"]
    assert transcript[1][1] == zh["Content"] and transcript[3][1] == en["Content"]
    assert wechat.api.sends == []  # both answers went back passively


async def test_retries_after_a_passive_reply_get_success_and_run_nothing(wechat: WeChat) -> None:
    openid, msg_id = _openid(), _msg_id()
    body = text_xml(openid, "你们支持哪些付款方式？", msg_id)
    first = reply_fields(await wechat.push(body))
    assert first["Content"]
    for _ in range(3):
        retry = await wechat.push(body)
        assert retry.status_code == 200 and retry.text == "success"
    assert len(await wechat.transcript(openid)) == 2
    assert wechat.api.sends == []


async def test_concurrent_retries_share_one_turn_and_one_reply(wechat: WeChat) -> None:
    openid, msg_id = _openid(), _msg_id()
    body = text_xml(openid, "订单100003还能取消吗", msg_id)
    answers = await asyncio.gather(*(wechat.push(body) for _ in range(4)))
    passive = [a for a in answers if a.headers["content-type"].startswith("application/xml")]
    assert len(passive) == 1 and all(a.text == "success" for a in answers if a not in passive)
    assert "100003" in reply_fields(passive[0])["Content"]
    assert len(await wechat.transcript(openid)) == 2
    assert wechat.api.sends == []


# --- the late path --------------------------------------------------------------------------------------


async def test_a_turn_slower_than_the_window_is_answered_once_by_the_customer_service_api(
    slow_window: WeChat,
) -> None:
    wechat, window = slow_window, slow_window.runtime.settings.wechat_reply_window_s
    openid, msg_id = _openid(), _msg_id()
    body = text_xml(openid, "我的订单100001到哪了", msg_id)
    held = asyncio.Event()
    busy = asyncio.create_task(busy_for(wechat.runtime, f"wx:{openid}", 2.5, held))
    await held.wait()

    started = time.monotonic()
    first = await wechat.push(body)
    assert first.text == "success" and window <= time.monotonic() - started < window + 1.0
    # WeChat's three retries while the turn still waits: each within its window, each "success".
    retries = await asyncio.gather(*(wechat.push(body) for _ in range(3)))
    assert [r.text for r in retries] == ["success"] * 3
    assert wechat.api.sends == []  # nothing can be sent before the turn has run

    await busy
    await eventually(lambda: len(wechat.api.delivered()) == 1)
    await asyncio.sleep(0.3)  # a second send would come now, if any were due
    delivered = wechat.api.delivered()
    assert len(delivered) == 1 and len(wechat.api.token_calls) == 1
    assert delivered[0]["touser"] == openid and delivered[0]["msgtype"] == "text"
    assert "SF1234567890" in delivered[0]["text"]["content"]
    assert "顺丰".encode() in wechat.api.sends[0].raw  # UTF-8 on the wire, not \u escapes

    # Retries after the answer went out: "success", no turn, no send.
    for _ in range(3):
        assert (await wechat.push(body)).text == "success"
    await asyncio.sleep(0.2)
    assert len(wechat.api.sends) == 1
    transcript = await wechat.transcript(openid)
    assert [role for role, _ in transcript] == ["user", "bot"]
    assert transcript[1][1] == delivered[0]["text"]["content"]


async def test_a_retry_waiting_when_the_late_turn_ends_gets_the_passive_reply_instead(wide_window: WeChat) -> None:
    wechat, window = wide_window, wide_window.runtime.settings.wechat_reply_window_s
    openid, msg_id = _openid(), _msg_id()
    body = text_xml(openid, "how long does shipping take?", msg_id)
    held = asyncio.Event()
    # Busy a little past the first push's window: the retry that follows has ~1.4 s left for the turn.
    busy = asyncio.create_task(busy_for(wechat.runtime, f"wx:{openid}", window + 0.1, held))
    await held.wait()

    assert (await wechat.push(body)).text == "success"  # gave up waiting after the window
    retry = await wechat.push(body)  # arrives while the turn waits; the turn ends inside its window
    fields = reply_fields(retry)
    assert fields["ToUserName"] == openid and fields["Content"]
    await busy
    await asyncio.sleep(0.5)
    assert wechat.api.sends == [] and wechat.api.token_calls == []  # answered once, passively
    assert len(await wechat.transcript(openid)) == 2


# --- non-text messages, silence and agents ------------------------------------------------------------


async def test_non_text_messages_events_and_voice_recognition(wechat: WeChat) -> None:
    openid = _openid()
    image = other_xml(openid, "image", "<PicUrl><![CDATA[http://x/y.jpg]]></PicUrl><MediaId>m1</MediaId>", _msg_id())
    note = reply_fields(await wechat.push(image))["Content"]
    assert "文字" in note and "text" in note
    assert (await wechat.push(image)).text == "success"  # WeChat's retry: said once

    bare_voice = other_xml(openid, "voice", "<MediaId>m2</MediaId><Format>amr</Format>", _msg_id())
    assert "文字" in reply_fields(await wechat.push(bare_voice))["Content"]

    heard = "<MediaId>m3</MediaId><Format>amr</Format><Recognition><![CDATA[订单100001到哪了]]></Recognition>"
    spoken = reply_fields(await wechat.push(other_xml(openid, "voice", heard, _msg_id())))
    assert "SF1234567890" in spoken["Content"]

    created = int(time.time())
    subscribe = other_xml(openid, "event", "<Event><![CDATA[subscribe]]></Event>", created=created)
    welcome = reply_fields(await wechat.push(subscribe))["Content"]
    assert welcome == wechat.runtime.responder.text("greeting", "zh")
    assert (await wechat.push(subscribe)).text == "success"  # an event's retry (same sender and time)
    unsubscribe = other_xml(openid, "event", "<Event><![CDATA[unsubscribe]]></Event>")
    assert (await wechat.push(unsubscribe)).text == "success"

    assert [role for role, _ in await wechat.transcript(openid)] == ["user", "bot"]  # only the recognised voice


async def test_agents_replies_go_out_by_the_api_and_the_silent_bot_answers_success(wechat: WeChat) -> None:
    openid = _openid()
    handed = reply_fields(await wechat.push(text_xml(openid, "转人工", _msg_id())))
    assert "人工" in handed["Content"]
    silent = await wechat.push(text_xml(openid, "有人吗？", _msg_id()))
    assert silent.text == "success"  # an agent owns the conversation: the bot says nothing

    said = OutboundMessage.said_by(
        "agent", f"wx:{openid}", "您好，我是客服小王，马上为您处理。", "agent", channel="wechat", user_id=openid
    )
    assert await wechat.runtime.outbox.send(said) is True
    assert wechat.api.delivered() == [{"touser": openid, "msgtype": "text", "text": {"content": said.text}}]
    assert [role for role, _ in await wechat.transcript(openid)] == ["user", "bot", "user"]


async def test_a_message_too_long_for_a_turn_is_answered_politely(wechat: WeChat, runtime: Runtime) -> None:
    openid = _openid()
    body = text_xml(openid, "长" * (runtime.settings.max_text_chars + 1), _msg_id())
    assert "太长" in reply_fields(await wechat.push(body))["Content"]
    assert await wechat.transcript(openid) == []
