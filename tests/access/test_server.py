"""Access control on a real server: keys and accounts made with the CLI reach it without a restart, and a
WebSocket turn over the rate limit gets an error frame while the socket stays open."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.cli.test_cli import kefu
from tests.conftest import MODEL_CACHE
from tests.e2e.conftest import start_server, stop_server

pytestmark = pytest.mark.e2e
CACHE_S = 0.3
PASSWORD = "坐席密码 agent password"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    data = tmp_path_factory.mktemp("access-server")
    limits = {"KEFU_RATE_USER_PER_MIN": "1", "KEFU_RATE_USER_BURST": "2", "KEFU_MAX_TEXT_CHARS": "50"}
    process, base = start_server(data, KEFU_AUTH_CACHE_S=str(CACHE_S), **limits)
    try:
        yield base, {"KEFU_DATA_DIR": str(data), "KEFU_MODEL_CACHE_DIR": str(MODEL_CACHE)}
    finally:
        stop_server(process)


def eventually(check: Callable[[], bool], within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, "the server did not see the change in time"
        time.sleep(0.05)


async def _socket_turns(url: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    async with websockets.connect(url) as socket:
        frames = []
        for message in messages:
            await socket.send(json.dumps(message, ensure_ascii=False))
            frames.append(json.loads(await socket.recv()))
        return frames


def test_a_socket_turn_over_the_limit_gets_an_error_frame_and_the_socket_stays_open(
    served: tuple[str, dict[str, str]],
) -> None:
    base, _ = served
    cid = f"ws-{uuid.uuid4().hex[:10]}"
    url = base.replace("http://", "ws://") + f"/v1/ws/{cid}"
    frames = asyncio.run(
        _socket_turns(
            url,
            [
                {"text": "你好"},
                {"text": "长" * 51},  # over KEFU_MAX_TEXT_CHARS: refused, and no turn is spent
                {"text": "where is my order 100001"},
                {"text": "还在吗？"},  # the third turn within the minute
                {"text": "hello", "user_id": "someone-else"},
            ],
        )
    )
    first, too_long, second, limited, other = frames
    assert first["intent"]["name"] == "greeting" and "SF1234567890" in second["reply"]["text"]
    assert too_long["error"]["code"] == "text_too_long"
    assert limited["error"]["code"] == "rate_limited" and limited["error"]["retry_after"] >= 1
    assert "请求过于频繁" in limited["error"]["message"]
    assert other["conversation_id"] == cid  # same socket, another user's bucket
    stored = httpx.get(f"{base}/v1/conversations/{cid}").json()["messages"]
    assert [m["text"] for m in stored if m["role"] == "user"] == ["你好", "where is my order 100001", "hello"]


def test_keys_made_and_revoked_with_the_cli_reach_the_running_server(served: tuple[str, dict[str, str]]) -> None:
    base, env = served
    url = f"{base}/v1/conversations/{uuid.uuid4().hex}"
    assert httpx.get(url).status_code == 404  # open: the demo default

    made = kefu("keys", "create", "--name", "微信 bridge", env=env)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("kefu_") and "shown once" in made.stderr
    key_id = key.split("_")[1]
    listed = kefu("keys", "list", "--json", env=env)
    rows = json.loads(listed.stdout)
    assert [(r["id"], r["name"], r["role"]) for r in rows] == [(key_id, "微信 bridge", "channel")]
    assert key[14:] not in listed.stdout  # the secret is never shown again

    eventually(lambda: httpx.get(url).status_code == 401)
    auth = {"Authorization": f"Bearer {key}"}
    assert httpx.get(url, headers=auth).status_code == 404  # past authentication
    assert httpx.get(f"{base}/admin/models", headers=auth).status_code == 403
    socket_url = base.replace("http://", "ws://") + f"/v1/ws/{uuid.uuid4().hex}"

    async def refused_then_accepted() -> dict[str, Any]:
        with pytest.raises(websockets.exceptions.InvalidStatus):
            async with websockets.connect(socket_url):
                pass
        async with websockets.connect(f"{socket_url}?api_key={key}") as socket:
            await socket.send(json.dumps({"text": "hi"}))
            frame: dict[str, Any] = json.loads(await socket.recv())
            return frame

    assert asyncio.run(refused_then_accepted())["intent"]["name"] == "greeting"
    used = json.loads(kefu("keys", "list", "--json", env=env).stdout)[0]
    assert used["last_used_at"] is not None

    spare = kefu("keys", "create", "--name", "spare", "--role", "agent", env=env).stdout.strip()
    revoked = kefu("keys", "revoke", key_id, env=env)
    assert revoked.returncode == 0 and key_id in revoked.stdout
    eventually(lambda: httpx.get(url, headers=auth).status_code == 401)
    assert httpx.get(url, headers={"Authorization": f"Bearer {spare}"}).status_code == 404
    assert kefu("keys", "revoke", spare.split("_")[1], env=env).returncode == 0
    eventually(lambda: httpx.get(url).status_code == 404)  # no live key left: open again
    assert kefu("keys", "revoke", "nokey999", env=env).returncode == 1
    assert kefu("keys", "create", "--name", "x", "--role", "root", env=env).returncode == 2


def test_accounts_made_with_the_cli_sign_in_and_lose_access_when_disabled(served: tuple[str, dict[str, str]]) -> None:
    base, env = served
    short = kefu("user", "add", "ops-lead", "--role", "admin", "--password-stdin", stdin="short\n", env=env)
    assert short.returncode == 2 and "至少需要 10" in short.stderr
    added = kefu("user", "add", "Ops-Lead", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n", env=env)
    assert added.returncode == 0 and "ops-lead" in added.stdout, added.stderr
    again = kefu("user", "add", "ops-lead", "--role", "agent", "--password-stdin", stdin=PASSWORD + "\n", env=env)
    assert again.returncode == 2 and "exists" in again.stderr
    no_tty = kefu("user", "add", "x-agent", "--role", "agent", stdin="", env=env)
    assert no_tty.returncode == 2 and "--password-stdin" in no_tty.stderr

    login = httpx.post(f"{base}/auth/login", json={"username": "OPS-LEAD", "password": PASSWORD})
    assert login.status_code == 200 and login.json()["role"] == "admin"
    token = {"Authorization": f"Bearer {login.json()['token']}"}
    assert httpx.get(f"{base}/admin/models", headers=token).status_code == 200
    listed = json.loads(kefu("user", "list", "--json", env=env).stdout)
    assert [(a["username"], a["role"]) for a in listed] == [("ops-lead", "admin")]
    assert listed[0]["last_login_at"] is not None and "scrypt" not in json.dumps(listed)

    changed = kefu("user", "passwd", "ops-lead", "--password-stdin", stdin="一个全新的密码 new pass\n", env=env)
    assert changed.returncode == 0, changed.stderr
    eventually(lambda: httpx.get(f"{base}/admin/models", headers=token).status_code == 401)
    fresh = httpx.post(f"{base}/auth/login", json={"username": "ops-lead", "password": "一个全新的密码 new pass"})
    token = {"Authorization": f"Bearer {fresh.json()['token']}"}
    assert httpx.get(f"{base}/auth/me", headers=token).json()["name"] == "ops-lead"

    assert kefu("user", "disable", "ops-lead", env=env).returncode == 0
    eventually(lambda: httpx.get(f"{base}/admin/models", headers=token).status_code == 401)
    refused = httpx.post(f"{base}/auth/login", json={"username": "ops-lead", "password": "一个全新的密码 new pass"})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_credentials"
    assert kefu("user", "disable", "nobody", env=env).returncode == 2


def test_the_secret_is_kept_private_in_the_data_folder(served: tuple[str, dict[str, str]]) -> None:
    secret = Path(served[1]["KEFU_DATA_DIR"]) / "secret.key"
    assert secret.stat().st_mode & 0o777 == 0o600 and len(secret.read_text().strip()) == 64
