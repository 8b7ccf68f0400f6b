"""The shop a pack's tools act on: a ``ShopBackend`` protocol and the order view every backend returns.

An order view is a JSON object: ``{"found", "id", "item": {"en", "zh"}, "sku", "status", "carrier",
"tracking", "days_since_delivery", "delivered_on", "amount", "currency", "return_id"}``. ``status`` is one
of ``processing, shipped, delivered, cancelled, return_requested``.
"""

from __future__ import annotations

from typing import Any, Protocol


class ShopBackend(Protocol):
    async def get_order(self, customer: str, order_id: str) -> dict[str, Any]: ...

    async def cancel_order(self, customer: str, order_id: str, reason: str) -> dict[str, Any]: ...

    async def create_return(self, customer: str, order_id: str, reason: str) -> dict[str, Any]: ...

    async def change_address(self, customer: str, order_id: str, address: str) -> dict[str, Any]: ...

    async def search_products(self, query: str, sku: str | None, limit: int) -> dict[str, Any]: ...
