"""Agent presence in the database, so every replica sees the same agents online: each console's heartbeat
(and its live socket) stamps ``seen_at``; an agent is online while that is within the window."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from kefu.handoff.domain import Agent, online_since
from kefu.store.models import AgentPresenceRow


class PresenceStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def seen(self, agent: Agent, now: datetime) -> None:
        """Stamp the agent as seen now (an upsert on either database)."""
        values = {"agent": agent.id, "name": agent.name[:100], "seen_at": now}
        dialect = self.engine.dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(AgentPresenceRow).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[AgentPresenceRow.agent], set_={"name": values["name"], "seen_at": now}
        )
        async with self.engine.begin() as connection:
            await connection.execute(statement)

    async def gone(self, agent: Agent) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(delete(AgentPresenceRow).where(AgentPresenceRow.agent == agent.id))

    async def online(self, now: datetime, window_s: float) -> list[tuple[str, str]]:
        """``(agent id, name)`` of every agent seen within ``window_s``."""
        query = (
            select(AgentPresenceRow.agent, AgentPresenceRow.name)
            .where(AgentPresenceRow.seen_at >= online_since(now, window_s))
            .order_by(AgentPresenceRow.agent)
        )
        async with self.engine.connect() as connection:
            return [(agent, name) for agent, name in (await connection.execute(query)).all()]
