"""The handover service: the pipeline's ``HandoffDesk`` and ``TurnAnnouncer``, and every agent action.

A handing-over turn asks ``handover`` (is anyone online; what to tell the customer if not), and once it
is stored ``turn_stored`` queues it (summary, ticket when nobody is online) and tells the consoles. Agent
actions take the conversation's lock (never between a turn's load and its commit), change the store in
one transaction, then publish on the hub; an agent's message is then sent through the ``Outbox`` (the
widget sees it on the hub, the customer's channel gets it by its delivery), still under the lock so two
messages of one agent reach the customer in the order they were sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from kefu.channels.base import AGENTS, ConversationHub, OutboundMessage, Outbox, conversation_topic
from kefu.core.protocols import ActionRunner, ConversationLocks, Handover
from kefu.core.types import DialogueState, InboundMessage, Locale, Owner, Parse, ToolCall, TurnResult, TurnToolContext
from kefu.handoff import events as live
from kefu.handoff.canned import CannedReply, canned_for
from kefu.handoff.domain import (
    CONTACT_NOTED,
    DEFAULT_TEMPLATES,
    RESOLUTIONS,
    Agent,
    AgentReply,
    Contact,
    ConversationNotFound,
    HandoffError,
    Note,
    QueueEntry,
    Summary,
    Ticket,
    notice_template,
)
from kefu.handoff.presence import PresenceStore
from kefu.handoff.store import HandoffStore
from kefu.handoff.summary import ConversationFacts, SummaryModel, extractive_summary, facts_from_events
from kefu.handoff.view import bot_part, timeline
from kefu.respond.templates import fill
from kefu.store.conversations import SqlConversationStore

log = logging.getLogger(__name__)
ORDERS_SHOWN = 8  # the most orders looked up for an agent's view of one conversation
# A conversation an agent owns with no open handover for this long was left by a replica that stopped
# between the handing-over turn and its queue entry (a younger one may be a turn still announcing itself).
ORPHAN_AFTER_S = 60.0


class UnknownResolution(HandoffError):
    status, code = 422, "unknown_resolution"


class HandoffMetrics(Protocol):
    def set_handoff_queue(self, length: int) -> None: ...

    def observe_handoff_wait(self, seconds: float) -> None: ...


class Texts(Protocol):
    """The pack's templates (``TemplateResponder.text``); raises KeyError for a template it lacks."""

    def text(self, key: str, locale: Locale, values: dict[str, Any] | None = None) -> str: ...


def _now() -> datetime:
    return datetime.now(UTC)


