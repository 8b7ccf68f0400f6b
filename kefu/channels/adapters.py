"""The external channel adapters a runtime serves (signed webhook, WeChat, WeCom), built once from the settings.

Each adapter is on only when its settings are: the webhook with ``KEFU_WEBHOOK_SECRET``, WeChat with
``KEFU_WECHAT_TOKEN`` (and ``KEFU_WECHAT_APP_ID`` / ``KEFU_WECHAT_APP_SECRET`` for answers sent later),
WeCom with ``KEFU_WECOM_TOKEN`` (plus its key, CorpID, and AgentId / Secret for answers sent later).
Their deliveries are registered on the runtime's ``Outbox``, so an agent's reply reaches the customer on
the channel the conversation came from.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kefu.channels.base import Outbox
from kefu.channels.once import OnceStore, build_once_store
from kefu.channels.signing import SignedRequests
from kefu.channels.webhook import CHANNEL as WEBHOOK_CHANNEL
from kefu.channels.webhook import WebhookCallback
from kefu.channels.wechat.account import CHANNEL as WECHAT_CHANNEL
from kefu.channels.wechat.account import TurnHandler, WeChatAccount
from kefu.channels.wechat.api import WeChatApi
from kefu.channels.wechat.crypto import MessageCrypto
from kefu.channels.wecom import CHANNEL as WECOM_CHANNEL
from kefu.channels.wecom import build_wecom
from kefu.config import Settings

log = logging.getLogger(__name__)


@dataclass
class ChannelAdapters:
    claims: OnceStore  # replayed webhook requests, delivered WeChat answers (Redis when configured)
    webhook: SignedRequests | None = None
    callback: WebhookCallback | None = None
    wechat: WeChatAccount | None = None
    wecom: WeChatAccount | None = None

    async def close(self) -> None:
        for account in (self.wechat, self.wecom):
            if account is not None:
                await account.close()
        if self.callback is not None:
            await self.callback.close()
        await self.claims.close()


def build_channel_adapters(settings: Settings, turns: TurnHandler, outbox: Outbox) -> ChannelAdapters:
    adapters = ChannelAdapters(claims=build_once_store(settings.redis_url))
    if settings.webhook_secret:
        adapters.webhook = SignedRequests(settings.webhook_secret, settings.webhook_tolerance_s, adapters.claims)
        if settings.webhook_callback_url:
            adapters.callback = WebhookCallback(settings.webhook_callback_url, settings.webhook_secret)
            outbox.register(WEBHOOK_CHANNEL, adapters.callback)
    if settings.wechat_token:
        api = None
        if settings.wechat_app_id and settings.wechat_app_secret:
            api = WeChatApi(settings.wechat_api_base, settings.wechat_app_id, settings.wechat_app_secret)
        else:
            log.warning(
                "WeChat answers slower than the reply window and agents' replies cannot be sent: "
                "set KEFU_WECHAT_APP_ID and KEFU_WECHAT_APP_SECRET"
            )
        crypto = None
        if settings.wechat_encoding_aes_key:
            if not settings.wechat_app_id:
                raise ValueError("KEFU_WECHAT_ENCODING_AES_KEY needs KEFU_WECHAT_APP_ID (encrypted messages name it)")
            try:
                crypto = MessageCrypto(settings.wechat_token, settings.wechat_encoding_aes_key, settings.wechat_app_id)
            except ValueError as exc:
                raise ValueError(f"KEFU_WECHAT_ENCODING_AES_KEY: {exc}") from exc
        adapters.wechat = WeChatAccount(
            turns, adapters.claims, api, window_s=settings.wechat_reply_window_s, crypto=crypto
        )
        outbox.register(WECHAT_CHANNEL, adapters.wechat)
    adapters.wecom = build_wecom(settings, turns, adapters.claims)
    if adapters.wecom is not None:
        outbox.register(WECOM_CHANNEL, adapters.wecom)
    return adapters
