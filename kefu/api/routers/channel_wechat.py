"""``/channels/wechat``: the server URL of a WeChat Official Account (公众号), plaintext or safe mode.

``GET`` is WeChat's URL check: ``signature`` (SHA-1 of the sorted token, ``timestamp`` and ``nonce``) right
-> ``echostr`` echoed, wrong -> 403. ``POST`` carries a pushed message, signed the same way in the query
string. A text message (or a voice message WeChat transcribed) runs a turn in conversation ``wx:<OpenID>``
as message ``wx-<MsgId>``: a passive XML reply when the answer is ready within
``KEFU_WECHAT_REPLY_WINDOW_S``, else ``success`` and the answer through the customer-service API (see
``kefu.channels.wechat.account`` for retries). A subscribe event gets the welcome, an image or a voice note
without transcription a polite zh/en note, other events ``success``. A message that is not signed is 403,
malformed XML (a DTD or entity included) 400, a body over ``KEFU_MAX_BODY_BYTES`` 413; off (404) while
``KEFU_WECHAT_TOKEN`` is unset. Safe mode (``encrypt_type=aes``, with ``KEFU_WECHAT_ENCODING_AES_KEY``):
``msg_signature`` checked (403), ``<Encrypt>`` decrypted for this AppID (400 otherwise), and the passive
reply encrypted and signed the same way; compatible mode works either way.

With Kafka (``KEFU_KAFKA_BOOTSTRAP``) a text message is published to ``kefu.inbound`` instead of run here
and its answer, written by a ``kefu worker``, is awaited within the same window (``answer_queued``); a
broker that does not take the message is 503 ``queue_unavailable`` (WeChat pushes it again).
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response

from kefu.api.deps import RuntimeDep
from kefu.api.errors import ApiError
from kefu.api.schemas import MessageIn
from kefu.api.turns import inbound
from kefu.channels.kafka.connect import BrokerUnavailable
from kefu.channels.wechat import (
    MalformedMessage,
    WeChatAccount,
    WeChatMessage,
    conversation_id,
    parse_message,
    text_reply,
)
from kefu.channels.wechat.account import TEXT_ONLY, TOO_LONG
from kefu.channels.wechat.crypto import DecryptionFailed, MessageCrypto, encrypted_part
from kefu.channels.wechat.signature import signature_ok
from kefu.runtime import Runtime

router = APIRouter(prefix="/channels", tags=["channels"])

SUCCESS = "success"  # tells WeChat the message is taken and no passive reply follows
_ECHOSTR = re.compile(r"^[A-Za-z0-9+/=._~-]{1,512}$")
Signed = Annotated[str | None, Query(max_length=128)]
FALLBACK_WELCOME = "您好，欢迎关注！请问有什么可以帮您？\nHello and welcome! How can I help you?"


def _account(runtime: Runtime) -> WeChatAccount:
    account = runtime.channels.wechat if runtime.channels is not None else None
    if account is None:
        raise ApiError(
            404, "channel_disabled", "the WeChat channel is off: set KEFU_WECHAT_TOKEN / 微信公众号通道未启用"
        )
    return account


def _check(runtime: Runtime, signature: str | None, timestamp: str | None, nonce: str | None) -> None:
    if not signature_ok(runtime.settings.wechat_token, timestamp, nonce, signature):
        raise ApiError(403, "invalid_signature", "the WeChat signature does not match / 微信签名校验失败")


@router.get("/wechat", response_class=PlainTextResponse)
async def verify_url(
    runtime: RuntimeDep,
    signature: Signed = None,
    timestamp: Signed = None,
    nonce: Signed = None,
    echostr: Signed = None,
) -> PlainTextResponse:
    """WeChat's server URL check: echo ``echostr`` when the signature is right."""
    _account(runtime)
    _check(runtime, signature, timestamp, nonce)
    if echostr is None or not _ECHOSTR.fullmatch(echostr):
        raise ApiError(400, "invalid_echostr", "echostr is missing or not a WeChat echo string / echostr 无效")
    return PlainTextResponse(echostr)


def _welcome(runtime: Runtime) -> str:
    try:
        return runtime.responder.text("greeting", runtime.settings.default_locale)
    except KeyError:  # a pack without a greeting template
        return FALLBACK_WELCOME


