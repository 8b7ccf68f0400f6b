"""Access control over HTTP, on the app in-process: API keys, admin sign-in, roles, CORS, rate limits and
message length (the end-to-end tests cover a real server, the WebSocket and the CLI)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import fastapi.routing
import httpx
import pytest
from fastapi import FastAPI

from kefu.access.accounts import AccessStore
from kefu.access.control import build_access
from kefu.access.passwords import hash_password
from kefu.api import create_app
from kefu.runtime import Runtime
from kefu.store.database import create_engine, migrate
from tests.api.helpers import signed_in_headers

PASSWORD = "管理员的密码 admin-pass"
Served = tuple[httpx.AsyncClient, FastAPI]


@asynccontextmanager
async def serve(runtime: Runtime, tmp: Path, **overrides: Any) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    """The app with these settings; its keys and accounts live in a database of the test's own, so a key
    made here never closes /v1 for other tests sharing the session's runtime."""
    settings = runtime.settings.model_copy(update={"auth_cache_s": 0.0, **overrides})
    app = create_app(settings, runtime)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp / f'access-{uuid.uuid4().hex}.db'}")
    await migrate(engine)
    app.state.access = build_access(settings, engine)
    original = runtime.settings
    runtime.settings = settings
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kefu") as client:
            yield client, app
    finally:
        runtime.settings = original
        await app.state.access.close()
        await engine.dispose()


