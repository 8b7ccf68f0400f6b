"""``/channels/wecom``: the callback URL of a WeCom (企业微信) self-built app.

``GET`` is WeCom's URL check: ``msg_signature`` over the encrypted ``echostr`` right -> the decrypted
``echostr``; wrong -> 403. ``POST`` carries an encrypted message (``msg_signature``, ``timestamp``, ``nonce``):
a member's text runs a turn in conversation ``wecom:<UserID>`` as message ``wecom-<MsgId>``, answered by an
encrypted passive reply within ``KEFU_WECHAT_REPLY_WINDOW_S`` or later through the app's message API,
exactly once however often WeCom retries (the same logic as the Official Account, with Kafka too: the
message is published and its worker's answer awaited within the window). Off (404) while
``KEFU_WECOM_TOKEN`` is unset.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from kefu.api.deps import RuntimeDep
from kefu.api.errors import ApiError
from kefu.api.routers.channel_wechat import Signed, answer, decrypted, respond
from kefu.channels.wechat import MalformedMessage, WeChatAccount, parse_message
from kefu.channels.wechat.crypto import DecryptionFailed, MessageCrypto
from kefu.channels.wecom import USER_ID, conversation_id
from kefu.runtime import Runtime

router = APIRouter(prefix="/channels", tags=["channels"])


def _app(runtime: Runtime) -> tuple[WeChatAccount, MessageCrypto]:
    account = runtime.channels.wecom if runtime.channels is not None else None
    if account is None or account.crypto is None:
        raise ApiError(404, "channel_disabled", "the WeCom channel is off: set KEFU_WECOM_TOKEN / 企业微信通道未启用")
    return account, account.crypto


@router.get("/wecom", response_class=PlainTextResponse)
async def verify_url(
    runtime: RuntimeDep,
    msg_signature: Signed = None,
    timestamp: Signed = None,
    nonce: Signed = None,
    echostr: Signed = None,
) -> PlainTextResponse:
    """WeCom's URL check: the encrypted ``echostr``, decrypted, when its signature is right."""
    _account, crypto = _app(runtime)
    if not echostr or not crypto.signature_ok(timestamp, nonce, echostr, msg_signature):
        raise ApiError(403, "invalid_signature", "the msg_signature does not match / 消息签名校验失败")
    try:
        return PlainTextResponse(crypto.decrypt(echostr))
    except DecryptionFailed as exc:
        raise ApiError(400, "undecryptable", f"echostr cannot be decrypted: {exc} / echostr 无法解密") from exc


@router.post("/wecom", response_class=PlainTextResponse)
async def receive(
    request: Request,
    runtime: RuntimeDep,
    msg_signature: Signed = None,
    timestamp: Signed = None,
    nonce: Signed = None,
) -> Response:
    """An encrypted message WeCom pushes; the answer is an encrypted passive reply or ``success``."""
    account, crypto = _app(runtime)
    try:
        wx = parse_message(decrypted(crypto, await request.body(), timestamp, nonce, msg_signature), USER_ID)
    except MalformedMessage as exc:
        raise ApiError(400, "malformed_xml", f"not a WeCom message: {exc} / 无法解析的企业微信消息") from exc
    reply = await answer(runtime, account, wx, conversation_id(wx.from_user), f"wecom-{wx.key}")
    return respond(wx, reply, crypto)
