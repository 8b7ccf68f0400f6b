"""The handover queue's length, read from the store in the background (never on a scrape or a turn).

The queue is the handovers waiting for an agent (not yet claimed; kefu.handoff). Every replica reads the
same number from the shared database, so dashboards and alerts take ``max`` over replicas. One
``count(*)`` every ``every_s`` seconds per replica, on the ``handoffs(status, requested_at)`` index.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from kefu.store.models import HandoffRow

log = logging.getLogger(__name__)

QUEUE_REFRESH_S = 15.0  # Prometheus' usual scrape interval: a fresher number would not be seen


class QueueGauge(Protocol):
    def set_handoff_queue(self, length: int) -> None: ...


async def waiting_for_agent(engine: AsyncEngine) -> int:
    """Conversations handed over and not yet claimed by an agent."""
    query = select(func.count()).select_from(HandoffRow).where(HandoffRow.status == "waiting")
    async with engine.connect() as connection:
        return int((await connection.execute(query)).scalar_one())


async def watch_handoff_queue(engine: AsyncEngine, gauge: QueueGauge, every_s: float = QUEUE_REFRESH_S) -> None:
    while True:
        try:
            gauge.set_handoff_queue(await waiting_for_agent(engine))
        except Exception:  # the store may be down for a while: the gauge keeps its last value, the turns go on
            log.warning("could not read the handover queue's length", exc_info=True)
        await asyncio.sleep(every_s)
