"""Pure data types that flow through one turn. No I/O here."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Locale = Literal["zh", "en"]
Owner = Literal["bot", "agent", "closed"]
Role = Literal["user", "bot", "agent"]
# What the safety policy does with a turn, mildest first: carry on, carry on and mark it for review, answer
# with a polite refusal, or hand the conversation to a person.
GuardAction = Literal["allow", "flag", "block", "handoff"]
GUARD_ACTIONS: tuple[GuardAction, ...] = ("allow", "flag", "block", "handoff")


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One customer message as a channel adapter hands it to the pipeline."""

    conversation_id: str
    message_id: str
    text: str
    received_at: datetime
    user_id: str | None = None
    channel: str = "web"
    locale: Locale | None = None  # the UI language the client asked for, if any

    @property
    def request_sha256(self) -> str:
        """Fingerprint of what the customer sent, to tell a retry from a reused message id."""
        return hashlib.sha256(f"{self.user_id}\x1f{self.text}".encode()).hexdigest()

    @property
    def customer_key(self) -> str:
        """Who the business tools act for: the user id, or the conversation when anonymous."""
        return self.user_id or f"conversation:{self.conversation_id}"


@dataclass(frozen=True, slots=True)
class Span:
    """A typed piece of the message text (``start``/``end`` are character offsets)."""

    type: str
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class Entity:
    """An extracted entity; ``value`` is normalised (e.g. digits only for an order id)."""

    type: str
    value: str
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class IntentScore:
    name: str
    confidence: float


@dataclass(frozen=True, slots=True)
class Parse:
    """What the NLU step understood: intent ranking, entities, language and a dialogue act."""

    text: str
    language: Locale
    intent: IntentScore
    ranking: tuple[IntentScore, ...]
    entities: tuple[Entity, ...] = ()
    act: str | None = None  # affirm / deny / stop, when the message is one
    act_confidence: float = 0.0
    vector: Any = None  # the message's sentence embedding, reused by knowledge search in the same turn

    def entity(self, entity_type: str) -> Entity | None:
        return next((e for e in self.entities if e.type == entity_type), None)


@dataclass(frozen=True, slots=True)
class GuardVerdict:
    """Result of a safety check on a piece of text. ``flagged``/``categories`` are the moderation verdict;
    ``action`` is what the safety policy asks the pipeline to do with the turn."""

    pii: tuple[Span, ...] = ()
    flagged: bool = False
    categories: tuple[str, ...] = ()
    injection_score: float = 0.0
    redacted_text: str = ""
    injection: bool = False
    injection_categories: tuple[str, ...] = ()
    leak: bool = False  # outbound: the reply holds the system prompt's canary
    action: GuardAction = "allow"
    reason: str | None = None  # e.g. "moderation:self_harm", "injection"
    detail: dict[str, Any] = field(default_factory=dict)  # matched terms and evidence, for review


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    args: dict[str, Any]
    save_as: str


