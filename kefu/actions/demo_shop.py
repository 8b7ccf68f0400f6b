"""The demo shop on seeded tables: orders and catalogue from the pack, changes kept per customer.

Every customer (user id, or the conversation when anonymous) sees the pack's four orders as seeded; a
cancellation or return changes that customer's view only, so the demo facts hold for each new customer.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from kefu.store.models import DemoOrderChangeRow, DemoOrderRow, DemoProductRow

_SEED_LOCK_KEY = 0x6B656675 + 1
_WORD = re.compile(r"[a-z0-9]+|[\u4e00-\u9fff]")


class DemoShop:
    def __init__(self, engine: AsyncEngine) -> None:
        self._dialect = engine.dialect.name
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._products: list[dict[str, Any]] = []
        # The seeded orders never change (a customer's changes are rows of their own): read once.
        self._orders: dict[str, dict[str, Any]] = {}

    async def seed(self, orders: list[dict[str, Any]], products: list[dict[str, Any]]) -> None:
        """Make the tables hold exactly the pack's seed (customers' changes are kept)."""
        async with self._sessions.begin() as session:
            if self._dialect == "postgresql":
                # Replicas starting together would otherwise delete and insert the same rows at once.
                await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SEED_LOCK_KEY})
            await session.execute(delete(DemoOrderRow))
            await session.execute(delete(DemoProductRow))
            session.add_all(DemoOrderRow(order_id=str(o["id"]), data=o) for o in orders)
            session.add_all(DemoProductRow(sku=p["sku"], data=p, stock=int(p.get("stock", 0))) for p in products)
        await self._load_products()

    async def _load_products(self) -> None:
        async with self._sessions() as session:
            rows = (await session.execute(select(DemoProductRow))).scalars().all()
            self._products = [{**r.data, "stock": r.stock} for r in rows]
            orders = (await session.execute(select(DemoOrderRow))).scalars().all()
            self._orders = {r.order_id: r.data for r in orders}

    # ------------------------------------------------------------------ orders
    async def get_order(self, customer: str, order_id: str) -> dict[str, Any]:
        seeded = self._orders.get(order_id)
        if seeded is None:
            return {"found": False, "id": order_id}
        # Core, not the ORM: this runs on most order turns, and the ORM's unit of work costs more than the query.
        async with self._engine.connect() as connection:
            changes = await connection.execute(
                select(DemoOrderChangeRow.kind, DemoOrderChangeRow.data)
                .where(DemoOrderChangeRow.customer_key == customer, DemoOrderChangeRow.order_id == order_id)
                .order_by(DemoOrderChangeRow.id)
            )
            return _order_view(seeded, [(kind, data) for kind, data in changes])

    async def _change(self, customer: str, order_id: str, kind: str, data: dict[str, Any]) -> bool:
        try:
            async with self._sessions.begin() as session:
                session.add(
                    DemoOrderChangeRow(
                        customer_key=customer,
                        order_id=order_id,
                        kind=kind,
                        data=data,
                        created_at=datetime.now(UTC),
                    )
                )
            return True
        except IntegrityError:
            return False  # already done for this customer: the call is idempotent

    async def cancel_order(self, customer: str, order_id: str, reason: str) -> dict[str, Any]:
        order = await self.get_order(customer, order_id)
        if not order["found"]:
            return {**order, "done": False, "problem": "not_found"}
        if order["status"] == "cancelled":
            return {**order, "done": True, "already": True}
        if order["status"] != "processing":
            return {**order, "done": False, "problem": f"status_{order['status']}"}
        await self._change(customer, order_id, "cancel", {"reason": reason})
        return {**await self.get_order(customer, order_id), "done": True, "already": False}

    async def create_return(self, customer: str, order_id: str, reason: str) -> dict[str, Any]:
        order = await self.get_order(customer, order_id)
        if not order["found"]:
            return {**order, "done": False, "problem": "not_found"}
        if order["status"] == "return_requested":
            return {**order, "done": True, "already": True}
        if order["status"] != "delivered":
            return {**order, "done": False, "problem": f"status_{order['status']}"}
        return_id = f"R{order_id}{int(hashlib.sha256(customer.encode()).hexdigest(), 16) % 1000:03d}"
        await self._change(customer, order_id, "return", {"reason": reason, "return_id": return_id})
        return {**await self.get_order(customer, order_id), "done": True, "already": False}

    async def change_address(self, customer: str, order_id: str, address: str) -> dict[str, Any]:
        order = await self.get_order(customer, order_id)
        if not order["found"]:
            return {**order, "done": False, "problem": "not_found"}
        if order["status"] != "processing":
            return {**order, "done": False, "problem": f"status_{order['status']}"}
        async with self._sessions.begin() as session:
            await session.execute(
                delete(DemoOrderChangeRow).where(
                    DemoOrderChangeRow.customer_key == customer,
                    DemoOrderChangeRow.order_id == order_id,
                    DemoOrderChangeRow.kind == "address",
                )
            )
            session.add(
                DemoOrderChangeRow(
                    customer_key=customer,
                    order_id=order_id,
                    kind="address",
                    data={"address": address},
                    created_at=datetime.now(UTC),
                )
            )
        return {**await self.get_order(customer, order_id), "done": True}

    # ------------------------------------------------------------------ catalogue
    async def search_products(self, query: str, sku: str | None, limit: int) -> dict[str, Any]:
        if sku:
            matches = [p for p in self._products if p["sku"] == sku]
        else:
            wanted = set(_WORD.findall(query.lower()))
            scored = []
            for product in self._products:
                words = set(_WORD.findall(_product_text(product).lower()))
                overlap = len(wanted & words)
                if overlap:
                    scored.append((overlap, product["sku"], product))
            scored.sort(key=lambda t: (-t[0], t[1]))
            matches = [p for _, _, p in scored]
        products = [_product_view(p) for p in matches[:limit]]
        return {
            "found": bool(products),
            "count": len(products),
            "products": products,
            "top": products[0] if products else None,
        }


def _order_view(seed: dict[str, Any], changes: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    view: dict[str, Any] = {
        "found": True,
        "id": str(seed["id"]),
        "item": seed["item"],
        "sku": seed.get("sku"),
        "status": seed["status"],
        "carrier": seed.get("carrier"),
        "tracking": seed.get("tracking"),
        "eta": seed.get("eta"),
        "amount": seed.get("amount"),
        "currency": seed.get("currency", "CNY"),
        "address": seed.get("address"),
        "days_since_delivery": None,
        "delivered_on": None,
        "shipped_on": None,
        "return_id": None,
    }
    if "delivered_days_ago" in seed:
        days = int(seed["delivered_days_ago"])
        view["days_since_delivery"] = days
        view["delivered_on"] = (today - timedelta(days=days)).isoformat()
    if "shipped_days_ago" in seed:
        view["shipped_on"] = (today - timedelta(days=int(seed["shipped_days_ago"]))).isoformat()
    for kind, data in changes:
        if kind == "cancel":
            view["status"] = "cancelled"
        elif kind == "return":
            view["status"] = "return_requested"
            view["return_id"] = data.get("return_id")
        elif kind == "address":
            view["address"] = data.get("address")
    return view


def _product_text(product: dict[str, Any]) -> str:
    parts: list[str] = [product["sku"]]
    for key in ("name", "category", "aliases"):
        value = product.get(key) or {}
        for lang_value in value.values():
            parts.extend(lang_value if isinstance(lang_value, list) else [str(lang_value)])
    return " ".join(parts)


def _product_view(product: dict[str, Any]) -> dict[str, Any]:
    stock = int(product.get("stock", 0))
    return {
        "sku": product["sku"],
        "name": product["name"],
        "category": product.get("category"),
        "price": product.get("price"),
        "currency": product.get("currency", "CNY"),
        "stock": stock,
        "in_stock": stock > 0,
        "colors": product.get("colors"),
        "specs": product.get("specs"),
        "description": product.get("description"),
    }
