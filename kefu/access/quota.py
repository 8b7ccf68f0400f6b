"""The LLM token quota per conversation: model tokens (prompt + completion) already spent, from the
per-call accounting in ``llm_calls`` (kefu.llm.registry). The reply writer asks before calling a model and
answers from the templates once a conversation is over its quota."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from kefu.store.models import LlmCallRow


class LlmTokenQuota:
    def __init__(self, engine: AsyncEngine, max_tokens_per_conversation: int) -> None:
        self.engine = engine
        self.max_tokens = max_tokens_per_conversation  # 0: no quota

    async def tokens_used(self, conversation_id: str) -> int:
        total = func.coalesce(func.sum(LlmCallRow.prompt_tokens + LlmCallRow.completion_tokens), 0)
        async with self.engine.connect() as conn:
            used = await conn.scalar(select(total).where(LlmCallRow.conversation_id == conversation_id))
        return int(used or 0)

    async def exhausted(self, conversation_id: str) -> bool:
        """True once the conversation has used its quota; never asks the database when there is none."""
        return self.max_tokens > 0 and await self.tokens_used(conversation_id) >= self.max_tokens
