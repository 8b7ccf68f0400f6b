"""The demo bank: payment cards seeded from the pack's ``cards.yaml``, changes kept per customer.

Every customer (user id, or the conversation when anonymous) holds the pack's default cards, except the user
ids listed under ``customers:``, who hold exactly their own list. Freezing a card is stored in the database
the demo shop uses (table ``demo_card_changes``, migration 0002) and changes that customer's view only, so
the demo facts hold for each new customer.

``cards.yaml``::

    default:                       # every customer's cards
      - {last4: "1234", type: debit, network: Visa, name: {en: ..., zh: ...}}
    customers:                     # optional: user id -> that customer's own cards
      demo-one-card:
        - {last4: "4321", type: debit, network: Visa, name: {en: ..., zh: ...}}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Integer, MetaData, String, Table, UniqueConstraint, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

_LAST4 = re.compile(r"[0-9]{4}")
_STATUSES = ("active", "frozen")

# The table itself is created by the Alembic migration 0002; this is its shape for queries.
_metadata = MetaData()
card_changes = Table(
    "demo_card_changes",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_key", String(300), nullable=False),
    Column("last4", String(4), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("data", JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("customer_key", "last4", "kind", name="uq_demo_card_change_once"),
)


class CardSeedError(ValueError):
    """``cards.yaml`` cannot be used; the message names the file and the entry."""


def _cards(raw: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise CardSeedError(f"cards.yaml: {where} must be a list of cards")
    cards: list[dict[str, Any]] = []
    seen: set[str] = set()
    for position, card in enumerate(raw, 1):
        here = f"cards.yaml: {where} #{position}"
        if not isinstance(card, Mapping):
            raise CardSeedError(f"{here}: must be a mapping")
        last4 = card.get("last4")
        if not isinstance(last4, str) or not _LAST4.fullmatch(last4):  # unquoted, YAML reads 0123 as a number
            raise CardSeedError(f"{here}: 'last4' must be four digits (quoted), got {card.get('last4')!r}")
        if last4 in seen:
            raise CardSeedError(f"{here}: card ending {last4} is listed twice")
        seen.add(last4)
        status = str(card.get("status", "active"))
        if status not in _STATUSES:
            raise CardSeedError(f"{here}: 'status' must be one of {', '.join(_STATUSES)}")
        if not isinstance(card.get("name"), Mapping):
            raise CardSeedError(f"{here}: 'name' must map languages to the card's name")
        cards.append({**card, "last4": last4, "status": status})
    return cards


def parse_seed(seed: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """``cards.yaml`` -> (default cards, user id -> own cards); a bad entry raises ``CardSeedError``."""
    unknown = sorted(str(k) for k in set(seed) - {"default", "customers"})
    if unknown:
        raise CardSeedError(f"cards.yaml: unknown key(s) {', '.join(unknown)}")
    default = _cards(seed.get("default") or [], "default")
    customers_raw = seed.get("customers") or {}
    if not isinstance(customers_raw, Mapping):
        raise CardSeedError("cards.yaml: 'customers' must map user ids to lists of cards")
    customers = {str(k): _cards(v, f"customers.{k}") for k, v in customers_raw.items()}
    return default, customers


class DemoBank:
    """Cards per customer: the seed plus that customer's changes (freezes)."""

    def __init__(self, engine: AsyncEngine, seed: Mapping[str, Any]) -> None:
        self._engine = engine
        self._default, self._customers = parse_seed(seed)

    def _seed_for(self, customer: str) -> list[dict[str, Any]]:
        return self._customers.get(customer, self._default)

    async def cards(self, customer: str) -> list[dict[str, Any]]:
        async with self._engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(card_changes.c.last4, card_changes.c.kind, card_changes.c.data, card_changes.c.created_at)
                    .where(card_changes.c.customer_key == customer)
                    .order_by(card_changes.c.id)
                )
            ).all()
        changes: dict[str, list[tuple[str, dict[str, Any], datetime]]] = {}
        for last4, kind, data, created_at in rows:
            changes.setdefault(last4, []).append((kind, data, created_at))
        return [_card_view(card, changes.get(card["last4"], [])) for card in self._seed_for(customer)]

    async def list_cards(self, customer: str, last4: str | None = None) -> dict[str, Any]:
        """All the customer's cards; ``selected`` is the card ending ``last4``, or the only card when the
        customer has exactly one and no digits were given."""
        cards = await self.cards(customer)
        if last4:
            selected = next((c for c in cards if c["last4"] == last4), None)
        else:
            selected = cards[0] if len(cards) == 1 else None
        return {
            "found": selected is not None,
            "count": len(cards),
            "cards": cards,
            "summary": {
                "en": "; ".join(c["label"]["en"] for c in cards),
                "zh": "；".join(c["label"]["zh"] for c in cards),
            },
            "selected": selected,
            "asked": last4,
        }

    async def freeze_card(self, customer: str, last4: str, reason: str) -> dict[str, Any]:
        """Freeze the card ending ``last4`` (idempotent: a frozen card stays frozen)."""
        listing = await self.list_cards(customer, last4)
        card = listing["selected"]
        if card is None:
            return {"done": False, "found": False, "already": False, "last4": last4, "card": None}
        if card["status"] == "frozen":
            return {"done": True, "found": True, "already": True, "last4": last4, "card": card}
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    card_changes.insert().values(
                        customer_key=customer,
                        last4=last4,
                        kind="freeze",
                        data={"reason": reason},
                        created_at=datetime.now(UTC),
                    )
                )
            already = False
        except IntegrityError:
            already = True  # frozen at the same moment by another turn: the call is idempotent
        frozen = (await self.list_cards(customer, last4))["selected"]
        return {"done": True, "found": True, "already": already, "last4": last4, "card": frozen}


def _card_view(seed: dict[str, Any], changes: list[tuple[str, dict[str, Any], datetime]]) -> dict[str, Any]:
    last4, name = seed["last4"], seed["name"]
    en = str(name.get("en") or next(iter(name.values()), "card"))
    zh = str(name.get("zh") or en)
    view: dict[str, Any] = {
        "last4": last4,
        "type": seed.get("type"),
        "network": seed.get("network"),
        "name": name,
        "label": {"en": f"{en} ending {last4}", "zh": f"尾号 {last4} 的{' ' if zh[:1].isascii() else ''}{zh}"},
        "status": seed["status"],
        "frozen_at": None,
        "frozen_reason": None,
    }
    for kind, data, created_at in changes:
        if kind == "freeze":
            view["status"] = "frozen"
            view["frozen_at"] = created_at.isoformat() if isinstance(created_at, datetime) else str(created_at)
            view["frozen_reason"] = data.get("reason")
    return view
