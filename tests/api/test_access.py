"""API keys and CORS, on the app in-process (the end-to-end tests cover the rest over a socket)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from kefu.api import create_app
from kefu.runtime import Runtime

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    settings = runtime.settings.model_copy(update={"api_keys": ["secret-1"], "cors_origins": ["https://shop.example"]})
    app = create_app(settings, runtime)
    app.state.runtime = runtime
    original = runtime.settings
    runtime.settings = settings
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kefu") as c:
            yield c
    finally:
        runtime.settings = original


async def test_api_key_required(client: httpx.AsyncClient) -> None:
    missing = await client.post("/v1/conversations/k1/messages", json={"text": "hi"})
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "unauthorized"
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
    refused = await client.options(
        "/v1/conversations/k1/messages", headers={"Origin": "https://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in refused.headers
