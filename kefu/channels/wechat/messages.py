"""WeChat's XML messages: a pushed message parsed safely, and the passive text reply.

Parsing goes through ``defusedxml`` with DTDs forbidden: WeChat never sends one, so an entity expansion
("billion laughs"), an external entity or any DTD is refused as malformed before it costs anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError

from defusedxml import ElementTree as SafeElementTree
from defusedxml.common import DefusedXmlException

OPENID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ACCOUNT = re.compile(r"^[A-Za-z0-9_@.-]{1,64}$")  # the account's own id, e.g. gh_1234567890ab
_MSG_ID = re.compile(r"^[0-9]{1,24}$")
_FIELD_CHARS = 8192  # WeChat's text messages are far shorter; anything longer is not from WeChat
# Characters XML 1.0 cannot carry at all (a reply must still parse on WeChat's side).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class MalformedMessage(ValueError):
    """The body is not a WeChat message kefu can read."""


@dataclass(frozen=True, slots=True)
class WeChatMessage:
    to_user: str  # the Official Account's id
    from_user: str  # the customer's OpenID
    create_time: int
    msg_type: str  # text, image, voice, video, shortvideo, location, link, event
    content: str = ""
    msg_id: str | None = None
    event: str = ""  # subscribe, unsubscribe, CLICK, SCAN... for msg_type "event"
    recognition: str = ""  # speech recognised by WeChat in a voice message, when the account enabled it

    @property
    def key(self) -> str:
        """What WeChat's retries of this message share: MsgId, or sender + time for an event."""
        if self.msg_id:
            return self.msg_id
        return f"{self.from_user}:{self.create_time}:{self.event or self.msg_type}"

    @property
    def text(self) -> str | None:
        """The customer's words, when the message has any (a voice message counts by its recognition)."""
        if self.msg_type == "text":
            return self.content
        if self.msg_type == "voice" and self.recognition.strip():
            return self.recognition
        return None


def _field(root: Element, name: str) -> str:
    node = root.find(name)
    value = (node.text or "") if node is not None else ""
    if len(value) > _FIELD_CHARS:
        raise MalformedMessage(f"<{name}> is longer than {_FIELD_CHARS} characters")
    return value


def parse_message(body: bytes, sender: re.Pattern[str] = OPENID) -> WeChatMessage:
    """``sender`` is the shape of ``FromUserName``: an OpenID, or a WeCom UserID."""
    if not body.strip():
        raise MalformedMessage("the body is empty; WeChat pushes an XML message")
    try:
        root = SafeElementTree.fromstring(body, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise MalformedMessage(
            f"forbidden XML construct ({type(exc).__name__}): DTDs and entities are refused"
        ) from exc
    except ParseError as exc:
        raise MalformedMessage(f"not well-formed XML: {exc}") from exc
    if root.tag != "xml":
        raise MalformedMessage(f"the root element must be <xml>, not <{root.tag}>")
    to_user, from_user = _field(root, "ToUserName").strip(), _field(root, "FromUserName").strip()
    msg_type, created = _field(root, "MsgType").strip().lower(), _field(root, "CreateTime").strip()
    missing = [n for n, v in (("ToUserName", to_user), ("FromUserName", from_user), ("MsgType", msg_type)) if not v]
    if missing:
        raise MalformedMessage("missing " + ", ".join(f"<{n}>" for n in missing))
    if not sender.fullmatch(from_user):
        raise MalformedMessage("<FromUserName> is not an OpenID / UserID")
    if not _ACCOUNT.fullmatch(to_user):
        raise MalformedMessage("<ToUserName> is not an account id")
    if not created.isdigit() or len(created) > 12:
        raise MalformedMessage("<CreateTime> must be unix seconds")
    msg_id = _field(root, "MsgId").strip() or None
    if msg_id is not None and not _MSG_ID.fullmatch(msg_id):
        raise MalformedMessage("<MsgId> must be a 64-bit integer")
    return WeChatMessage(
        to_user=to_user,
        from_user=from_user,
        create_time=int(created),
        msg_type=msg_type,
        content=_field(root, "Content"),
        msg_id=msg_id,
        event=_field(root, "Event").strip(),
        recognition=_field(root, "Recognition"),
    )


def _cdata(text: str) -> str:
    # "]]>" cannot appear inside a CDATA section: close it and open a new one around the ">".
    return "<![CDATA[" + _NOT_XML.sub("", text).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text_reply(message: WeChatMessage, content: str, now: int) -> str:
    """The passive reply to ``message``: sent back on the same request, from the account to the customer."""
    return (
        "<xml>"
        f"<ToUserName>{_cdata(message.from_user)}</ToUserName>"
        f"<FromUserName>{_cdata(message.to_user)}</FromUserName>"
        f"<CreateTime>{now}</CreateTime>"
        "<MsgType><![CDATA[text]]></MsgType>"
        f"<Content>{_cdata(content)}</Content>"
        "</xml>"
    )
