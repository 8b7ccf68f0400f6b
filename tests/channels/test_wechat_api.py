"""The WeChat API client against a real local stand-in server (access-token caching, early refresh, refresh on
40001/42001), message splitting, the XML parser and reply builder, the signature, and the answer-once claims
(in memory and in Redis)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Iterator
from xml.etree.ElementTree import fromstring

import pytest

from kefu.channels.once import MemoryOnce, RedisOnce
from kefu.channels.wechat import MalformedMessage, WeChatApi, WeChatApiError, parse_message, signature, text_reply
from kefu.channels.wechat.api import MAX_TEXT_BYTES, split_text
from kefu.channels.wechat.signature import signature_ok
from tests.channels.wechat_standin import APP_ID, APP_SECRET, WeChatStandIn
from tests.channels.wiring import local_server


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def standin() -> Iterator[tuple[WeChatStandIn, str]]:
    api = WeChatStandIn()
    with local_server(api.app) as base:
        yield api, base


async def test_the_access_token_is_fetched_once_and_reused(standin: tuple[WeChatStandIn, str]) -> None:
    server, base = standin
    api = WeChatApi(base, APP_ID, APP_SECRET)
    try:
        await asyncio.gather(*(api.send_text(f"o{i}", "你好") for i in range(5)))  # concurrent: one fetch
        await api.send_text("o9", "again")
    finally:
        await api.close()
    assert len(server.token_calls) == 1
    assert server.token_calls[0] == {"grant_type": "client_credential", "appid": APP_ID, "secret": APP_SECRET}
    assert len(server.delivered()) == 6 and {s.token for s in server.sends} == {"TOKEN-1"}


async def test_the_token_is_refreshed_before_it_expires(standin: tuple[WeChatStandIn, str]) -> None:
    server, base = standin
    clock = Clock()
    api = WeChatApi(base, APP_ID, APP_SECRET, clock=clock)
    try:
        await api.send_text("o1", "one")
        clock.now += 7200 - 300 - 1  # still fresh: 300 s before expiry is when it is fetched again
        await api.send_text("o1", "two")
        assert len(server.token_calls) == 1
        clock.now += 2
        await api.send_text("o1", "three")
    finally:
        await api.close()
    assert len(server.token_calls) == 2 and [s.token for s in server.sends] == ["TOKEN-1", "TOKEN-1", "TOKEN-2"]


@pytest.mark.parametrize("how", ["revoked", "expired"])
async def test_an_invalid_token_is_fetched_again_and_the_call_repeated_once(
    standin: tuple[WeChatStandIn, str], how: str
) -> None:
    server, base = standin
    api = WeChatApi(base, APP_ID, APP_SECRET)
    try:
        await api.send_text("o1", "first")
        (server.revoked if how == "revoked" else server.expired).add("TOKEN-1")  # 40001 / 42001 from now on
        await api.send_text("o1", "second")
    finally:
        await api.close()
    assert len(server.token_calls) == 2
    assert [(s.token, s.accepted) for s in server.sends] == [("TOKEN-1", True), ("TOKEN-1", False), ("TOKEN-2", True)]
    assert [m["text"]["content"] for m in server.delivered()] == ["first", "second"]


async def test_errors_that_a_new_token_cannot_fix_are_raised(standin: tuple[WeChatStandIn, str]) -> None:
    _server, base = standin
    wrong = WeChatApi(base, APP_ID, "not-the-secret")
    try:
        with pytest.raises(WeChatApiError) as refused:
            await wrong.send_text("o1", "hi")
    finally:
        await wrong.close()
    assert refused.value.errcode == 40013


async def test_a_long_reply_goes_out_as_several_messages_cut_between_sentences(
    standin: tuple[WeChatStandIn, str],
) -> None:
    server, base = standin
    sentence = "这是一句比较长的客服回答，用来测试分段发送。"  # 22 characters, 66 bytes
    text = sentence * 70
    api = WeChatApi(base, APP_ID, APP_SECRET)
    try:
        sent = await api.send_text("o1", text)
    finally:
        await api.close()
    contents = [m["text"]["content"] for m in server.delivered()]
    assert sent == len(contents) == 3 and "".join(contents) == text
    assert all(len(c.encode()) <= MAX_TEXT_BYTES and c.endswith("。") for c in contents)


def test_split_text_cuts_an_endless_sentence_by_characters() -> None:
    pieces = split_text("字" * 1500)
    assert "".join(pieces) == "字" * 1500 and all(len(p.encode()) <= MAX_TEXT_BYTES for p in pieces)
    assert split_text("short. two!") == ["short. two!"] and split_text("  ") == []


def test_signature_is_the_sha1_of_the_sorted_parts() -> None:
    expected = hashlib.sha1("".join(sorted(["tok", "1700000000", "nonce"])).encode()).hexdigest()
    assert signature("tok", "1700000000", "nonce") == expected
    assert signature_ok("tok", "1700000000", "nonce", expected.upper())
    assert not signature_ok("tok", "1700000001", "nonce", expected)
    assert not signature_ok("", "1700000000", "nonce", signature("", "1700000000", "nonce"))  # no token: off


def test_parse_and_reply_round_trip() -> None:
    body = (
        "<xml><ToUserName><![CDATA[gh_abc]]></ToUserName><FromUserName><![CDATA[oUser_1-x]]></FromUserName>"
        "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        "<Content><![CDATA[订单 <100001> & 其他]]></Content><MsgId>1234567890123456789</MsgId></xml>"
    ).encode()
    message = parse_message(body)
    assert (message.to_user, message.from_user, message.msg_type) == ("gh_abc", "oUser_1-x", "text")
    assert message.text == "订单 <100001> & 其他" and message.key == "1234567890123456789"

    tricky = "回复里有 ]]> 和 <b>标签</b> & 控制字符\x01 end"
    root = fromstring(text_reply(message, tricky, 1700000005))
    fields = {child.tag: child.text for child in root}
    assert fields == {
        "ToUserName": "oUser_1-x",
        "FromUserName": "gh_abc",
        "CreateTime": "1700000005",
        "MsgType": "text",
        "Content": tricky.replace("\x01", ""),
    }


def test_parser_refusals() -> None:
    with pytest.raises(MalformedMessage, match="CreateTime"):
        parse_message(
            b"<xml><ToUserName>gh_a</ToUserName><FromUserName>o1</FromUserName><CreateTime>soon</CreateTime>"
            b"<MsgType>text</MsgType></xml>"
        )
    with pytest.raises(MalformedMessage, match="longer than"):
        parse_message(
            b"<xml><ToUserName>gh_a</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>"
            b"<MsgType>text</MsgType><Content>" + b"x" * 9000 + b"</Content></xml>"
        )


async def test_memory_claims_hold_for_their_time_to_live() -> None:
    clock = Clock()
    claims = MemoryOnce(capacity=3, clock=clock)
    assert await claims.claim("a", 10) and not await claims.claim("a", 10)
    clock.now += 10.5
    assert await claims.claim("a", 10)  # expired: claimable again
    await claims.release("a")
    assert await claims.claim("a", 10)
    for key in "bcde":
        await claims.claim(key, 10)
    assert len(claims) == 3  # bounded: the oldest went first


@pytest.mark.redis
async def test_redis_claims_are_shared_by_replicas(redis_url: str) -> None:
    from redis.asyncio import Redis

    first, second = RedisOnce(Redis.from_url(redis_url)), RedisOnce(Redis.from_url(redis_url))
    key = f"test:{uuid.uuid4().hex}"
    try:
        results = await asyncio.gather(*(store.claim(key, 5) for store in (first, second, first, second)))
        assert sorted(results) == [False, False, False, True]
        await second.release(key)
        assert await first.claim(key, 0.2)
        await asyncio.sleep(0.35)
        assert await second.claim(key, 5)  # expired in Redis
        await first.release(key)
    finally:
        await first.close()
        await second.close()
