"""Business tools on both backends: the demo shop on seeded tables and a business's own REST API."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Header, HTTPException

from kefu.actions.demo_shop import DemoShop
from kefu.actions.http_shop import HttpShop
from kefu.actions.runner import ToolRunner
from kefu.actions.tools import shop_tools
from kefu.core.types import ToolCall
from kefu.packs.loader import load_pack
from kefu.store.database import create_engine, migrate

pytestmark = pytest.mark.asyncio


class Context:
    def __init__(self, customer: str) -> None:
        self.customer_key = customer
        self.locale = "en"
        self.conversation_id = customer
        self.text = ""
        self.vector = None


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[DemoShop]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}")
    await migrate(engine)
    pack = load_pack("ecommerce")
    shop = DemoShop(engine)
    await shop.seed(pack.orders, pack.catalogue)
    await shop.seed(pack.orders, pack.catalogue)  # re-seeding is idempotent
    yield shop
    await engine.dispose()


async def test_demo_orders(demo: DemoShop) -> None:
    shipped = await demo.get_order("alice", "100001")
    assert shipped["status"] == "shipped" and shipped["tracking"] == "SF1234567890"
    assert (await demo.get_order("alice", "100002"))["days_since_delivery"] == 3
    assert (await demo.get_order("alice", "999999")) == {"found": False, "id": "999999"}


async def test_changes_are_per_customer_and_idempotent(demo: DemoShop) -> None:
    first = await demo.cancel_order("alice", "100003", "changed my mind")
    assert first["done"] and first["status"] == "cancelled" and not first["already"]
    again = await demo.cancel_order("alice", "100003", "")
    assert again["done"] and again["already"]
    assert (await demo.get_order("bob", "100003"))["status"] == "processing"
    refused = await demo.cancel_order("alice", "100001", "")
    assert not refused["done"] and refused["problem"] == "status_shipped"
    returned = await demo.create_return("alice", "100002", "")
    assert returned["status"] == "return_requested" and returned["return_id"].startswith("R100002")
    assert (await demo.create_return("alice", "100002", ""))["return_id"] == returned["return_id"]


async def test_product_search(demo: DemoShop) -> None:
    by_sku = await demo.search_products("", "SW-S3-01", 3)
    assert by_sku["top"]["name"]["en"] == "Smart Watch S3" and by_sku["top"]["price"] == 1299
    by_words = await demo.search_products("bluetooth speaker", None, 3)
    assert by_words["found"] and by_words["top"]["sku"] == "SPK-MINI-01"
    assert not (await demo.search_products("washing machine", None, 3))["found"]


async def test_runner_checks_arguments_and_reports_failures(demo: DemoShop) -> None:
    runner = ToolRunner(shop_tools(demo))
    results = await runner.run(
        [
            ToolCall("lookup_order", {"order_id": "100001"}, "a"),
            ToolCall("lookup_order", {"order_id": "1; DROP TABLE"}, "b"),
            ToolCall("lookup_order", {}, "c"),
            ToolCall("search_products", {"limit": 99}, "d"),
        ],
        Context("alice"),
    )
    assert results[0].ok and results[0].data["tracking"] == "SF1234567890"
    assert not results[1].ok and "does not match" in (results[1].error or "")
    assert not results[2].ok and "missing required argument 'order_id'" in (results[2].error or "")
    assert not results[3].ok and "must be <= 20" in (results[3].error or "")


def _business_api() -> FastAPI:
    """A business's own order API, as kefu's HTTP backend expects it."""
    api = FastAPI()
    orders: dict[str, dict[str, Any]] = {"500001": {"id": "500001", "status": "processing", "item": {"en": "Kettle"}}}

    @api.get("/orders/{order_id}")
    def get_order(order_id: str, x_kefu_customer: str = Header()) -> dict[str, Any]:
        if order_id == "500500":
            raise HTTPException(500)
        if order_id not in orders:
            raise HTTPException(404)
        return {**orders[order_id], "customer": x_kefu_customer}

    @api.post("/orders/{order_id}/cancel")
    def cancel(order_id: str) -> dict[str, Any]:
        orders[order_id]["status"] = "cancelled"
        return orders[order_id]

    @api.get("/products")
    def products(q: str = "", limit: int = 3) -> dict[str, Any]:
        return {"products": [{"sku": "K1", "name": {"en": "Kettle"}, "price": 99, "in_stock": True}][:limit]}

    return api


@pytest.fixture(scope="module")
def business_api() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(_business_api(), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)


async def test_http_backend_against_a_real_api(business_api: str) -> None:
    shop = HttpShop(business_api, timeout_s=2)
    try:
        order = await shop.get_order("carol", "500001")
        assert order["found"] and order["customer"] == "carol"
        assert (await shop.get_order("carol", "123456")) == {"found": False, "id": "123456"}
        cancelled = await shop.cancel_order("carol", "500001", "")
        assert cancelled["done"] and cancelled["status"] == "cancelled"
        assert (await shop.search_products("kettle", None, 2))["top"]["sku"] == "K1"
        runner = ToolRunner(shop_tools(shop))
        failed = (await runner.run([ToolCall("lookup_order", {"order_id": "500500"}, "x")], Context("c")))[0]
        assert not failed.ok and "answered 500" in (failed.error or "")
    finally:
        await shop.close()


async def test_http_backend_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    shop = HttpShop(f"http://127.0.0.1:{port}", timeout_s=1)
    try:
        result = (
            await ToolRunner(shop_tools(shop)).run(
                [ToolCall("lookup_order", {"order_id": "100001"}, "x")], Context("c")
            )
        )[0]
        assert not result.ok and "unreachable" in (result.error or "")
    finally:
        await shop.close()
    await asyncio.sleep(0)


class _Exploding:
    def __init__(self) -> None:
        self.name = "explode"
        self.description = "always fails"
        self.parameters: dict[str, Any] = {"type": "object", "properties": {}}

    async def __call__(self, args: dict[str, Any], context: Any) -> dict[str, Any]:
        raise RuntimeError("database went away")


async def test_unexpected_tool_error_becomes_a_failed_result() -> None:
    result = (await ToolRunner([_Exploding()]).run([ToolCall("explode", {}, "x")], Context("c")))[0]
    assert not result.ok and result.error == "RuntimeError: database went away"
