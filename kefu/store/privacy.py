"""Erasure and retention: remove every record of a user or a conversation, purge old conversations, audit both.

What "every record" is, is the list ``ERASE_STEPS``: per table, the column that ties a row to a customer,
and whether that column holds a conversation id or a customer key (the user id, or
``conversation:<id>`` for an anonymous conversation, as ``InboundMessage.customer_key`` builds it).
A table a later issue adds is one more line there (tickets and handoffs are); the conversations row comes last.

Rows are deleted child first instead of relying on ``ON DELETE CASCADE``: SQLite enforces foreign keys only
when a connection turns them on, and a table keyed by conversation without a foreign key (``llm_calls``)
would be left behind by a cascade anyway.

An erasure is one transaction, audit row included. A retention purge goes in batches (a transaction each,
so a large purge never holds a long lock); its one audit row is written with the first batch and brought
up to date by each later one, so whatever was committed is audited. A turn in flight on an erased
conversation fails its optimistic ``last_seq`` check and stores nothing; the next message starts afresh.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import column, delete, func, insert, select, table, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kefu.guard.pseudonym import Pseudonymizer
from kefu.store.models import ConversationRow, PrivacyAuditRow

Action = Literal["erase_user", "erase_conversation", "purge"]
Progress = Callable[[int, int], None]  # (conversations done, conversations in all)
CHUNK = 500  # ids per IN (...) list, well under SQLite's and asyncpg's parameter limits
ANONYMOUS_CUSTOMER = "conversation:{}"  # InboundMessage.customer_key of a message without a user id


@dataclass(frozen=True, slots=True)
class EraseStep:
    table: str
    column: str
    key: Literal["conversation", "customer"]  # what the column holds


ERASE_STEPS: tuple[EraseStep, ...] = (
    EraseStep("events", "conversation_id", "conversation"),
    EraseStep("turns", "conversation_id", "conversation"),
    EraseStep("feedback", "conversation_id", "conversation"),
    EraseStep("llm_calls", "conversation_id", "conversation"),
    EraseStep("demo_order_changes", "customer_key", "customer"),
    EraseStep("demo_card_changes", "customer_key", "customer"),
    EraseStep("tickets", "conversation_id", "conversation"),  # before handoffs: a ticket belongs to one
    EraseStep("handoffs", "conversation_id", "conversation"),
    EraseStep("conversations", "id", "conversation"),  # last: the rows above hang off it
)


@dataclass(frozen=True, slots=True)
class Erasure:
    """What an erasure or purge removed (or, with ``dry_run``, would remove), per table."""

    action: Action
    subject: str  # a pseudonym, or a purge's cutoff; never a raw id
    counts: dict[str, int]
    dry_run: bool

    @property
    def found(self) -> bool:
        return any(self.counts.values())

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "subject": self.subject,
            "dry_run": self.dry_run,
            "found": self.found,
            "total": self.total,
            "counts": dict(self.counts),
        }


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


async def _erase(
    connection: AsyncConnection, conversations: Sequence[str], customers: Sequence[str], dry_run: bool
) -> dict[str, int]:
    counts: dict[str, int] = {}
    for step in ERASE_STEPS:
        target = table(step.table, column(step.column))
        values = conversations if step.key == "conversation" else customers
        removed = 0
        for chunk in _chunks(values):
            where = target.c[step.column].in_(chunk)
            if dry_run:
                removed += (
                    await connection.execute(select(func.count()).select_from(target).where(where))
                ).scalar_one()
            else:
                removed += (await connection.execute(delete(target).where(where))).rowcount
        counts[step.table] = counts.get(step.table, 0) + removed
    return counts


async def _write_audit(connection: AsyncConnection, erasure: Erasure, actor: str, row_id: int | None) -> int:
    if row_id is not None:
        await connection.execute(
            update(PrivacyAuditRow).where(PrivacyAuditRow.id == row_id).values(counts=erasure.counts)
        )
        return row_id
    inserted = await connection.execute(
        insert(PrivacyAuditRow)
        .values(
            at=datetime.now(UTC),
            actor=actor[:100],
            action=erasure.action,
            subject=erasure.subject,
            counts=erasure.counts,
            dry_run=erasure.dry_run,
        )
        .returning(PrivacyAuditRow.id)
    )
    return int(inserted.scalar_one())


async def _conversations(
    connection: AsyncConnection, condition: Any, *, lock: bool, limit: int | None = None
) -> list[str]:
    query = select(ConversationRow.id).where(condition).order_by(ConversationRow.id).limit(limit)
    if lock:  # PostgreSQL: a turn appending to one of them waits, then fails its last_seq check
        query = query.with_for_update()
    return list((await connection.execute(query)).scalars())


async def erase_user(
    engine: AsyncEngine, user_id: str, pseudonymize: Pseudonymizer, *, actor: str, dry_run: bool = False
) -> Erasure:
    """Every conversation of ``user_id`` with all that hangs off it, and the demo shop's and bank's changes
    made for that customer, in one audited transaction. An unknown user erases nothing (``found`` False)."""
    async with engine.begin() as connection:
        conversations = await _conversations(connection, ConversationRow.user_id == user_id, lock=not dry_run)
        # A later message without a user id acts as the anonymous customer of its conversation.
        customers = [user_id, *(ANONYMOUS_CUSTOMER.format(c) for c in conversations)]
        counts = await _erase(connection, conversations, customers, dry_run)
        erasure = Erasure("erase_user", pseudonymize(user_id, "user"), counts, dry_run)
        await _write_audit(connection, erasure, actor, None)
    return erasure


async def erase_conversation(
    engine: AsyncEngine, conversation_id: str, pseudonymize: Pseudonymizer, *, actor: str, dry_run: bool = False
) -> Erasure:
    """One conversation (any user's, or an anonymous one) and the changes its anonymous customer made.
    A signed-in user's changes belong to the user, not to one of their conversations: ``erase_user``."""
    async with engine.begin() as connection:
        conversations = await _conversations(connection, ConversationRow.id == conversation_id, lock=not dry_run)
        customers = [ANONYMOUS_CUSTOMER.format(conversation_id)]
        counts = await _erase(connection, conversations, customers, dry_run)
        erasure = Erasure("erase_conversation", pseudonymize(conversation_id, "conversation"), counts, dry_run)
        await _write_audit(connection, erasure, actor, None)
    return erasure


def retention_cutoff(now: datetime, days: int) -> datetime:
    """Conversations last active before this instant (UTC) are expired. A naive ``now`` is taken as UTC."""
    aware = now if now.tzinfo else now.replace(tzinfo=UTC)
    return aware.astimezone(UTC) - timedelta(days=days)


async def purge(
    engine: AsyncEngine,
    older_than_days: int,
    *,
    now: datetime,
    actor: str,
    dry_run: bool = False,
    batch_size: int = 500,
    progress: Progress | None = None,
    audit_if_empty: bool = True,
) -> Erasure:
    """Erase every conversation whose last activity is more than ``older_than_days`` before ``now``, in
    batches of ``batch_size`` conversations per transaction. ``audit_if_empty`` False: a purge that finds
    nothing leaves no audit row (the periodic one, so an idle server does not fill the audit)."""
    if older_than_days < 1:
        raise ValueError("older_than_days must be at least 1")
    cutoff = retention_cutoff(now, older_than_days)
    expired = ConversationRow.updated_at < cutoff
    async with engine.connect() as connection:
        total = (
            await connection.execute(select(func.count()).select_from(ConversationRow).where(expired))
        ).scalar_one()
    subject = f"before:{cutoff.isoformat(timespec='seconds')}"
    totals = {step.table: 0 for step in ERASE_STEPS}
    audit_id: int | None = None
    done, after = 0, ""  # keyset paging by id: every batch starts after the last one (dry runs delete nothing)
    if progress is not None:
        progress(0, total)
    while True:
        async with engine.begin() as connection:
            # One more than a batch: whether another batch follows, without counting again.
            batch = await _conversations(
                connection, expired & (ConversationRow.id > after), lock=not dry_run, limit=batch_size + 1
            )
            more = len(batch) > batch_size
            batch = batch[:batch_size]
            customers = [ANONYMOUS_CUSTOMER.format(c) for c in batch]
            for name, count in (await _erase(connection, batch, customers, dry_run)).items():
                totals[name] += count
            erasure = Erasure("purge", subject, dict(totals), dry_run)
            if batch or (audit_id is None and audit_if_empty):
                audit_id = await _write_audit(connection, erasure, actor, audit_id)
        done += len(batch)
        if progress is not None:
            progress(done, max(total, done))
        if not more:
            return erasure
        after = batch[-1]


async def purge_expired(engine: AsyncEngine, days: int, now: datetime) -> Erasure | None:
    """The retention task: purge what is older than ``days`` (``KEFU_RETENTION_DAYS``); None when it is 0."""
    if days <= 0:
        return None
    return await purge(engine, days, now=now, actor="retention", audit_if_empty=False)


async def audit_log(engine: AsyncEngine, limit: int = 100) -> list[dict[str, Any]]:
    """The privacy audit, newest first."""
    async with engine.connect() as connection:
        rows = (
            await connection.execute(select(PrivacyAuditRow).order_by(PrivacyAuditRow.id.desc()).limit(limit))
        ).all()
    return [
        {
            "id": r.id,
            "at": (r.at if r.at.tzinfo else r.at.replace(tzinfo=UTC)).isoformat(),
            "actor": r.actor,
            "action": r.action,
            "subject": r.subject,
            "counts": r.counts,
            "dry_run": bool(r.dry_run),
        }
        for r in rows
    ]
