"""WeChat Official Account (公众号): signed pushes in, passive XML or customer-service API replies out."""

from kefu.channels.wechat.account import CHANNEL, WeChatAccount, conversation_id
from kefu.channels.wechat.api import WeChatApi, WeChatApiError
from kefu.channels.wechat.messages import MalformedMessage, WeChatMessage, parse_message, text_reply
from kefu.channels.wechat.signature import signature, signature_ok

__all__ = [
    "CHANNEL",
    "MalformedMessage",
    "WeChatAccount",
    "WeChatApi",
    "WeChatApiError",
    "WeChatMessage",
    "conversation_id",
    "parse_message",
    "signature",
    "signature_ok",
    "text_reply",
]
