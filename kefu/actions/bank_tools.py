"""The bank's business tools (demo bank backend). Each declares a JSON schema; the runner checks arguments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from kefu.actions.demo_bank import DemoBank
from kefu.actions.tools import object_schema
from kefu.core.protocols import Tool, ToolContext

_LAST4 = {"type": "string", "pattern": r"[0-9]{4}", "description": "the last four digits of the card number"}


@dataclass
class ListCards:
    bank: DemoBank
    name: str = "list_cards"
    description: str = (
        "List the customer's payment cards (last four digits, type, status). With last4, 'selected' is that "
        "card; without it, 'selected' is the only card when the customer has exactly one."
    )
    parameters: dict[str, Any] = field(default_factory=lambda: object_schema([], last4=_LAST4))

    async def __call__(self, args: dict[str, Any], context: ToolContext) -> dict[str, Any]:
        return await self.bank.list_cards(context.customer_key, args.get("last4") or None)


@dataclass
class FreezeCard:
    bank: DemoBank
    name: str = "freeze_card"
    mutates: ClassVar[bool] = True  # changes the card: only a flow calls it, after the customer confirms
    description: str = (
        "Freeze one of the customer's cards at once (lost, stolen, compromised or retained by an ATM): no "
        "payments or withdrawals go through until it is replaced. Only after the customer has confirmed."
    )
    parameters: dict[str, Any] = field(
        default_factory=lambda: object_schema(
            ["last4"],
            last4=_LAST4,
            reason={"type": "string", "maxLength": 200, "description": "why, e.g. lost_or_stolen_card"},
        )
    )

    async def __call__(self, args: dict[str, Any], context: ToolContext) -> dict[str, Any]:
        return await self.bank.freeze_card(context.customer_key, str(args["last4"]), str(args.get("reason") or ""))


def bank_tools(bank: DemoBank) -> list[Tool]:
    return [ListCards(bank), FreezeCard(bank)]


def bank_tool_names() -> set[str]:
    """Names of the bank tools every runtime has (for checking a pack without building a runtime)."""
    return {ListCards.name, FreezeCard.name}
