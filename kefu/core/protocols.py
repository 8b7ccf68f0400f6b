"""The interfaces of the pipeline's steps. Implementations live in their own packages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from kefu.core.types import (
    ConversationSnapshot,
    Decision,
    DialogueState,
    Event,
    GuardVerdict,
    InboundMessage,
    IntentScore,
    Locale,
    ModelInfo,
    Owner,
    Parse,
    Reply,
    StoredTurn,
    ToolCall,
    ToolResult,
    TranscriptMessage,
    TurnResult,
    WriteRequest,
    Written,
)

TextSink = Callable[[str], Awaitable[None]]


class ConversationLocks(Protocol):
    """Serialises the turns of one conversation (in-process or across processes)."""

    def hold(self, conversation_id: str) -> AbstractAsyncContextManager[None]: ...


class Guard(Protocol):
    """Safety checks on the way in and on the way out (an external moderation service may be asked, so
    both are async). A model-written reply that fails ``outbound`` is withdrawn."""

    async def inbound(self, text: str) -> GuardVerdict: ...

    async def outbound(self, text: str, *, written_by_model: bool = False) -> GuardVerdict: ...


class Understanding(Protocol):
    """The NLU step: text (plus the dialogue context) to a ``Parse``."""

    def parse(self, text: str, *, locale_hint: Locale | None = None) -> Parse: ...


class IntentArbiter(Protocol):
    """A second opinion on an unsure intent (an LLM choosing among the top candidates)."""

    def wants(self, parse: Parse) -> bool: ...

    async def choose(self, text: str, ranking: Sequence[IntentScore]) -> IntentScore | None: ...


class DialoguePolicy(Protocol):
    """The flow state machine. Pure: no I/O, tool calls are returned, not made."""

    def step(self, state: DialogueState, parse: Parse) -> Decision: ...

    def resume(self, decision: Decision, results: Sequence[ToolResult], parse: Parse) -> Decision: ...


class ToolContext(Protocol):
    """Who a tool acts for and in which language; the turn's message and its embedding."""

    @property
    def customer_key(self) -> str: ...

    @property
    def locale(self) -> Locale: ...

    @property
    def conversation_id(self) -> str: ...

    @property
    def text(self) -> str: ...

    @property
    def vector(self) -> Any: ...


class Tool(Protocol):
    """A business tool: order lookup, product search, refund, knowledge search..."""

    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments
    # A tool that changes something (cancel, refund, freeze) sets ``mutates = True``: no model is offered it.

    async def __call__(self, args: dict[str, Any], context: ToolContext) -> dict[str, Any]: ...


class ActionRunner(Protocol):
    async def run(self, calls: Sequence[ToolCall], context: ToolContext) -> list[ToolResult]: ...


class Responder(Protocol):
    """Turns the decision's utterances into the reply text in the customer's language."""

    def render(self, decision: Decision, parse: Parse, locale: Locale) -> Reply: ...


class ReplyWriter(Protocol):
    """Writes the reply with a model where it pays (grounded knowledge answers), streaming accepted text
    to ``on_text``; falls back to the template reply on any failure."""

    def wants(self, decision: Decision, locale: Locale) -> bool: ...

    async def write(self, request: WriteRequest, on_text: TextSink | None = None) -> Written: ...

    def assignment(self, user_key: str, locale: Locale) -> ModelInfo | None:
        """The model version and variant (A/B arm) this user is on now, recorded with every turn."""
        ...


class ConversationStore(Protocol):
    """Event-sourced conversation storage."""

    async def find_turn(self, conversation_id: str, message_id: str) -> StoredTurn | None: ...

    async def open_turn(
        self, conversation_id: str, message_id: str
    ) -> tuple[StoredTurn | None, ConversationSnapshot | None]: ...

    async def load(self, conversation_id: str) -> ConversationSnapshot | None: ...

    async def commit_turn(
        self,
        message: InboundMessage,
        snapshot: ConversationSnapshot,
        events: Sequence[Event],
        result: TurnResult,
    ) -> None: ...

    async def transcript(self, conversation_id: str) -> list[TranscriptMessage] | None: ...

    async def add_feedback(self, conversation_id: str, rating: int, comment: str | None) -> bool: ...

    async def set_owner(self, conversation_id: str, owner: Owner, reason: str) -> bool: ...

    async def ping(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Handover:
    """A turn that hands the conversation to people: why, in which language, whether an agent was online,
    and what the desk added to the bot's reply ("" while an agent is online)."""

    reason: str
    locale: Locale
    agents_online: bool
    notice: str = ""


class HandoffDesk(Protocol):
    """The people's side of a handover (``kefu.handoff``), asked during a turn. The turn holds the
    conversation's lock: an implementation must not take it."""

    async def handover(self, message: InboundMessage, parse: Parse, reason: str, locale: Locale) -> Handover:
        """Called when a turn hands over: is an agent online, and what to tell the customer if not."""
        ...

    async def while_waiting(self, message: InboundMessage, parse: Parse, locale: Locale) -> str | None:
        """Called for a message while an agent owns the conversation: a short reply (contact details for
        the ticket noted) while nobody has claimed it yet; None keeps the bot silent."""
        ...


class TurnAnnouncer(Protocol):
    """Told about every turn once it is stored (not about replays), so agent consoles see it live and a
    handover is queued. Must not raise into the turn, and must not take the conversation's lock."""

    async def turn_stored(self, message: InboundMessage, result: TurnResult, handover: Handover | None) -> None: ...
