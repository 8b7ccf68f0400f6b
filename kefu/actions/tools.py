"""The pack's business tools. Each declares a JSON schema; the runner checks arguments against it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from kefu.actions.shop import ShopBackend
from kefu.core.protocols import Tool, ToolContext
from kefu.core.types import Locale
from kefu.knowledge.base import KnowledgeBase
from kefu.knowledge.index import Hit

_ORDER_ID = {"type": "string", "pattern": r"[0-9A-Za-z-]{4,32}", "description": "the order number"}
_REASON = {"type": "string", "maxLength": 500}
PASSAGES = 3  # retrieved chunks handed to a model that writes a knowledge answer


def object_schema(required: list[str], **properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


@dataclass
class LookupOrder:
    shop: ShopBackend
    name: str = "lookup_order"
    description: str = "Look up one of the customer's orders: status, item, carrier, tracking, delivery date."
    parameters: dict[str, Any] = field(default_factory=lambda: object_schema(["order_id"], order_id=_ORDER_ID))

    async def __call__(self, args: dict[str, Any], context: ToolContext) -> dict[str, Any]:
        return await self.shop.get_order(context.customer_key, str(args["order_id"]))


@dataclass
class CancelOrder:
    shop: ShopBackend
    name: str = "cancel_order"
    mutates: ClassVar[bool] = True  # changes the order: only a flow calls it, after its checks
    description: str = "Cancel an order that has not shipped yet."
    parameters: dict[str, Any] = field(
        default_factory=lambda: object_schema(["order_id"], order_id=_ORDER_ID, reason=_REASON)
    )

    async def __call__(self, args: dict[str, Any], context: ToolContext) -> dict[str, Any]:
        return await self.shop.cancel_order(context.customer_key, str(args["order_id"]), str(args.get("reason") or ""))


@dataclass
class CreateReturn:
    shop: ShopBackend
    name: str = "create_return"
    mutates: ClassVar[bool] = True  # changes the order: only a flow calls it, after its checks
    description: str = "Open a return (refund) request for a delivered order."
    parameters: dict[str, Any] = field(
        default_factory=lambda: object_schema(["order_id"], order_id=_ORDER_ID, reason=_REASON)
    )

    async def __call__(self, args: dict[str, Any], context: ToolContext) -> dict[str, Any]:
        return await self.shop.create_return(context.customer_key, str(args["order_id"]), str(args.get("reason") or ""))


@dataclass
class ChangeAddress:
    shop: ShopBackend
    name: str = "change_address"
    mutates: ClassVar[bool] = True  # changes the order: only a flow calls it, after its checks
    description: str = "Change the delivery address of an order that has not shipped yet."
    parameters: dict[str, Any] = field(
        default_factory=lambda: object_schema(
            ["order_id", "address"], order_id=_ORDER_ID, address={"type": "string", "maxLength": 500}
        )
    )

    async def __call__(self, args: dict[str, Any], context: ToolContext) -> dict[str, Any]:
        return await self.shop.change_address(context.customer_key, str(args["order_id"]), str(args["address"]))


@dataclass
class SearchProducts:
    shop: ShopBackend
    name: str = "search_products"
    description: str = "Search the catalogue by product name or words; returns price, stock and specs."
    parameters: dict[str, Any] = field(
        default_factory=lambda: object_schema(
            [],
            query={"type": "string", "maxLength": 4000},
            sku={"type": "string", "maxLength": 64},
            limit={"type": "integer", "minimum": 1, "maximum": 20},
        )
    )

    async def __call__(self, args: dict[str, Any], context: ToolContext) -> dict[str, Any]:
        return await self.shop.search_products(
            str(args.get("query") or ""), args.get("sku"), int(args.get("limit") or 3)
        )


@dataclass
class SearchKnowledge:
    """Knowledge-base search with two calibrated thresholds: ``found`` (the passage answers the question,
    safe to say even when nothing else suggests a policy question) and ``likely`` (good enough when the
    intent already says it is one). The answer, id and title are filled when ``likely``."""

    index: KnowledgeBase
    min_score: float
    likely_score: float
    name: str = "search_knowledge"
    description: str = "Search the shop's help articles (policies, shipping, payment, invoices, warranty, account)."
    parameters: dict[str, Any] = field(
        default_factory=lambda: object_schema(["query"], query={"type": "string", "maxLength": 4000})
    )

    async def __call__(self, args: dict[str, Any], context: ToolContext) -> dict[str, Any]:
        query = str(args["query"])
        vector = context.vector if query == context.text and context.vector is not None else self.index.embed(query)
        hits = await self.index.search_async(query, context.locale, k=5, embedding=vector)
        best = hits[0] if hits else None
        result: dict[str, Any] = {
            "found": best is not None and best.score >= self.min_score,
            "likely": best is not None and best.score >= min(self.likely_score, self.min_score),
            "hits": [{"id": h.chunk.doc_id, "title": h.chunk.title, "score": round(h.score, 4)} for h in hits],
        }
        if best is not None and result["likely"]:
            result.update(
                id=best.chunk.doc_id,
                title=best.chunk.title,
                section=best.chunk.heading_text,
                answer=self.index.answer(query, best, context.locale, vector),
                score=round(best.score, 4),
                # What a model writing the answer reads (the extractive answer above is the fallback).
                passages=self._passages(best, hits, context.locale),
            )
        return result

    def _passages(self, best: Hit, hits: list[Hit], locale: Locale) -> list[dict[str, str]]:
        """The best document's opening and best section, then the next hits, without repeats."""
        chunks = [c for c in (self.index.opening(best, locale), best.chunk) if c is not None]
        chunks += [h.chunk for h in hits[1:]]
        seen: set[tuple[str, int]] = set()
        passages = []
        for chunk in chunks:
            if (chunk.doc_id, chunk.position) in seen:
                continue
            seen.add((chunk.doc_id, chunk.position))
            passages.append({"id": chunk.doc_id, "title": chunk.heading_text, "text": chunk.text})
        return passages[:PASSAGES]


def shop_tools(shop: ShopBackend) -> list[Tool]:
    return [
        LookupOrder(shop),
        CancelOrder(shop),
        CreateReturn(shop),
        ChangeAddress(shop),
        SearchProducts(shop),
    ]


def builtin_tool_names() -> set[str]:
    """Names of the tools every runtime has (for checking a pack without building a runtime)."""
    return {
        cls.name for cls in (LookupOrder, CancelOrder, CreateReturn, ChangeAddress, SearchProducts, SearchKnowledge)
    }