@router.post("/wechat", response_class=PlainTextResponse)
async def receive(
    request: Request,
    runtime: RuntimeDep,
    signature: Signed = None,
    timestamp: Signed = None,
    nonce: Signed = None,
    encrypt_type: Signed = None,
    msg_signature: Signed = None,
) -> Response:
    """A message WeChat pushes; the answer is a passive XML reply or ``success``."""
    account = _account(runtime)
    _check(runtime, signature, timestamp, nonce)
    if encrypt_type not in (None, "", "raw", "aes"):
        raise ApiError(400, "encryption_unsupported", f"unknown encrypt_type {encrypt_type!r} / 不支持的加密方式")
    crypto = account.crypto if encrypt_type == "aes" else None
    if encrypt_type == "aes" and crypto is None:
        raise ApiError(
            400,
            "encryption_unconfigured",
            "encrypted (safe-mode) messages need KEFU_WECHAT_ENCODING_AES_KEY and KEFU_WECHAT_APP_ID"
            " / 安全模式需要配置 EncodingAESKey",
        )
    body = await request.body()
    try:
        if crypto is not None:
            body = decrypted(crypto, body, timestamp, nonce, msg_signature)
        wx = parse_message(body)
    except MalformedMessage as exc:
        raise ApiError(400, "malformed_xml", f"not a WeChat message: {exc} / 无法解析的微信消息") from exc
    reply = await answer(runtime, account, wx, conversation_id(wx.from_user), f"wx-{wx.key}")
    return respond(wx, reply, crypto)


async def answer(
    runtime: Runtime, account: WeChatAccount, wx: WeChatMessage, conversation: str, mid: str
) -> str | None:
    """What to say to a pushed message (None: nothing, answer ``success``). Shared with WeCom."""
    text = wx.text
    if text is not None:
        said = MessageIn(text=text, user_id=wx.from_user, channel=account.channel, message_id=mid)
        try:
            message = inbound(said, conversation, runtime.settings)
        except ApiError as exc:  # empty or too long: the customer is told, WeChat gets its answer
            return await account.answer_once(wx, TOO_LONG if exc.code == "text_too_long" else TEXT_ONLY)
        if runtime.kafka is not None:
            try:
                return await account.answer_queued(message, runtime.kafka, runtime.outbox.hub)
            except (BrokerUnavailable, TimeoutError) as exc:
                raise queue_unavailable(exc) from exc
        return await account.answer_turn(wx, message)
    if wx.msg_type == "event":
        # A new follower (also by scanning a QR code) gets the welcome; menu clicks and the like need none.
        return await account.answer_once(wx, _welcome(runtime)) if wx.event.lower() == "subscribe" else None
    return await account.answer_once(wx, TEXT_ONLY)  # image, voice without transcription, video, location...


def queue_unavailable(exc: Exception) -> ApiError:
    reason = str(exc) or "it did not answer in time"
    return ApiError(
        503,
        "queue_unavailable",
        f"the message queue did not take the message, send it again: {reason} / 消息队列暂不可用，请重试",
        {"Retry-After": "1"},
    )


def respond(wx: WeChatMessage, reply: str | None, crypto: MessageCrypto | None) -> Response:
    if not reply:
        return PlainTextResponse(SUCCESS)  # plain even in safe mode, as WeChat documents
    now = int(time.time())
    xml = text_reply(wx, reply, now)
    if crypto is not None:
        xml = crypto.envelope(xml, str(now), secrets.token_hex(8))
    return Response(xml, media_type="application/xml")


def decrypted(crypto: MessageCrypto, body: bytes, timestamp: str | None, nonce: str | None, sent: str | None) -> bytes:
    """The plaintext XML of an encrypted push, after its ``msg_signature`` is checked."""
    sealed = encrypted_part(body)
    if not crypto.signature_ok(timestamp, nonce, sealed, sent):
        raise ApiError(403, "invalid_signature", "the msg_signature does not match / 消息签名校验失败")
    try:
        return crypto.decrypt(sealed).encode()
    except DecryptionFailed as exc:
        raise ApiError(400, "undecryptable", f"the message cannot be decrypted: {exc} / 消息无法解密") from exc
