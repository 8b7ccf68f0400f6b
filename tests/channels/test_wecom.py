"""``/channels/wecom`` (企业微信 self-built app): Tencent's sample callback (URL check and message) end to end,
encrypted passive replies, the late path through the app's message API on a real local stand-in server,
retries answered once, agents' replies, and refusals."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from xml.etree.ElementTree import fromstring

import httpx
import pytest

from kefu.channels.base import OutboundMessage
from kefu.channels.wechat.crypto import MessageCrypto, msg_signature
from kefu.channels.wecom import conversation_id
from kefu.runtime import Runtime
from tests.channels.test_wechat_crypto import ECHO, KEY, SAMPLE, TOKEN
from tests.channels.wechat_standin import CORP_ID, CORP_SECRET, WeChatStandIn
from tests.channels.wiring import app_client, channel_runtime, eventually, local_server

AGENT_ID = 1000002


@pytest.fixture
async def wecom(runtime: Runtime) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime, WeChatStandIn]]:
    api = WeChatStandIn()
    with local_server(api.app) as base:
        settings = {
            "wecom_token": TOKEN,
            "wecom_encoding_aes_key": KEY,
            "wecom_corp_id": CORP_ID,
            "wecom_agent_id": AGENT_ID,
            "wecom_secret": CORP_SECRET,
            "wecom_api_base": base,
            "wechat_reply_window_s": 0.8,
        }
        async with channel_runtime(runtime, **settings) as rt, app_client(rt) as client:
            yield client, rt, api


def _sealed_push(user_id: str, content: str, msg_id: str) -> tuple[bytes, dict[str, str]]:
    crypto = MessageCrypto(TOKEN, KEY, CORP_ID)
    inner = (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{user_id}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId><AgentID>{AGENT_ID}</AgentID></xml>"
    )
    sealed = crypto.encrypt(inner)
    timestamp, nonce = str(int(time.time())), uuid.uuid4().hex[:9]
    body = f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{sealed}]]></Encrypt></xml>"
    query = {"msg_signature": msg_signature(TOKEN, timestamp, nonce, sealed), "timestamp": timestamp, "nonce": nonce}
    return body.encode(), query


def _opened(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/xml"), answer.text
    envelope = {child.tag: child.text or "" for child in fromstring(answer.text)}
    assert envelope["MsgSignature"] == msg_signature(
        TOKEN, envelope["TimeStamp"], envelope["Nonce"], envelope["Encrypt"]
    )
    plain = MessageCrypto(TOKEN, KEY, CORP_ID).decrypt(envelope["Encrypt"])
    return {child.tag: child.text or "" for child in fromstring(plain)}


async def _roles(client: httpx.AsyncClient, user_id: str) -> list[str]:
    answer = await client.get(f"/v1/conversations/{conversation_id(user_id)}")
    return [] if answer.status_code == 404 else [m["role"] for m in answer.json()["messages"]]


async def test_tencents_sample_url_check_and_message(wecom: tuple[httpx.AsyncClient, Runtime, WeChatStandIn]) -> None:
    client, _rt, api = wecom
    query = {
        "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
        "timestamp": "1409659589",
        "nonce": "263014780",
    }
    checked = await client.get("/channels/wecom", params={**query, "echostr": ECHO})
    assert checked.status_code == 200 and checked.text == "1616140317555161061"
    forged = await client.get("/channels/wecom", params={**query, "msg_signature": "0" * 40, "echostr": ECHO})
    assert forged.status_code == 403

    body = f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{SAMPLE}]]></Encrypt></xml>"
    sample_query = {"msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6", "timestamp": "1409659813"}
    answer = await client.post("/channels/wecom", content=body, params={**sample_query, "nonce": "1372623149"})
    reply = _opened(answer)  # the sample says "hello" from member "mycreate": the greeting, sealed for WeCom
    assert reply["ToUserName"] == "mycreate" and reply["FromUserName"] == CORP_ID and reply["Content"]
    assert await _roles(client, "mycreate") == ["user", "bot"]
    assert api.sends == []


async def test_a_slow_turn_is_answered_once_through_the_app_message_api(
    wecom: tuple[httpx.AsyncClient, Runtime, WeChatStandIn],
) -> None:
    client, rt, api = wecom
    user = f"zhang.san-{uuid.uuid4().hex[:6]}@corp"  # "@" and "." are allowed in a WeCom UserID
    body, query = _sealed_push(user, "帮我查一下订单100001", str(uuid.uuid4().int % 10**18))
    held = asyncio.Event()

    async def busy() -> None:  # the conversation is busy with an earlier turn for 1.5 s
        async with rt.pipeline.locks.hold(conversation_id(user)):
            held.set()
            await asyncio.sleep(1.5)

    task = asyncio.create_task(busy())
    await held.wait()
    # The push and a retry, both inside the busy time: each gives up after its window.
    answers = await asyncio.gather(*(client.post("/channels/wecom", content=body, params=query) for _ in range(2)))
    assert [a.text for a in answers] == ["success", "success"]
    await task
    await eventually(lambda: len(api.delivered()) == 1)
    retry = await client.post("/channels/wecom", content=body, params=query)
    assert retry.text == "success"
    await asyncio.sleep(0.3)
    sent = api.delivered()
    assert len(sent) == 1 and sent[0]["touser"] == user and sent[0]["agentid"] == AGENT_ID
    assert "SF1234567890" in sent[0]["text"]["content"]
    assert api.token_calls == [{"corpid": CORP_ID, "corpsecret": CORP_SECRET}]
    assert await _roles(client, user) == ["user", "bot"]

    said = OutboundMessage.said_by(
        "agent", conversation_id(user), "我是客服小李。", "agent", channel="wecom", user_id=user
    )
    assert await rt.outbox.send(said) is True
    assert api.delivered()[-1] == {
        "touser": user,
        "msgtype": "text",
        "agentid": AGENT_ID,
        "text": {"content": "我是客服小李。"},
    }


async def test_refusals(wecom: tuple[httpx.AsyncClient, Runtime, WeChatStandIn], runtime: Runtime) -> None:
    client, _rt, _api = wecom
    body, query = _sealed_push("lisi", "你好", "1")
    bad = await client.post("/channels/wecom", content=body, params={**query, "msg_signature": "0" * 40})
    assert bad.status_code == 403 and bad.json()["error"]["code"] == "invalid_signature"
    plain = await client.post("/channels/wecom", content=b"<xml><Content>hi</Content></xml>", params=query)
    assert plain.status_code == 400 and plain.json()["error"]["code"] == "malformed_xml"
    async with channel_runtime(runtime) as off, app_client(off) as other:
        closed = await other.post("/channels/wecom", content=body, params=query)
    assert closed.status_code == 404 and "KEFU_WECOM_TOKEN" in closed.json()["error"]["message"]
    with pytest.raises(ValueError, match="KEFU_WECOM_CORP_ID"):
        async with channel_runtime(runtime, wecom_token="t", wecom_encoding_aes_key=KEY):
            pass


def test_conversation_ids_for_user_ids() -> None:
    assert conversation_id("zhangsan") == "wecom:zhangsan"
    hashed = conversation_id("zhang@corp")
    assert (
        hashed.startswith("wecom:h-")
        and len(hashed) == len("wecom:h-") + 32
        and hashed == conversation_id("zhang@corp")
    )