class HandoffService:
    def __init__(
        self,
        *,
        store: HandoffStore,
        presence: PresenceStore,
        conversations: SqlConversationStore,
        hub: ConversationHub,
        outbox: Outbox,
        locks: ConversationLocks,
        texts: Texts,
        metrics: HandoffMetrics,
        online_window_s: float,
        summarizer: SummaryModel | None = None,
        tools: ActionRunner | None = None,
        order_tool: str | None = None,
        canned: tuple[CannedReply, ...] = (),
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.store = store
        self.presence = presence
        self.conversations = conversations
        self.hub = hub
        self.outbox = outbox
        self.locks = locks
        self.texts = texts
        self.metrics = metrics
        self.online_window_s = online_window_s
        self.summarizer = summarizer
        self.tools = tools
        self.order_tool = order_tool
        self.canned_replies = canned
        self.clock = clock
        self._background: set[asyncio.Task[Any]] = set()  # model summaries being written

    # --- HandoffDesk: asked by the pipeline during a turn (which holds the conversation's lock) ---

    async def handover(self, message: InboundMessage, parse: Parse, reason: str, locale: Locale) -> Handover:
        online = bool(await self.presence.online(self.clock(), self.online_window_s))
        contact = Contact.from_entities(parse.entities)
        template = notice_template(online, contact)
        notice = self.text(template, locale, {"contact": contact.masked()}) if template else ""
        return Handover(reason, locale, online, notice)

    async def while_waiting(self, message: InboundMessage, parse: Parse, locale: Locale) -> str | None:
        contact = Contact.from_entities(parse.entities)
        if not contact.known:
            return None
        ticket = await self.store.add_contact(message.conversation_id, contact, self.clock())
        if ticket is None:
            return None
        await self.hub.publish(AGENTS, live.ticket_event("updated", ticket))
        return self.text(CONTACT_NOTED, locale, {"contact": contact.masked()})

    def text(self, key: str, locale: Locale, values: dict[str, Any]) -> str:
        try:
            return self.texts.text(key, locale, values)
        except KeyError:  # a pack written before handovers had notices: kefu's own wording
            return fill(DEFAULT_TEMPLATES[key][locale], values, locale)

    # --- TurnAnnouncer: after a turn is stored ---

    async def turn_stored(self, message: InboundMessage, result: TurnResult, handover: Handover | None) -> None:
        if handover is not None:
            await self._queue(message, result, handover)
        if result.owner != "agent":
            return
        topic = conversation_topic(message.conversation_id)
        stored_text = str(self.conversations.scrub("message_received", {"text": message.text}).get("text") or "")
        await self.hub.publish(
            topic,
            live.customer_message_event(
                message.conversation_id, message.message_id, stored_text, result.owner, message.received_at
            ),
        )
        if result.reply.text:
            await self.hub.publish(topic, {"event": "message", **OutboundMessage.from_turn(message, result).to_dict()})

    async def _queue(self, message: InboundMessage, result: TurnResult, handover: Handover) -> None:
        cid = message.conversation_id
        facts = await self._facts(cid, handover.locale)
        summary = extractive_summary(facts, result.intent.name)
        now = self.clock()
        opened = await self.store.open(
            conversation_id=cid,
            message_id=message.message_id,
            reason=handover.reason,
            language=handover.locale,
            channel=message.channel,
            agents_online=handover.agents_online,
            summary=summary,
            contact=Contact.from_entities(result.entities),
            now=now,
        )
        if not opened.created:
            return
        await self.hub.publish(conversation_topic(cid), live.owner_event(cid, "agent", None, handover.reason, now))
        await self.hub.publish(AGENTS, live.queue_event("added", opened.entry, now))
        if opened.ticket is not None:
            await self.hub.publish(AGENTS, live.ticket_event("opened", opened.ticket))
        await self._refresh_gauge()
        if self.summarizer is not None and facts.transcript:
            task = asyncio.create_task(self._model_summary(opened.entry, facts, summary), name=f"kefu-summary-{cid}")
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _facts(self, conversation_id: str, locale: Locale) -> ConversationFacts:
        events = await self.conversations.events(conversation_id)
        return facts_from_events(((kind, payload) for _seq, kind, _mid, payload in events), locale)

    async def _model_summary(self, entry: QueueEntry, facts: ConversationFacts, extractive: Summary) -> None:
        assert self.summarizer is not None
        try:
            text = await self.summarizer.summarize(facts.transcript, facts.language, entry.conversation_id)
            if not text:
                return
            summary = Summary(text, "llm", extractive.intent, extractive.orders, extractive.key_sentences)
            updated = await self.store.set_summary(entry.id, summary)
        except Exception:  # the extractive summary stands
            log.warning("model summary failed", exc_info=True, extra={"conversation_id": entry.conversation_id})
            return
        if updated is not None:
            await self.hub.publish(AGENTS, live.queue_event("updated", updated, self.clock()))

    async def settle(self) -> None:
        """Wait for the model summaries being written (tests; shutdown)."""
        if self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await self.settle()

    # --- agent actions ---

    async def claim(self, conversation_id: str, agent: Agent) -> QueueEntry:
        async with self.locks.hold(conversation_id):
            now = self.clock()
            entry, claimed_now = await self.store.claim(conversation_id, agent, now)
        if claimed_now:
            self.metrics.observe_handoff_wait(entry.waiting_s(now))
            await self.hub.publish(
                conversation_topic(conversation_id),
                live.owner_event(conversation_id, "agent", agent.name, "claimed", now),
            )
            await self.hub.publish(AGENTS, live.queue_event("claimed", entry, now))
            await self._refresh_gauge()
        return entry

    async def send(self, conversation_id: str, agent: Agent, message_id: str, text: str) -> AgentReply:
        async with self.locks.hold(conversation_id):
            delivered = await self.store.send(conversation_id, agent, message_id, text, self.clock())
            reply = delivered.reply
            if reply.replayed:
                return reply
            outbound = OutboundMessage(
                conversation_id=conversation_id,
                message_id=message_id,
                in_reply_to=None,
                text=text,
                handoff=True,
                owner="agent",
                role="agent",
                channel=delivered.channel,
                user_id=delivered.user_id,
                ts=reply.ts,
            )
            sent = await self.outbox.send(outbound)
        return AgentReply(reply.conversation_id, message_id, text, agent.name, reply.ts, delivered=sent)

    async def note(self, conversation_id: str, agent: Agent, text: str) -> Note:
        async with self.locks.hold(conversation_id):
            note = await self.store.note(conversation_id, agent, text, self.clock())
        await self.hub.publish(AGENTS, live.note_event(conversation_id, note))
        return note

    async def give_back(self, conversation_id: str, agent: Agent) -> QueueEntry:
        return await self._release(conversation_id, agent, None)

    async def close_conversation(self, conversation_id: str, agent: Agent, resolution: str) -> QueueEntry:
        if resolution not in RESOLUTIONS:
            raise UnknownResolution(f"resolution must be one of: {', '.join(RESOLUTIONS)}")
        return await self._release(conversation_id, agent, resolution)

    async def _release(self, conversation_id: str, agent: Agent, resolution: str | None) -> QueueEntry:
        async with self.locks.hold(conversation_id):
            now = self.clock()
            entry = await self.store.release(conversation_id, agent, now, resolution=resolution)
        owner: Owner = "closed" if resolution is not None else "bot"
        reason = "closed_by_agent" if resolution is not None else "returned_by_agent"
        await self.hub.publish(
            conversation_topic(conversation_id), live.owner_event(conversation_id, owner, None, reason, now)
        )
        await self.hub.publish(AGENTS, live.queue_event("closed" if resolution is not None else "returned", entry, now))
        return entry

    # --- presence ---

    async def seen(self, agent: Agent) -> None:
        await self.presence.seen(agent, self.clock())

    async def gone(self, agent: Agent) -> None:
        await self.presence.gone(agent)

    async def online_agents(self) -> list[dict[str, str]]:
        return [{"id": a, "name": n} for a, n in await self.presence.online(self.clock(), self.online_window_s)]

    # --- reading ---

    async def queue(self) -> dict[str, Any]:
        await self._requeue_orphans()
        now = self.clock()
        waiting = await self.store.entries(["waiting"])
        claimed = await self.store.entries(["claimed"])
        return {
            "waiting": [e.to_dict(now) for e in waiting],
            "claimed": [e.to_dict(now) for e in claimed],
            "online_agents": await self.online_agents(),
        }

    async def view(self, conversation_id: str) -> dict[str, Any]:
        """Everything an agent needs beside the chat: transcript, notes, the handover, tickets, orders."""
        found = await self.store.view_events(conversation_id)
        if found is None:
            raise ConversationNotFound(f"no conversation {conversation_id!r}")
        conversation, events = found
        locale: Locale = "en" if conversation.locale == "en" else "zh"
        lines = timeline(events)
        entry = await self.store.latest(conversation_id)
        facts = facts_from_events(((e.type, e.payload) for e in events), locale)
        customer_key = conversation.user_id or f"conversation:{conversation_id}"  # as InboundMessage.customer_key
        now = self.clock()
        state = {"agent": "handoff", "closed": "closed"}.get(
            conversation.owner, DialogueState.from_dict(conversation.dialogue).name
        )
        return {
            "conversation_id": conversation_id,
            "owner": conversation.owner,
            "state": state,
            "user_id": conversation.user_id,
            "channel": conversation.channel,
            "locale": conversation.locale,
            "handoff": entry.to_dict(now) if entry is not None else None,
            "messages": lines.messages,
            "bot_transcript": bot_part(lines.messages, entry.requested_at if entry is not None else None),
            "notes": [n.to_dict() for n in lines.notes],
            "tickets": [t.to_dict() for t in await self.store.tickets(None, conversation_id=conversation_id)],
            "orders": await self.orders(conversation_id, customer_key, locale, facts.orders),
        }

    async def tickets(self, status: str | None) -> list[Ticket]:
        return await self.store.tickets(status)

    def canned(self, locale: Locale) -> list[dict[str, str]]:
        return canned_for(self.canned_replies, locale)

    async def orders(
        self, conversation_id: str, customer_key: str, locale: Locale, order_ids: Sequence[str]
    ) -> list[dict[str, Any]]:
        """The orders the conversation named, looked up for this customer by the pack's order tool."""
        if self.tools is None or self.order_tool is None or not order_ids:
            return []
        calls = [ToolCall(self.order_tool, {"order_id": oid}, oid) for oid in order_ids[:ORDERS_SHOWN]]
        context = TurnToolContext(customer_key, locale, conversation_id, "", None)
        results = await self.tools.run(calls, context)
        return [
            {
                "order_id": r.call.args["order_id"],
                "found": bool(r.ok and r.data.get("found", True)),
                **({"order": r.data} if r.ok else {"error": r.error}),
            }
            for r in results
        ]

    async def _refresh_gauge(self) -> None:
        try:
            self.metrics.set_handoff_queue(await self.store.waiting_count())
        except Exception:  # the background watcher sets it again shortly
            log.warning("could not count the handover queue", exc_info=True)

    async def _requeue_orphans(self) -> None:
        """A replica that stopped between a handing-over turn and its queue entry left a conversation an
        agent owns with no handover: queue it now (its reason is lost; its summary is rebuilt)."""
        for cid in await self.store.orphans(quiet_since=self.clock() - timedelta(seconds=ORPHAN_AFTER_S)):
            snapshot = await self.conversations.load(cid)
            if snapshot is None or snapshot.owner != "agent":
                continue
            locale: Locale = snapshot.locale or "zh"
            facts = await self._facts(cid, locale)
            now = self.clock()
            opened = await self.store.open(
                conversation_id=cid,
                message_id=f"requeued:{now.timestamp():.0f}",
                reason="requeued",
                language=locale,
                channel=snapshot.channel,
                agents_online=True,
                summary=extractive_summary(facts),
                contact=Contact(),
                now=now,
            )
            if opened.created:
                log.warning("requeued a handed-over conversation without a queue entry", extra={"conversation_id": cid})
                await self.hub.publish(AGENTS, live.queue_event("added", opened.entry, now))
