"""The channels on a real ``kefu serve`` process configured through the environment: a signed webhook
message, a WeChat push with its passive reply, and a phone utterance, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from xml.etree.ElementTree import fromstring

import httpx
import pytest

from kefu.channels.signing import signed_headers
from kefu.channels.wechat import signature
from tests.e2e.conftest import start_server, stop_server

pytestmark = pytest.mark.e2e
SECRET, TOKEN = "server-webhook-secret", "server-wechat-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data: Path = tmp_path_factory.mktemp("channels-server")
    process, base = start_server(data, KEFU_WEBHOOK_SECRET=SECRET, KEFU_WECHAT_TOKEN=TOKEN, KEFU_API_KEYS="k-1")
    try:
        yield base
    finally:
        stop_server(process)


def test_webhook_wechat_and_voice_on_a_server_process(server: str) -> None:
    with httpx.Client(base_url=server, timeout=30) as client:
        cid = f"srv-{uuid.uuid4().hex[:8]}"
        body = json.dumps({"conversation_id": cid, "message_id": "m1", "text": "where is order 100001?"}).encode()
        headers = {"Content-Type": "application/json", **signed_headers(SECRET, body)}
        turn = client.post("/channels/webhook", content=body, headers=headers)
        assert turn.status_code == 200 and "SF1234567890" in turn.json()["reply"]["text"]
        assert client.post("/channels/webhook", content=body, headers=headers).status_code == 409

        openid = "o" + uuid.uuid4().hex[:27]
        timestamp, nonce = str(int(time.time())), "n1"
        query = {"signature": signature(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
        assert client.get("/channels/wechat", params={**query, "echostr": "42"}).text == "42"
        xml = (
            f"<xml><ToUserName>gh_srv</ToUserName><FromUserName>{openid}</FromUserName><CreateTime>{timestamp}"
            "</CreateTime><MsgType>text</MsgType><Content>订单100003能取消吗</Content><MsgId>77</MsgId></xml>"
        )
        pushed = client.post("/channels/wechat", content=xml.encode(), params=query)
        fields = {child.tag: child.text for child in fromstring(pushed.text)}
        assert fields["ToUserName"] == openid and "100003" in (fields["Content"] or "")
        assert client.post("/channels/wechat", content=xml.encode(), params=query).text == "success"

        utterance = {"call_id": "c1", "utterance_id": "u1", "transcript": "转人工", "confidence": 0.9}
        assert client.post("/channels/voice", json=utterance).status_code == 401  # the /v1 API key is required
        spoken = client.post("/channels/voice", json=utterance, headers={"Authorization": "Bearer k-1"})
        assert spoken.status_code == 200 and spoken.json()["transfer"] is True
