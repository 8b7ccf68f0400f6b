"""WeChat's message encryption (safe mode): Tencent's published test vectors, refusals, and
``/channels/wechat`` answering an encrypted message with an encrypted, signed passive reply."""

from __future__ import annotations

import time
import uuid
from xml.etree.ElementTree import fromstring

import pytest

from kefu.channels.wechat import signature
from kefu.channels.wechat.crypto import DecryptionFailed, MessageCrypto, encrypted_part, msg_signature
from kefu.channels.wechat.messages import MalformedMessage, parse_message
from kefu.runtime import Runtime
from tests.channels.wiring import app_client, channel_runtime

# Tencent's sample parameters and messages (WeCom callback documentation; the same scheme as 公众号 safe mode).
TOKEN, KEY, RECEIVER = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7"
SAMPLE = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvu"
    "JTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+Ltw"
    "Gc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t"
    "9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAV"
    "e0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
)
ECHO = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="


def test_tencents_sample_message_and_echo_string() -> None:
    crypto = MessageCrypto(TOKEN, KEY, RECEIVER)
    assert crypto.signature_ok("1409659813", "1372623149", SAMPLE, "477715d11cdb4164915debcba66cb864d751f3e6")
    message = parse_message(crypto.decrypt(SAMPLE).encode())
    assert (message.content, message.msg_id, message.from_user) == ("hello", "4561255354251345929", "mycreate")
    assert msg_signature(TOKEN, "1409659589", "263014780", ECHO) == "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
    assert crypto.decrypt(ECHO) == "1616140317555161061"


def test_round_trip_and_refusals() -> None:
    crypto = MessageCrypto(TOKEN, KEY, RECEIVER)
    sealed = crypto.encrypt("<xml>你好</xml>")
    assert crypto.decrypt(sealed) == "<xml>你好</xml>" and crypto.encrypt("x") != crypto.encrypt("x")  # random prefix
    with pytest.raises(DecryptionFailed, match="another AppID"):
        MessageCrypto(TOKEN, KEY, "wx-someone-else").decrypt(sealed)
    with pytest.raises(DecryptionFailed):
        MessageCrypto(TOKEN, "A" * 43, RECEIVER).decrypt(sealed)  # another key: padding or receiver fails
    with pytest.raises(DecryptionFailed, match="base64"):
        crypto.decrypt("not base64!")
    with pytest.raises(DecryptionFailed, match="blocks"):
        crypto.decrypt("YWJj")
    assert not crypto.signature_ok("1409659813", "1372623149", SAMPLE, "0" * 40)
    with pytest.raises(ValueError, match="43 characters"):
        MessageCrypto(TOKEN, "short", RECEIVER)
    with pytest.raises(MalformedMessage, match="Encrypt"):
        encrypted_part(b"<xml><ToUserName>gh</ToUserName></xml>")
    with pytest.raises(MalformedMessage, match="forbidden"):
        encrypted_part(b'<!DOCTYPE x [<!ENTITY e "e">]><xml><Encrypt>&e;</Encrypt></xml>')


APP_ID, AES_KEY, WX_TOKEN = "wx-safe-mode-app", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", "safe-token"


async def test_an_encrypted_message_gets_an_encrypted_signed_reply(runtime: Runtime) -> None:
    crypto = MessageCrypto(WX_TOKEN, AES_KEY, APP_ID)
    settings = {"wechat_token": WX_TOKEN, "wechat_app_id": APP_ID, "wechat_encoding_aes_key": AES_KEY}
    openid = "o" + uuid.uuid4().hex[:27]
    inner = (
        f"<xml><ToUserName><![CDATA[gh_safe]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[订单100001到哪了]]></Content><MsgId>{uuid.uuid4().int % 10**18}</MsgId></xml>"
    )
    sealed = crypto.encrypt(inner)
    body = f"<xml><ToUserName><![CDATA[gh_safe]]></ToUserName><Encrypt><![CDATA[{sealed}]]></Encrypt></xml>".encode()
    timestamp, nonce = str(int(time.time())), "n" + uuid.uuid4().hex[:8]
    query = {
        "signature": signature(WX_TOKEN, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        "encrypt_type": "aes",
        "msg_signature": msg_signature(WX_TOKEN, timestamp, nonce, sealed),
    }
    async with channel_runtime(runtime, **settings) as rt, app_client(rt) as client:
        bad = await client.post("/channels/wechat", content=body, params={**query, "msg_signature": "0" * 40})
        assert bad.status_code == 403 and bad.json()["error"]["code"] == "invalid_signature"
        foreign = MessageCrypto(WX_TOKEN, AES_KEY, "wx-other-app").encrypt(inner)
        other = f"<xml><Encrypt><![CDATA[{foreign}]]></Encrypt></xml>".encode()
        refused = await client.post(
            "/channels/wechat",
            content=other,
            params={**query, "msg_signature": msg_signature(WX_TOKEN, timestamp, nonce, foreign)},
        )
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "undecryptable"

        answer = await client.post("/channels/wechat", content=body, params=query)
        assert answer.status_code == 200, answer.text
        envelope = {child.tag: child.text or "" for child in fromstring(answer.text)}
        assert set(envelope) == {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}
        assert envelope["MsgSignature"] == msg_signature(
            WX_TOKEN, envelope["TimeStamp"], envelope["Nonce"], envelope["Encrypt"]
        )
        reply = {child.tag: child.text or "" for child in fromstring(crypto.decrypt(envelope["Encrypt"]))}
        assert reply["ToUserName"] == openid and reply["FromUserName"] == "gh_safe" and reply["MsgType"] == "text"
        assert "SF1234567890" in reply["Content"]

        retry = await client.post("/channels/wechat", content=body, params=query)
        assert retry.status_code == 200 and retry.text == "success"  # answered once, in safe mode too


async def test_a_key_without_an_app_id_is_refused_at_start(runtime: Runtime) -> None:
    with pytest.raises(ValueError, match="KEFU_WECHAT_APP_ID"):
        async with channel_runtime(runtime, wechat_token="t", wechat_encoding_aes_key=AES_KEY):
            pass
    with pytest.raises(ValueError, match="43 characters"):
        async with channel_runtime(runtime, wechat_token="t", wechat_app_id="a", wechat_encoding_aes_key="bad"):
            pass
