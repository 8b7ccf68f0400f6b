"""SQLAlchemy 2 table definitions. The schema itself is created by the Alembic migrations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql import text

JsonType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    pass


class ConversationRow(Base):
    """Projection of the event log: who owns the conversation and where its flow stands."""

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(256))
    channel: Mapped[str] = mapped_column(String(32), default="web")
    owner: Mapped[str] = mapped_column(String(16), default="bot")
    locale: Mapped[str | None] = mapped_column(String(8))
    dialogue: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_conversations_user_id", "user_id"),)


class EventRow(Base):
    """One step of one turn. ``seq`` numbers a conversation's events from 1 without gaps."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
    )
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    type: Mapped[str] = mapped_column(String(48), nullable=False)
    message_id: Mapped[str | None] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("conversation_id", "seq", name="uq_events_conversation_seq"),
        Index("ix_events_type", "type"),
    )


class TurnRow(Base):
    """The stored answer to one message; the key makes a retried message an idempotent replay."""

    __tablename__ = "turns"

    conversation_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    message_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    first_seq: Mapped[int] = mapped_column(Integer, nullable=False)
    last_seq: Mapped[int] = mapped_column(Integer, nullable=False)
    request_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    result: Mapped[dict[str, Any]] = mapped_column(JsonType, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FeedbackRow(Base):
    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False, index=True
    )
    rating: Mapped[int] = mapped_column(Integer, nullable=False)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DemoProductRow(Base):
    """The demo shop's catalogue, seeded from the pack."""

    __tablename__ = "demo_products"

    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JsonType, nullable=False)
    stock: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class DemoOrderRow(Base):
    """The demo shop's orders, seeded from the pack; every customer sees the same seed."""

    __tablename__ = "demo_orders"

    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JsonType, nullable=False)


class DemoOrderChangeRow(Base):
    """Changes a customer made to a demo order (cancel, return, address), scoped to that customer."""

    __tablename__ = "demo_order_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_key: Mapped[str] = mapped_column(String(300), nullable=False)
    order_id: Mapped[str] = mapped_column(String(64), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_demo_changes_customer_order", "customer_key", "order_id"),
        UniqueConstraint("customer_key", "order_id", "kind", name="uq_demo_change_once"),
    )


class KnowledgeDocumentRow(Base):
    """An operator-added knowledge document; ``data`` is its ``EncodedDocument`` (chunks and vectors)."""

    __tablename__ = "kb_documents"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    language: Mapped[str] = mapped_column(String(8), primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(String(1000))
    kind: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    chunk_count: Mapped[int] = mapped_column(Integer)
    encoders: Mapped[str] = mapped_column(String(200))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class KnowledgeRevisionRow(Base):
    __tablename__ = "kb_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(Integer)


class LlmModelRow(Base):
    """A registered model version (``kefu model add``); never changed once added, so turns stay traceable."""

    __tablename__ = "llm_models"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    base_url: Mapped[str] = mapped_column(String(500))
    model: Mapped[str] = mapped_column(String(200))
    profile: Mapped[str | None] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    languages: Mapped[list[str]] = mapped_column(JsonType, default=list)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LlmAliasRow(Base):
    """``stable`` and ``canary`` point at model versions; every change also bumps ``llm_revision``."""

    __tablename__ = "llm_aliases"

    alias: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), ForeignKey("llm_models.name"))
    percent: Mapped[float] = mapped_column(Float, default=100.0)  # share of users; the canary's experiment size
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LlmAuditRow(Base):
    """Every registry change: who, what, from which version to which. Rollbacks are computed from it."""

    __tablename__ = "llm_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(32))
    alias: Mapped[str | None] = mapped_column(String(16))
    from_name: Mapped[str | None] = mapped_column(String(100))
    to_name: Mapped[str | None] = mapped_column(String(100))
    detail: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)

    __table_args__ = (Index("ix_llm_audit_alias", "alias", "id"),)


