"""WeCom (企业微信) self-built app: the same push-and-answer protocol as an Official Account, always encrypted.

A member's message reaches the app's callback URL as an encrypted ``<xml><Encrypt>`` (``msg_signature``,
``timestamp``, ``nonce`` in the query; the CorpID is the receiver id); the URL check sends an encrypted
``echostr`` that is answered decrypted. Answers go back passively (encrypted) within the window, or later
through ``/cgi-bin/message/send`` with the app's ``agentid``. ``WeChatAccount`` does the rest, unchanged.
"""

from __future__ import annotations

import hashlib
import re

from kefu.channels.once import OnceStore
from kefu.channels.wechat.account import TurnHandler, WeChatAccount
from kefu.channels.wechat.api import WeChatApi
from kefu.channels.wechat.crypto import MessageCrypto
from kefu.config import Settings

CHANNEL = "wecom"
CONVERSATION_PREFIX = "wecom:"
# A member's UserID: 1-64 bytes of letters, digits and "_-@." (WeCom's rule).
USER_ID = re.compile(r"^[A-Za-z0-9_@.-]{1,64}$")
_PLAIN_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def conversation_id(user_id: str) -> str:
    """``wecom:<UserID>``; a UserID with "@" (not allowed in conversation ids) is replaced by its hash."""
    if _PLAIN_ID.fullmatch(user_id):
        return CONVERSATION_PREFIX + user_id
    return CONVERSATION_PREFIX + "h-" + hashlib.sha256(user_id.encode()).hexdigest()[:32]


def build_wecom(settings: Settings, turns: TurnHandler, claims: OnceStore) -> WeChatAccount | None:
    """The app's account, or None while the callback is not configured."""
    if not settings.wecom_token:
        return None
    missing = [
        name
        for name, value in (
            ("KEFU_WECOM_ENCODING_AES_KEY", settings.wecom_encoding_aes_key),
            ("KEFU_WECOM_CORP_ID", settings.wecom_corp_id),
        )
        if not value
    ]
    if missing:
        raise ValueError("KEFU_WECOM_TOKEN needs " + " and ".join(missing))
    try:
        crypto = MessageCrypto(settings.wecom_token, settings.wecom_encoding_aes_key, settings.wecom_corp_id)
    except ValueError as exc:
        raise ValueError(f"KEFU_WECOM_ENCODING_AES_KEY: {exc}") from exc
    api = None
    if settings.wecom_secret and settings.wecom_agent_id:
        api = WeChatApi.wecom(
            settings.wecom_api_base, settings.wecom_corp_id, settings.wecom_secret, settings.wecom_agent_id
        )
    return WeChatAccount(
        turns,
        claims,
        api,
        window_s=settings.wechat_reply_window_s,
        crypto=crypto,
        channel=CHANNEL,
        conversation_prefix=CONVERSATION_PREFIX,
    )
