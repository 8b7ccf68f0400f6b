"""The pipeline: the only place that knows the order of a turn's steps (see ARCHITECTURE.md)."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from typing import Protocol

from kefu.core.events import guard_payload, model_payload, parse_payload, tool_event
from kefu.core.protocols import (
    ActionRunner,
    ConversationLocks,
    ConversationStore,
    DialoguePolicy,
    Guard,
    HandoffDesk,
    Handover,
    IntentArbiter,
    ReplyWriter,
    Responder,
    TextSink,
    TurnAnnouncer,
    Understanding,
)
from kefu.core.types import (
    ConversationSnapshot,
    Decision,
    DialogueState,
    DuplicateMessage,
    Event,
    GuardVerdict,
    InboundMessage,
    Locale,
    MessageIdConflict,
    Owner,
    Parse,
    Reply,
    StaleConversation,
    StoredTurn,
    TurnResult,
    TurnToolContext,
    Utterance,
    WriteRequest,
)

log = logging.getLogger(__name__)

FAILURE_TEMPLATE = "handoff_error"  # said when a turn fails inside kefu; every pack has it
MAX_TOOL_ROUNDS = 8
STALE_RETRIES = 6  # a flow that keeps calling tools past this is a bug in the flow, not a reason to hang
HISTORY_MESSAGES = 12  # the most a reply writer sees of the transcript (it budgets tokens itself)
# Seconds per stage of the turn this task is handling, for its log line (a turn's stages run in its task).
_STAGE_SECONDS: ContextVar[dict[str, float] | None] = ContextVar("kefu_turn_stage_seconds", default=None)


class TurnObserver(Protocol):
    """Receives timings and outcomes (metrics live outside the core)."""

    def stage(self, name: str, seconds: float) -> None: ...

    def turn(self, channel: str, outcome: str, intent: str, confidence: float) -> None: ...

    def recorded(self, channel: str, events: Sequence[Event]) -> None:
        """The events a turn committed (guard verdicts, handovers, failures... for counting)."""


class _NullObserver:
    def stage(self, name: str, seconds: float) -> None:
        return None

    def turn(self, channel: str, outcome: str, intent: str, confidence: float) -> None:
        return None

    def recorded(self, channel: str, events: Sequence[Event]) -> None:
        return None


class Pipeline:
    """Turns one ``InboundMessage`` into one ``TurnResult``, recording every step as an event."""

    def __init__(
        self,
        *,
        locks: ConversationLocks,
        guard: Guard,
        nlu: Understanding,
        dialogue: DialoguePolicy,
        actions: ActionRunner,
        responder: Responder,
        store: ConversationStore,
        observer: TurnObserver | None = None,
        arbiter: IntentArbiter | None = None,
        writer: ReplyWriter | None = None,
        deadline_s: float = 8.0,
        desk: HandoffDesk | None = None,
        announcer: TurnAnnouncer | None = None,
    ) -> None:
        self.locks = locks
        self.guard = guard
        self.nlu = nlu
        self.dialogue = dialogue
        self.actions = actions
        self.responder = responder
        self.store = store
        self.observer: TurnObserver = observer or _NullObserver()
        self.arbiter = arbiter
        self.writer = writer
        self.deadline_s = deadline_s
        # The people's side of handovers (kefu.handoff), and who hears of stored turns (agent consoles).
        self.desk = desk
        self.announcer = announcer

    @contextmanager
    def _timed(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            seconds = time.perf_counter() - started
            self.observer.stage(stage, seconds)
            spent = _STAGE_SECONDS.get()
            if spent is not None:
                spent[stage] = spent.get(stage, 0.0) + seconds

    async def handle(self, message: InboundMessage, on_text: TextSink | None = None) -> TurnResult:
        """``on_text`` receives the reply's text as a model writes it (only when one does; the caller
        sends the finished reply otherwise)."""
        token = _STAGE_SECONDS.set({})
        try:
            return await self._handle(message, on_text)
        finally:
            _STAGE_SECONDS.reset(token)

    async def _handle(self, message: InboundMessage, on_text: TextSink | None) -> TurnResult:
        started = time.perf_counter()
        deadline = time.monotonic() + self.deadline_s
        async with self.locks.hold(message.conversation_id):
            stored, snapshot = await self.store.open_turn(message.conversation_id, message.message_id)
            if stored is not None:
                return self._replay(message, stored)
            try:
                for attempt in range(1, STALE_RETRIES + 1):
                    try:
                        result = await self._turn(message, snapshot, deadline, on_text)
                        break
                    except StaleConversation:
                        # Another writer without our lock (a replica without Redis, an unlocked admin
                        # write) moved the conversation on: redo the turn on its new state.
                        if attempt == STALE_RETRIES:
                            raise
                        # A little random wait so two replicas racing for one conversation fall out of step.
                        await asyncio.sleep(random.uniform(0, 0.005 * attempt))
                        stored, snapshot = await self.store.open_turn(message.conversation_id, message.message_id)
                        if stored is not None:
                            return self._replay(message, stored)
            except DuplicateMessage:
                # Another process stored this message first (no shared lock): answer with its reply.
                stored = await self.store.find_turn(message.conversation_id, message.message_id)
                if stored is None:
                    raise
                return self._replay(message, stored)
        elapsed = time.perf_counter() - started
        self.observer.stage("total", elapsed)
        # No message text here: logs must not hold what customers type (it may carry personal data).
        log.info(
            "turn",
            extra={
                "conversation_id": message.conversation_id,
                "message_id": message.message_id,
                "channel": message.channel,
                "intent": result.intent.name,
                "confidence": round(result.intent.confidence, 3),
                "state": result.state,
                "owner": result.owner,
                "handoff": result.handoff,
                "ms": round(elapsed * 1000, 2),
                "stages_ms": {k: round(v * 1000, 2) for k, v in (_STAGE_SECONDS.get() or {}).items()},
            },
        )
        outcome = "handoff" if result.handoff else result.owner
        self.observer.turn(message.channel, outcome, result.intent.name, result.intent.confidence)
        return result

    def _replay(self, message: InboundMessage, stored: StoredTurn) -> TurnResult:
        if stored.request_sha256 != message.request_sha256:
            raise MessageIdConflict(
                f"message_id {message.message_id!r} was already used in this conversation for a different message"
            )
        result = stored.result
        self.observer.turn(message.channel, "replayed", result.intent.name, result.intent.confidence)
        return result

    async def _turn(
        self,
        message: InboundMessage,
        existing: ConversationSnapshot | None,
        deadline: float,
        on_text: TextSink | None,
    ) -> TurnResult:
        snapshot = existing or ConversationSnapshot(
            conversation_id=message.conversation_id,
            owner="bot",
            dialogue=DialogueState(),
            last_seq=0,
            user_id=message.user_id,
            channel=message.channel,
            locale=message.locale,
        )
        mid = message.message_id
        events: list[Event] = [
            Event(
                "message_received",
                {
                    "text": message.text,
                    "user_id": message.user_id,
                    "channel": message.channel,
                    "received_at": message.received_at.isoformat(),
                },
                mid,
            )
        ]

        with self._timed("guard"):
            verdict = await self.guard.inbound(message.text)
        events.append(
            Event(
                "guard_inbound",
                guard_payload(verdict, inbound=True),
                mid,
            )
        )

        with self._timed("nlu"):
            parse = self.nlu.parse(message.text, locale_hint=message.locale or snapshot.locale)
        locale: Locale = parse.language
        events.append(Event("nlu_parsed", parse_payload(parse), mid))
        # A message that tries to steer a model never reaches one (the flows still answer it).
        models_allowed = not verdict.injection and verdict.action in ("allow", "flag")
        if models_allowed and self.arbiter is not None and self.arbiter.wants(parse):
            with self._timed("intent_llm"):
                # A model never gets the customer's PII: the redacted text is enough to choose an intent.
                chosen = await self.arbiter.choose(verdict.redacted_text or message.text, parse.ranking)
            if chosen is not None:
                events.append(Event("intent_arbitrated", {"from": parse.intent.name, "to": chosen.name}, mid))
                parse = replace(parse, intent=chosen)

        owner: Owner = snapshot.owner
        if owner == "agent":
            # A person owns the conversation: the bot records the message and stays silent (only while
            # nobody has claimed it may the desk acknowledge contact details left for a ticket).
            said = await self._while_waiting(message, parse, locale)
            result = TurnResult(
                conversation_id=message.conversation_id,
                message_id=mid,
                reply=Reply(text=said or ""),
                intent=parse.intent,
                entities=parse.entities,
                state="handoff",
                handoff=True,
                owner="agent",
            )
            if said:
                events.append(Event("reply_sent", {"text": said, "locale": locale, "reason": "ticket_contact"}, mid))
            else:
                events.append(Event("bot_silent", {"reason": "agent_owns_conversation"}, mid))
            await self.store.commit_turn(message, snapshot, events, result)
            self.observer.recorded(message.channel, events)
            await self._announce(message, result, None)
            return result
        if owner == "closed":
            events.append(Event("owner_changed", {"from": "closed", "to": "bot", "reason": "customer_wrote"}, mid))
            owner = "bot"

        try:
            if verdict.action in ("block", "handoff"):
                decision = _guarded(verdict, snapshot.dialogue)
                events.append(Event("guard_decision", {"action": verdict.action, "reason": verdict.reason}, mid))
            else:
                decision = await self._decide(snapshot.dialogue, parse, message, locale, events)
            with self._timed("respond"):
                reply = self.responder.render(decision, parse, locale)
        except Exception as exc:  # a broken flow or template must not lose the customer's message
            log.exception("turn failed; handing over", extra={"conversation_id": message.conversation_id})
            events.append(Event("turn_failed", {"error": f"{type(exc).__name__}: {exc}"}, mid))
            decision = Decision(
                state=DialogueState(),
                utterances=[Utterance(FAILURE_TEMPLATE)],
                handoff=True,
                handoff_reason="internal_error",
            )
            reply = self.responder.render(decision, parse, locale)
        model = None
        template_reply = reply
        assigned = self.writer.assignment(message.customer_key, locale) if self.writer is not None else None
        # No model for this user and language (none registered, or none that speaks it): skip the writer,
        # and with it the transcript read.
        wanted = self.writer is not None and assigned is not None and self.writer.wants(decision, locale)
        if wanted and not models_allowed:
            events.append(Event("llm_skipped", {"reason": verdict.reason or "guard"}, mid))
        elif self.writer is not None and wanted:
            history = await self.store.transcript(message.conversation_id) or []
            request = WriteRequest(
                decision=decision,
                parse=parse,
                locale=locale,
                template_reply=reply,
                conversation_id=message.conversation_id,
                message_id=mid,
                user_key=message.customer_key,
                history=tuple(history[-HISTORY_MESSAGES:]),
                deadline=deadline,
            )
            try:
                with self._timed("llm"):
                    written = await self.writer.write(request, on_text)
            except Exception as exc:  # a writer bug must cost the model's answer, not the customer's turn
                log.exception("reply writer failed; the template reply stands")
                events.append(Event("llm_reply", {"outcome": "error", "error": f"{type(exc).__name__}: {exc}"}, mid))
            else:
                events.extend(Event(e.type, e.payload, mid) for e in written.events)
                reply, model = written.reply, written.model
                if written.handoff:
                    decision = replace(decision, handoff=True, handoff_reason="llm_no_answer", close=False)
        with self._timed("guard"):
            outbound = await self.guard.outbound(reply.text, written_by_model=model is not None)
        events.append(
            Event(
                "guard_outbound",
                guard_payload(outbound, inbound=False),
                mid,
            )
        )
        if model is not None and outbound.action == "block":
            # The model's reply failed the final check: the template answer is sent instead.
            events.append(Event("llm_reply", {"outcome": "withdrawn", "reason": outbound.reason}, mid))
            reply, model = template_reply, None

        new_owner: Owner = "agent" if decision.handoff else ("closed" if decision.close else "bot")
        handover: Handover | None = None
        if new_owner != owner:
            reason = decision.handoff_reason or ("resolved" if decision.close else "bot")
            events.append(Event("owner_changed", {"from": owner, "to": new_owner, "reason": reason}, mid))
            if new_owner == "agent":
                handover = await self._handover(message, parse, reason, locale)
        if handover is not None:
            if handover.notice:  # nobody is online: the customer hears so, and how they will be reached
                reply = replace(reply, text="\n".join(t for t in (reply.text, handover.notice) if t))
            payload = {
                "reason": handover.reason,
                "agents_online": handover.agents_online,
                "notice": bool(handover.notice),
            }
            events.append(Event("handover", payload, mid))
        state_name = {"agent": "handoff", "closed": "closed"}.get(new_owner, decision.state.name)
        result = TurnResult(
            conversation_id=message.conversation_id,
            message_id=mid,
            reply=reply,
            intent=parse.intent,
            entities=parse.entities,
            state=state_name,
            handoff=decision.handoff,
            owner=new_owner,
            model=model,
        )
        events.append(
            Event(
                "reply_sent",
                {
                    "text": reply.text,
                    "citations": [c.id for c in reply.citations],
                    "quick_replies": list(reply.quick_replies),
                    "locale": locale,
                    "model": model_payload(model),
                    # The A/B arm this user is on, for every turn (the model above is who wrote this reply).
                    "assigned": model_payload(assigned),
                },
                mid,
            )
        )
        next_dialogue = DialogueState() if new_owner != "bot" else decision.state
        updated = replace(snapshot, owner=new_owner, dialogue=next_dialogue, locale=locale)
        with self._timed("store"):
            await self.store.commit_turn(message, updated, events, result)
        self.observer.recorded(message.channel, events)
        await self._announce(message, result, handover)
        return result

    async def _handover(self, message: InboundMessage, parse: Parse, reason: str, locale: Locale) -> Handover | None:
        if self.desk is None:
            return None
        try:
            return await self.desk.handover(message, parse, reason, locale)
        except Exception:  # the handover still happens; only the "nobody online" notice is lost
            log.exception("handoff desk failed", extra={"conversation_id": message.conversation_id})
            return None

    async def _while_waiting(self, message: InboundMessage, parse: Parse, locale: Locale) -> str | None:
        if self.desk is None:
            return None
        try:
            return await self.desk.while_waiting(message, parse, locale)
        except Exception:  # silence is the safe answer while a person owns the conversation
            log.exception("handoff desk failed", extra={"conversation_id": message.conversation_id})
            return None

    async def _announce(self, message: InboundMessage, result: TurnResult, handover: Handover | None) -> None:
        if self.announcer is None:
            return
        try:
            await self.announcer.turn_stored(message, result, handover)
        except Exception:  # the turn is stored and answered; a console missing it live reloads it
            log.exception("turn announcer failed", extra={"conversation_id": message.conversation_id})

    async def _decide(
        self,
        state: DialogueState,
        parse: Parse,
        message: InboundMessage,
        locale: Locale,
        events: list[Event],
    ) -> Decision:
        mid = message.message_id
        before = state.name
        with self._timed("dialogue"):
            decision = self.dialogue.step(state, parse)
        context = TurnToolContext(message.customer_key, locale, message.conversation_id, parse.text, parse.vector)
        rounds = 0
        while decision.tool_calls:
            rounds += 1
            if rounds > MAX_TOOL_ROUNDS:
                raise RuntimeError(f"flow {decision.state.flow!r} called tools more than {MAX_TOOL_ROUNDS} times")
            with self._timed("tools"):
                results = await self.actions.run(decision.tool_calls, context)
            events.extend(tool_event(r, mid) for r in results)
            with self._timed("dialogue"):
                decision = self.dialogue.resume(decision, results, parse)
        events.append(
            Event(
                "dialogue_step",
                {
                    "from": before,
                    "to": decision.state.name,
                    "trace": decision.trace,
                    "slots": decision.state.slots,
                    "utterances": [u.template for u in decision.utterances],
                    "handoff": decision.handoff,
                    "handoff_reason": decision.handoff_reason,
                    "close": decision.close,
                },
                mid,
            )
        )
        return decision


def _guarded(verdict: GuardVerdict, state: DialogueState) -> Decision:
    """The turn the safety policy answers itself: a polite refusal that leaves the flow where it was, or a
    handover to a person."""
    if verdict.action == "handoff":
        return Decision(
            state=DialogueState(),
            utterances=[Utterance("guard_handoff")],
            handoff=True,
            handoff_reason=verdict.reason or "guard",
        )
    template = "guard_injection" if verdict.reason == "injection" else "guard_blocked"
    return Decision(state=state, utterances=[Utterance(template)])