class LlmCallRow(Base):
    """Accounting: one row per model call of a turn (tokens, time to first token, outcome)."""

    __tablename__ = "llm_calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    conversation_id: Mapped[str] = mapped_column(String(128))
    message_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(200))
    variant: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(32))
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    ttft_ms: Mapped[float | None] = mapped_column(Float)
    total_ms: Mapped[float] = mapped_column(Float, default=0.0)

    __table_args__ = (Index("ix_llm_calls_at", "at"),)


class LlmRevisionRow(Base):
    __tablename__ = "llm_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(Integer)


class PrivacyAuditRow(Base):
    """Every erasure and retention purge (dry runs too): who, when, what, how many rows per table.
    ``subject`` is a pseudonym (``u_…``, ``c_…``), or a purge's cutoff; never a raw user id."""

    __tablename__ = "privacy_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(32))  # erase_user, erase_conversation, purge
    subject: Mapped[str] = mapped_column(String(100))
    counts: Mapped[dict[str, int]] = mapped_column(JsonType, default=dict)
    dry_run: Mapped[bool] = mapped_column(default=False)


class ApiKeyRow(Base):
    """A client's API key (``kefu keys create``). Only the SHA-256 of the key is kept; ``id`` is the
    public part of the key, so a presented key is looked up by it and compared in constant time."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))  # channel, agent or admin
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # written at most once a minute
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AccountRow(Base):
    """An agent or admin who signs in with a password (``kefu user add``). ``session_gen`` is carried by
    every session token; changing the password bumps it, so earlier tokens stop working."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64))  # normalised: NFKC, case-folded
    role: Mapped[str] = mapped_column(String(16))  # agent or admin
    password_hash: Mapped[str] = mapped_column(String(255))  # scrypt$n$r$p$salt$hash (kefu.access.passwords)
    session_gen: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    password_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("username", name="uq_accounts_username"),)


class HandoffRow(Base):
    """One handover of a conversation to people (kefu.handoff): the queue entry while ``waiting``, the
    assignee once ``claimed``, then how it ended (``returned`` to the bot or ``closed`` with a resolution).
    At most one handover of a conversation is waiting or claimed at a time (a partial unique index)."""

    __tablename__ = "handoffs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
    )
    message_id: Mapped[str] = mapped_column(String(128), nullable=False)  # the turn that handed over
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # waiting, claimed, returned, closed
    reason: Mapped[str] = mapped_column(String(64), nullable=False)
    language: Mapped[str] = mapped_column(String(8), nullable=False)
    channel: Mapped[str] = mapped_column(String(32), nullable=False)
    agents_online: Mapped[bool] = mapped_column(default=False)  # at the moment of the handover
    summary: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    assignee: Mapped[str | None] = mapped_column(String(100))  # the agent's id (username, or key:<id>)
    assignee_name: Mapped[str | None] = mapped_column(String(100))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolution: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        UniqueConstraint("conversation_id", "message_id", name="uq_handoffs_turn"),
        Index("ix_handoffs_status", "status", "requested_at"),
        Index(
            "ux_handoffs_active",
            "conversation_id",
            unique=True,
            sqlite_where=text("status IN ('waiting', 'claimed')"),
            postgresql_where=text("status IN ('waiting', 'claimed')"),
        ),
    )


class TicketRow(Base):
    """A handover that found no agent online: the customer's contact details, so a person calls back.
    ``phone`` / ``email`` are kept as given (a ticket exists to reach the customer); an erasure removes it."""

    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
    )
    handoff_id: Mapped[int] = mapped_column(Integer, ForeignKey("handoffs.id", ondelete="CASCADE"), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # open, closed
    reason: Mapped[str] = mapped_column(String(64), nullable=False)
    language: Mapped[str] = mapped_column(String(8), nullable=False)
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(254))
    summary: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("handoff_id", name="uq_tickets_handoff"),
        Index("ix_tickets_status", "status", "created_at"),
        Index("ix_tickets_conversation_id", "conversation_id"),
    )


class AgentPresenceRow(Base):
    """When each agent's console was last seen; an agent is online while that is recent (every replica
    reads the same table)."""

    __tablename__ = "agent_presence"

    agent: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