@dataclass(frozen=True, slots=True)
class ToolResult:
    call: ToolCall
    ok: bool
    data: dict[str, Any]
    error: str | None = None
    duration_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class Utterance:
    """Something the bot should say: a template key plus the values it needs."""

    template: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class DialogueState:
    """The flow position of one conversation; JSON-serialisable via ``to_dict``."""

    flow: str | None = None
    step: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    asks: dict[str, int] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)
    waiting: str | None = None  # "slot:<name>", "confirm", "tool" or "probe:<slot>" while the flow waits
    stack: list[dict[str, Any]] = field(default_factory=list)  # flows suspended by a digression

    @property
    def name(self) -> str:
        if self.flow is None:
            return "idle"
        return f"{self.flow}.{self.step}" if self.step else self.flow

    def to_dict(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "step": self.step,
            "slots": self.slots,
            "asks": self.asks,
            "memory": self.memory,
            "waiting": self.waiting,
            "stack": self.stack,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> DialogueState:
        data = data or {}
        return cls(
            flow=data.get("flow"),
            step=data.get("step"),
            slots=dict(data.get("slots") or {}),
            asks=dict(data.get("asks") or {}),
            memory=dict(data.get("memory") or {}),
            waiting=data.get("waiting"),
            stack=list(data.get("stack") or []),
        )


@dataclass(slots=True)
class Decision:
    """What the dialogue step decided. ``tool_calls`` must run before the decision is final."""

    state: DialogueState
    utterances: list[Utterance] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    quick_replies: list[str] = field(default_factory=list)  # template keys
    handoff: bool = False
    handoff_reason: str | None = None
    close: bool = False
    trace: list[str] = field(default_factory=list)  # steps visited, for the event log


@dataclass(frozen=True, slots=True)
class Citation:
    id: str
    title: str


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    citations: tuple[Citation, ...] = ()
    quick_replies: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    version: str
    variant: str


@dataclass(frozen=True, slots=True)
class TurnResult:
    """The answer to one inbound message, as the HTTP contract returns it."""

    conversation_id: str
    message_id: str
    reply: Reply
    intent: IntentScore
    entities: tuple[Entity, ...]
    state: str
    handoff: bool
    owner: Owner
    model: ModelInfo | None = None
    replayed: bool = False  # True when answered from the store for a repeated message_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "message_id": self.message_id,
            "reply": {
                "text": self.reply.text,
                "citations": [{"id": c.id, "title": c.title} for c in self.reply.citations],
                "quick_replies": list(self.reply.quick_replies),
            },
            "intent": {"name": self.intent.name, "confidence": round(self.intent.confidence, 4)},
            "entities": [{"type": e.type, "value": e.value} for e in self.entities],
            "state": self.state,
            "handoff": self.handoff,
            "owner": self.owner,
            "model": None
            if self.model is None
            else {"id": self.model.id, "version": self.model.version, "variant": self.model.variant},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, replayed: bool = False) -> TurnResult:
        reply = data["reply"]
        model = data.get("model")
        return cls(
            conversation_id=data["conversation_id"],
            message_id=data["message_id"],
            reply=Reply(
                text=reply["text"],
                citations=tuple(Citation(c["id"], c["title"]) for c in reply.get("citations", [])),
                quick_replies=tuple(reply.get("quick_replies", [])),
            ),
            intent=IntentScore(data["intent"]["name"], float(data["intent"]["confidence"])),
            entities=tuple(Entity(e["type"], e["value"], 0, 0, e["value"]) for e in data["entities"]),
            state=data["state"],
            handoff=bool(data["handoff"]),
            owner=data["owner"],
            model=None if model is None else ModelInfo(model["id"], model["version"], model["variant"]),
            replayed=replayed,
        )


@dataclass(frozen=True, slots=True)
class Event:
    """One step of a turn, appended to the conversation's event log."""

    type: str
    payload: dict[str, Any]
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class TranscriptMessage:
    role: Role
    text: str
    ts: datetime


@dataclass(frozen=True, slots=True)
class TurnToolContext:
    """Implements ``ToolContext`` for one turn: who the tools act for, the language, the message."""

    customer_key: str
    locale: Locale
    conversation_id: str
    text: str
    vector: Any


@dataclass(frozen=True, slots=True)
class WriteRequest:
    """What a reply writer (an LLM) gets: the decided turn, its template reply as the fallback, the
    recent transcript, and a ``time.monotonic()`` deadline it must finish by."""

    decision: Decision
    parse: Parse
    locale: Locale
    template_reply: Reply
    conversation_id: str
    message_id: str
    user_key: str
    history: tuple[TranscriptMessage, ...]
    deadline: float


@dataclass(frozen=True, slots=True)
class Written:
    """A writer's result; ``model`` None means the template reply stands."""

    reply: Reply
    model: ModelInfo | None
    handoff: bool = False  # the model found no answer in the passages: hand over to a person
    events: tuple[Event, ...] = ()


@dataclass(frozen=True, slots=True)
class ConversationSnapshot:
    """The projection of a conversation's events that a turn needs."""

    conversation_id: str
    owner: Owner
    dialogue: DialogueState
    last_seq: int
    user_id: str | None = None
    channel: str = "web"
    locale: Locale | None = None


class DuplicateMessage(Exception):
    """The ``(conversation_id, message_id)`` pair was stored by a concurrent turn."""


class StaleConversation(Exception):
    """The conversation changed after the turn loaded it (a writer that held no lock); the turn is redone."""


class MessageIdConflict(ValueError):
    """A ``message_id`` was sent again with different text: a client bug, refused rather than guessed at."""


@dataclass(frozen=True, slots=True)
class StoredTurn:
    result: TurnResult
    request_sha256: str