@pytest.fixture
async def client(runtime: Runtime, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(runtime, tmp_path, api_keys=["secret-1"], cors_origins=["https://shop.example"]) as (c, _):
        yield c


@pytest.fixture
async def open_app(runtime: Runtime, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    async with serve(runtime, tmp_path) as served:
        yield served


def _cid() -> str:
    return f"acc-{uuid.uuid4().hex[:12]}"


async def _login(client: httpx.AsyncClient, app: FastAPI, role: str = "admin") -> tuple[str, httpx.Response]:
    name = f"{role}-{uuid.uuid4().hex[:8]}"
    await AccessStore(app.state.access.store.engine).create_account(name, role, hash_password(PASSWORD))  # type: ignore[arg-type]
    response = await client.post("/auth/login", json={"username": name, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return name, response


async def test_api_key_required(client: httpx.AsyncClient) -> None:
    missing = await client.post("/v1/conversations/k1/messages", json={"text": "hi"})
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "unauthorized"
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = await client.post(
        "/v1/conversations/k1/messages", json={"text": "hi"}, headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401 and wrong.json()["error"]["message"] == "invalid API key"
    ok = await client.post(
        "/v1/conversations/k1/messages", json={"text": "hi"}, headers={"Authorization": "Bearer secret-1"}
    )
    assert ok.status_code == 200
    assert (await client.get("/healthz")).status_code == 200  # operations endpoints stay open


async def test_cors_only_for_configured_origins(client: httpx.AsyncClient) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    allowed = await client.options(
        "/v1/conversations/k1/messages", headers={"Origin": "https://shop.example", **preflight}
    )
    assert allowed.headers.get("access-control-allow-origin") == "https://shop.example"
    assert "access-control-allow-credentials" not in allowed.headers  # the session cookie stays on this site
    refused = await client.options(
        "/v1/conversations/k1/messages", headers={"Origin": "https://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in refused.headers


async def test_a_foreign_origin_gets_no_cors_headers_on_real_requests(client: httpx.AsyncClient) -> None:
    key = {"Authorization": "Bearer secret-1"}
    cid = _cid()
    sent = await client.post(
        f"/v1/conversations/{cid}/messages", json={"text": "hi"}, headers={**key, "Origin": "https://shop.example"}
    )
    assert sent.headers["access-control-allow-origin"] == "https://shop.example"
    assert "retry-after" in sent.headers["access-control-expose-headers"].lower()  # browsers may read it
    foreign = await client.get(f"/v1/conversations/{cid}", headers={**key, "Origin": "https://evil.example"})
    assert foreign.status_code == 200
    # Without Access-Control-Allow-Origin the browser keeps the answer from the other site's script.
    assert not [h for h in foreign.headers if h.startswith("access-control-allow-")]


def _admin_calls(app: FastAPI) -> list[tuple[str, str]]:
    # FastAPI 0.16x keeps included routers as one entry each; iter_route_contexts walks into them.
    walk = getattr(fastapi.routing, "iter_route_contexts", lambda routes: routes)
    calls = []
    for route in walk(app.routes):
        path, methods = getattr(route, "path", None) or "", getattr(route, "methods", None) or set()
        if path.startswith("/admin"):
            concrete = path.replace("{", "").replace("}", "")  # any value: authentication comes first
            calls += [(method, concrete) for method in sorted(methods)]
    return calls


async def test_every_admin_route_refuses_anonymous_and_non_admin_callers(runtime: Runtime, tmp_path: Path) -> None:
    # The demo default (no keys): /v1 is open, /admin never is. A future router cannot forget this: every
    # /admin route the app has is called here.
    async with serve(runtime, tmp_path, api_keys=["channel-key"]) as (client, app):
        calls = _admin_calls(app)
        prefixes = {path.split("/")[2] for _, path in calls}
        assert {"kb", "models", "experiments", "nlu"} <= prefixes and len(calls) >= 12
        agent = await signed_in_headers(app, "agent")
        for method, path in calls:
            anonymous = await client.request(method, path, json={})
            assert anonymous.status_code == 401, (method, path, anonymous.text)
            assert anonymous.json()["error"]["code"] == "unauthorized"
            for headers in ({"Authorization": "Bearer channel-key"}, agent):
                refused = await client.request(method, path, json={}, headers=headers)
                assert refused.status_code == 403, (method, path, refused.text)
                assert refused.json() == {"error": {"code": "forbidden", "message": refused.json()["error"]["message"]}}
            forged = await client.request(method, path, json={}, headers={"Authorization": "Bearer a.b.c"})
            assert forged.status_code == 401


async def test_admin_by_session_cookie_or_admin_key(open_app: Served) -> None:
    client, app = open_app
    assert (await client.post(f"/v1/conversations/{_cid()}/messages", json={"text": "你好"})).status_code == 200
    assert (await client.get("/admin/models")).status_code == 401
    name, login = await _login(client, app)
    body = login.json()
    assert set(body) == {"token", "expires_at", "role"} and body["role"] == "admin"
    cookie = login.headers["set-cookie"].lower()
    assert "kefu_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert "secure" not in cookie  # plain http here; https gets Secure
    by_cookie = await client.get("/admin/models")  # the client kept the cookie
    assert by_cookie.status_code == 200 and "versions" in by_cookie.json()
    me = await client.get("/auth/me")
    assert me.json()["kind"] == "user" and me.json()["name"] == name and me.json()["role"] == "admin"
    client.cookies.clear()
    assert (await client.get("/admin/models")).status_code == 401
    by_header = await client.get("/admin/models", headers={"Authorization": f"Bearer {body['token']}"})
    assert by_header.status_code == 200

    _, admin_key = await AccessStore(app.state.access.store.engine).create_key("ops", "admin")
    keyed = await client.get("/admin/kb/documents", headers={"Authorization": f"Bearer {admin_key}"})
    assert keyed.status_code == 200
    # A key now exists, so /v1 needs one; an admin key may call /v1 too (admin ⊇ agent ⊇ channel).
    assert (await client.post(f"/v1/conversations/{_cid()}/messages", json={"text": "hi"})).status_code == 401
    turn = await client.post(
        f"/v1/conversations/{_cid()}/messages", json={"text": "hi"}, headers={"Authorization": f"Bearer {admin_key}"}
    )
    assert turn.status_code == 200


async def test_a_cookie_does_not_work_from_another_site(open_app: Served) -> None:
    client, app = open_app
    await _login(client, app)
    forged = await client.post("/admin/nlu/reload", headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "cross_origin"
    same_site = await client.post("/admin/nlu/reload", headers={"Origin": "http://kefu"})
    assert same_site.status_code in (200, 409)  # past authentication (409: reloading is off in the tests)
    read = await client.get("/admin/models", headers={"Origin": "https://evil.example"})
    assert read.status_code == 200  # reading is harmless: the browser keeps the answer from the other site


async def test_sign_in_failures_look_alike_and_are_limited(runtime: Runtime, tmp_path: Path) -> None:
    async with serve(runtime, tmp_path, login_attempts=3) as (client, app):
        name, _ = await _login(client, app)  # one try used
        wrong = await client.post("/auth/login", json={"username": name, "password": "not the password"})
        unknown = await client.post("/auth/login", json={"username": "nobody-here", "password": PASSWORD})
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json() == unknown.json() and "用户名或密码错误" in wrong.json()["error"]["message"]
        assert "set-cookie" not in wrong.headers
        await client.post("/auth/login", json={"username": name, "password": "not the password"})
        limited = await client.post("/auth/login", json={"username": name, "password": PASSWORD})
        assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
        assert int(limited.headers["retry-after"]) >= 1 and "登录尝试过多" in limited.json()["error"]["message"]
        for bad in ({}, {"username": "", "password": "x"}, {"username": name, "password": PASSWORD, "x": 1}):
            assert (await client.post("/auth/login", json=bad)).status_code == 422


async def test_sessions_end_on_disable_and_logout_forgets_the_cookie(
    open_app: Served,
) -> None:
    client, app = open_app
    name, login = await _login(client, app, role="agent")
    token = {"Authorization": f"Bearer {login.json()['token']}"}
    assert (await client.get("/auth/me", headers=token)).json()["role"] == "agent"
    assert (await client.get("/admin/models", headers=token)).status_code == 403
    out = await client.post("/auth/logout")
    assert out.status_code == 204 and 'kefu_session=""' in out.headers["set-cookie"]
    assert (await client.get("/auth/me")).status_code == 401  # the cookie is gone
    await app.state.access.store.disable(name)
    refused = await client.get("/auth/me", headers=token)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"


async def test_revoking_the_last_key_opens_v1_again(open_app: Served) -> None:
    client, app = open_app
    store: AccessStore = app.state.access.store
    info, key = await store.create_key("widget", "channel")
    url = f"/v1/conversations/{_cid()}/messages"
    assert (await client.post(url, json={"text": "hi"})).status_code == 401
    assert (await client.post(url, json={"text": "hi"}, headers={"Authorization": f"Bearer {key}"})).status_code == 200
    channel = await client.get("/admin/models", headers={"Authorization": f"Bearer {key}"})
    assert channel.status_code == 403
    await store.revoke_key(info.id)
    assert (await client.post(url, json={"text": "hi"}, headers={"Authorization": f"Bearer {key}"})).status_code == 200
    assert (await client.post(url, json={"text": "hi again"})).status_code == 200


async def test_turns_over_the_user_limit_get_429_and_are_not_stored(runtime: Runtime, tmp_path: Path) -> None:
    async with serve(runtime, tmp_path, rate_user_per_min=1.0, rate_user_burst=2) as (client, _):
        cid = _cid()
        url = f"/v1/conversations/{cid}/messages"
        assert (await client.post(url, json={"text": "你好"})).status_code == 200
        assert (await client.post(url, json={"text": "where is my order 100001"})).status_code == 200
        limited = await client.post(url, json={"text": "还有一个问题", "message_id": "m-limited"})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert (
            limited.json()["error"]["code"] == "rate_limited" and "请求过于频繁" in limited.json()["error"]["message"]
        )
        transcript = (await client.get(f"/v1/conversations/{cid}")).json()["messages"]
        assert [m["text"] for m in transcript if m["role"] == "user"] == ["你好", "where is my order 100001"]
        # The bucket is the user's when a user_id is given: a new user in the same conversation may talk.
        assert (await client.post(url, json={"text": "hi", "user_id": "u-2"})).status_code == 200
        streamed = await client.post(url, json={"text": "again"}, headers={"Accept": "text/event-stream"})
        assert streamed.status_code == 429  # refused before the stream opens

        user, history = _cid(), [{"role": "user", "content": "hi"}]
        chat = {"model": "kefu", "user": user, "messages": history}
        assert (await client.post("/v1/chat/completions", json=chat)).status_code == 200
        history += [{"role": "assistant", "content": "hello"}, {"role": "user", "content": "more"}]
        assert (await client.post("/v1/chat/completions", json=chat)).status_code == 200
        history += [{"role": "assistant", "content": "ok"}, {"role": "user", "content": "again"}]
        over = await client.post("/v1/chat/completions", json=chat)
        assert over.status_code == 429 and over.json()["error"]["code"] == "rate_limited"
        stored = (await client.get(f"/v1/conversations/{user}")).json()["messages"]
        assert len([m for m in stored if m["role"] == "user"]) == 2


async def test_requests_over_the_key_limit_get_429(runtime: Runtime, tmp_path: Path) -> None:
    async with serve(runtime, tmp_path, api_keys=["k-a", "k-b"], rate_key_per_s=0.5, rate_key_burst=3) as (c, _):
        a, b = {"Authorization": "Bearer k-a"}, {"Authorization": "Bearer k-b"}
        cid = _cid()
        assert (await c.post(f"/v1/conversations/{cid}/messages", json={"text": "hi"}, headers=a)).status_code == 200
        assert (await c.get(f"/v1/conversations/{cid}", headers=a)).status_code == 200
        assert (await c.get(f"/v1/conversations/{cid}", headers=a)).status_code == 200
        over = await c.get(f"/v1/conversations/{cid}", headers=a)
        assert over.status_code == 429 and over.headers["retry-after"] == "2"
        assert (await c.get(f"/v1/conversations/{cid}", headers=b)).status_code == 200  # each key its own bucket
        assert (await c.get("/healthz")).status_code == 200


async def test_limits_are_off_by_default(open_app: Served) -> None:
    client, _ = open_app
    cid = _cid()
    for i in range(30):
        sent = await client.post(f"/v1/conversations/{cid}/messages", json={"text": f"运费怎么算？{i}"})
        assert sent.status_code == 200


async def test_message_length_is_enforced_on_every_http_channel(runtime: Runtime, tmp_path: Path) -> None:
    async with serve(runtime, tmp_path, max_text_chars=50) as (client, _):
        cid = _cid()
        for text in ("长" * 51, "x" * 51):
            too_long = await client.post(f"/v1/conversations/{cid}/messages", json={"text": text})
            assert too_long.status_code == 422 and too_long.json()["error"]["code"] == "text_too_long"
            chat = {"model": "kefu", "user": cid, "messages": [{"role": "user", "content": text}]}
            refused = await client.post("/v1/chat/completions", json=chat)
            assert refused.status_code == 422 and refused.json()["error"]["code"] == "text_too_long"
        assert (await client.get(f"/v1/conversations/{cid}")).status_code == 404  # nothing stored
        assert (await client.post(f"/v1/conversations/{cid}/messages", json={"text": "长" * 50})).status_code == 200
