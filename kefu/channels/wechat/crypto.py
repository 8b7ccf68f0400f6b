"""WeChat's message encryption (公众号 safe mode; WeCom callbacks use the same scheme).

The key is the 43-character ``EncodingAESKey`` plus "=", base64-decoded: 32 bytes, AES-256-CBC with the
key's first 16 bytes as the IV. The plaintext is 16 random bytes, the message length (4 bytes, network
order), the message, then the receiver id (the AppID, or a WeCom CorpID), padded PKCS#7-style to a
multiple of 32 bytes; the ciphertext travels base64-encoded in ``<Encrypt>``. It is signed by
``msg_signature`` = SHA-1 of the sorted [token, timestamp, nonce, ciphertext].
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct
from xml.etree.ElementTree import ParseError

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from defusedxml import ElementTree as SafeElementTree
from defusedxml.common import DefusedXmlException

from kefu.channels.wechat.messages import MalformedMessage

BLOCK = 32  # WeChat pads to 32 bytes, not AES's 16
_KEY = re.compile(r"^[A-Za-z0-9+/]{43}$")
MAX_ENCRYPTED_CHARS = 65536


class DecryptionFailed(ValueError):
    """The ciphertext is not WeChat's, or not for this receiver."""


def msg_signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    return hashlib.sha1("".join(sorted((token, timestamp, nonce, encrypted))).encode()).hexdigest()


class MessageCrypto:
    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        if not _KEY.fullmatch(encoding_aes_key):
            raise ValueError("the EncodingAESKey must be 43 characters of [A-Za-z0-9+/] (as WeChat shows it)")
        self.token = token
        self.receive_id = receive_id
        self._key = base64.b64decode(encoding_aes_key + "=")

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))

    def signature_ok(self, timestamp: str | None, nonce: str | None, encrypted: str, sent: str | None) -> bool:
        if not timestamp or not nonce or not sent:
            return False
        return hmac.compare_digest(msg_signature(self.token, timestamp, nonce, encrypted), sent.lower())

    def decrypt(self, encrypted: str) -> str:
        try:
            data = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DecryptionFailed("the ciphertext is not base64") from exc
        if not data or len(data) % 16:
            raise DecryptionFailed("the ciphertext is not whole AES blocks")
        decryptor = self._cipher().decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise DecryptionFailed("bad padding: wrong EncodingAESKey?")
        plain = plain[:-pad]
        if len(plain) < 20:
            raise DecryptionFailed("the plaintext is too short")
        (length,) = struct.unpack(">I", plain[16:20])
        message, receiver = plain[20 : 20 + length], plain[20 + length :]
        if len(message) != length:
            raise DecryptionFailed("the message length does not match")
        if not hmac.compare_digest(receiver, self.receive_id.encode()):
            raise DecryptionFailed("the message is for another AppID / CorpID")
        try:
            return message.decode()
        except UnicodeDecodeError as exc:
            raise DecryptionFailed("the message is not UTF-8") from exc

    def encrypt(self, message: str, random16: bytes | None = None) -> str:
        body = message.encode()
        plain = (random16 or os.urandom(16)) + struct.pack(">I", len(body)) + body + self.receive_id.encode()
        pad = BLOCK - len(plain) % BLOCK
        plain += bytes([pad]) * pad
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()

    def envelope(self, message: str, timestamp: str, nonce: str) -> str:
        """An encrypted passive reply: ``message`` (the reply XML) sealed and signed."""
        encrypted = self.encrypt(message)
        signature = msg_signature(self.token, timestamp, nonce, encrypted)
        return (
            f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt><MsgSignature><![CDATA[{signature}]]></MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>"
        )


def encrypted_part(body: bytes) -> str:
    """The ``<Encrypt>`` text of a pushed envelope (parsed as safely as a plain message)."""
    try:
        root = SafeElementTree.fromstring(body, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise MalformedMessage(
            f"forbidden XML construct ({type(exc).__name__}): DTDs and entities are refused"
        ) from exc
    except ParseError as exc:
        raise MalformedMessage(f"not well-formed XML: {exc}") from exc
    node = root.find("Encrypt") if root.tag == "xml" else None
    encrypted = (node.text or "").strip() if node is not None else ""
    if not encrypted:
        raise MalformedMessage("an encrypted message needs <xml><Encrypt>...</Encrypt></xml>")
    if len(encrypted) > MAX_ENCRYPTED_CHARS:
        raise MalformedMessage("<Encrypt> is too long")
    return encrypted
