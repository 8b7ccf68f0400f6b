"""Builds the handover service from the runtime's parts and puts it into the pipeline."""

from __future__ import annotations

from typing import Any

from kefu.actions.runner import ToolRunner
from kefu.channels.base import ConversationHub, Outbox
from kefu.config import Settings
from kefu.core.pipeline import Pipeline
from kefu.handoff.canned import load_canned
from kefu.handoff.presence import PresenceStore
from kefu.handoff.service import HandoffMetrics, HandoffService, Texts
from kefu.handoff.store import HandoffStore
from kefu.handoff.summary import GatewaySummarizer
from kefu.packs.loader import Pack
from kefu.store.conversations import SqlConversationStore

ORDER_TOOL = "lookup_order"


def build_handoff(
    *,
    settings: Settings,
    pack: Pack,
    store: SqlConversationStore,
    hub: ConversationHub,
    outbox: Outbox,
    pipeline: Pipeline,
    texts: Texts,
    metrics: HandoffMetrics,
    tools: ToolRunner,
    gateway: Any = None,
) -> HandoffService:
    """The service, wired into ``pipeline`` as its handoff desk and turn announcer. With an LLM gateway,
    a model writes the agents' summaries (the gateway's ``stable`` model; none registered: extractive)."""
    service = HandoffService(
        store=HandoffStore(store.engine, store.scrub),
        presence=PresenceStore(store.engine),
        conversations=store,
        hub=hub,
        outbox=outbox,
        locks=pipeline.locks,
        texts=texts,
        metrics=metrics,
        online_window_s=settings.agent_online_s,
        summarizer=GatewaySummarizer(gateway, settings.llm_call_timeout_s) if gateway is not None else None,
        tools=tools,
        order_tool=ORDER_TOOL if ORDER_TOOL in tools.tools else None,
        canned=load_canned(pack.root),
    )
    pipeline.desk = service
    pipeline.announcer = service
    return service
