"""A ``ShopBackend`` that calls the business's own REST API.

Endpoints (JSON in and out, the order view of ``kefu.actions.shop``; the customer key travels in the
``X-Kefu-Customer`` header):
``GET {base}/orders/{id}`` (404: no such order), ``POST {base}/orders/{id}/cancel`` ``{"reason"}``,
``POST {base}/orders/{id}/returns`` ``{"reason"}``, ``POST {base}/orders/{id}/address`` ``{"address"}``,
``GET {base}/products?q=...&sku=...&limit=N`` -> ``{"products": [...]}``.
"""

from __future__ import annotations

from typing import Any

import httpx

from kefu.actions.runner import ToolFailure


class HttpShop:
    def __init__(self, base_url: str, *, api_key: str = "", timeout_s: float = 5.0) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout_s)

    async def close(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, path: str, customer: str, **kwargs: Any) -> dict[str, Any] | None:
        try:
            response = await self._client.request(method, path, headers={"X-Kefu-Customer": customer}, **kwargs)
        except httpx.HTTPError as exc:
            raise ToolFailure(f"shop API unreachable: {exc.__class__.__name__}: {exc}") from exc
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise ToolFailure(f"shop API answered {response.status_code} for {method} {path}")
        try:
            data = response.json()
        except ValueError as exc:
            raise ToolFailure(f"shop API sent invalid JSON for {method} {path}") from exc
        if not isinstance(data, dict):
            raise ToolFailure(f"shop API sent {type(data).__name__}, not an object, for {method} {path}")
        return data

    async def get_order(self, customer: str, order_id: str) -> dict[str, Any]:
        data = await self._call("GET", f"/orders/{order_id}", customer)
        return {"found": False, "id": order_id} if data is None else {"found": True, **data}

    async def _mutate(self, customer: str, order_id: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
        data = await self._call("POST", f"/orders/{order_id}/{action}", customer, json=body)
        if data is None:
            return {"found": False, "id": order_id, "done": False, "problem": "not_found"}
        return {"found": True, "done": True, **data}

    async def cancel_order(self, customer: str, order_id: str, reason: str) -> dict[str, Any]:
        return await self._mutate(customer, order_id, "cancel", {"reason": reason})

    async def create_return(self, customer: str, order_id: str, reason: str) -> dict[str, Any]:
        return await self._mutate(customer, order_id, "returns", {"reason": reason})

    async def change_address(self, customer: str, order_id: str, address: str) -> dict[str, Any]:
        return await self._mutate(customer, order_id, "address", {"address": address})

    async def search_products(self, query: str, sku: str | None, limit: int) -> dict[str, Any]:
        params: dict[str, Any] = {"q": query, "limit": limit}
        if sku:
            params["sku"] = sku
        data = await self._call("GET", "/products", "", params=params) or {}
        products = list(data.get("products", []))[:limit]
        return {
            "found": bool(products),
            "count": len(products),
            "products": products,
            "top": products[0] if products else None,
        }
