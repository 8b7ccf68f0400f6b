"""The grounded LLM writer: a knowledge answer written by the model from the retrieved passages, with
numbered citations, streamed sentence by sentence once each sentence passed the grounding and safety
checks. Flow replies that state facts from tools (order status, refunds) stay with the templates.

When no model answers in time, or its first sentence is not supported by the passages, the template
(extractive) reply stands. When the model says the passages do not answer, the customer is told so and
handed to a colleague."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kefu.core.events import model_payload, tool_event
from kefu.core.protocols import ActionRunner, TextSink, Tool
from kefu.core.types import (
    Decision,
    Event,
    Locale,
    ModelInfo,
    Reply,
    ToolCall,
    ToolResult,
    TurnToolContext,
    Utterance,
    WriteRequest,
    Written,
)
from kefu.guard.placeholders import Placeholders
from kefu.llm.gateway import GatewayAnswer, LlmGateway, Route
from kefu.llm.prompt import HistoryLine, Passage, PromptBuilder
from kefu.llm.types import RequestedCall, ToolSpec
from kefu.respond.grounding import GroundedAnswer, SentenceBuffer
from kefu.respond.template_responder import TemplateResponder

log = logging.getLogger(__name__)
NO_ANSWER_TEMPLATE = "llm_no_answer"
SOURCES_TEMPLATE = "llm_sources"
ANSWER_TEMPLATES = frozenset({"kb_answer"})
_MARGIN_S = 0.3  # left for storing the turn after the model
MAX_MODEL_CALLS = 3  # tool calls one model turn may make (one round: then it must answer)
_RESULT_CHARS = 2000  # a tool result handed back to the model is cut to this
_MODEL_MAX_LENGTH = 64  # longer string limits are not shown to the model (see schema_for_model)
# Sampling for knowledge answers unless the model version sets its own: short and greedy (repeatable).
ANSWER_PARAMS = {"max_tokens": 160, "temperature": 0.0}


@dataclass(frozen=True)
class WriterSafety:
    """The checks around a model. ``sentence_ok(sentence, known)`` runs on every sentence before it is shown
    (``known``: the message and what the model was given); ``suspicious(text)`` finds instructions hidden in a
    passage or a tool result, which then never reach the model; ``over_quota(conversation_id)`` says the
    conversation has spent its model tokens (the templates answer from then on)."""

    sentence_ok: Callable[[str, str], bool] = lambda _sentence, _known: True
    suspicious: Callable[[str], bool] = lambda _text: False
    redact_pii: bool = True
    over_quota: Callable[[str], Awaitable[bool]] | None = None


def _passages(values: dict[str, Any]) -> list[Passage]:
    found = values.get("_cite")
    if not isinstance(found, dict):
        return []
    rows = found.get("passages") or []
    return [
        Passage(i, str(r["id"]), str(r.get("title") or r["id"]), str(r.get("text") or ""))
        for i, r in enumerate(rows, start=1)
        if isinstance(r, dict) and r.get("id") and r.get("text")
    ]


def _answer_index(decision: Decision) -> int | None:
    for i, utterance in enumerate(decision.utterances):
        if utterance.template in ANSWER_TEMPLATES and _passages(utterance.values):
            return i
    return None


class GroundedLlmWriter:
    """Implements ``ReplyWriter``. ``tool_allow`` maps a flow to the tools a model may call in it."""

    def __init__(
        self,
        gateway: LlmGateway,
        prompts: PromptBuilder,
        templates: TemplateResponder,
        *,
        safety: WriterSafety | None = None,
        actions: ActionRunner | None = None,
        tools: Mapping[str, Tool] | None = None,
        tool_allow: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.gateway = gateway
        self.prompts = prompts
        self.templates = templates
        self.safety = safety or WriterSafety()
        self.actions = actions
        self.tools = dict(tools or {})
        self.tool_allow = {flow: tuple(names) for flow, names in (tool_allow or {}).items()}

    async def warm_up(self, locale: Locale) -> None:
        """One one-token request with the system prompt, so the model server has it in its prefix cache
        before the first customer asks (the local engine evaluates a prompt at ~200 tokens/s here)."""
        routes = await self.gateway.routes("warm-up", locale)
        messages = self.prompts.messages(locale, [], [], "hello")
        tools = self.offered(next(iter(self.tool_allow), None))
        answer = await self.gateway.complete(
            routes[:1], lambda _r: messages, deadline=time.monotonic() + 60, tools=tools, params={"max_tokens": 1}
        )
        log.info("model warm-up (%s): %s", locale, [a.outcome for a in answer.attempts])

    def offered(self, flow: str | None, trace: Sequence[str] = ()) -> list[ToolSpec]:
        """The allowed tools in one fixed order (the registry's), so the prompt prefix is stable. A
        ``flow.step`` entry of ``llm_tools`` for a step this turn went through wins over the flow's own."""
        key = next((step for step in reversed(trace) if step in self.tool_allow), flow or "")
        allowed = set(self.tool_allow.get(key, ()))
        if self.actions is None:
            return []
        # A tool that changes something (cancel, refund, freeze) is never offered to a model, whatever the
        # pack lists: those go through a flow's checks and the customer's confirmation.
        return [
            ToolSpec(t.name, t.description, schema_for_model(t.parameters))
            for name, t in self.tools.items()
            if name in allowed and not getattr(t, "mutates", False)
        ]

    def wants(self, decision: Decision, locale: Locale) -> bool:
        return _answer_index(decision) is not None

    def assignment(self, user_key: str, locale: Locale) -> ModelInfo | None:
        route = self.gateway.assignment(user_key, locale)
        return None if route is None else ModelInfo(route.version.model, route.version.name, route.variant)

    async def write(self, request: WriteRequest, on_text: TextSink | None = None) -> Written:
        index = _answer_index(request.decision)
        if index is None:
            return Written(request.template_reply, None)
        utterances = request.decision.utterances
        passages = _passages(utterances[index].values)
        routes = await self.gateway.routes(request.user_key, request.locale)
        if not routes:
            return Written(request.template_reply, None, events=(Event("llm_skipped", {"reason": "no_model"}),))
        if self.safety.over_quota is not None and await self.safety.over_quota(request.conversation_id):
            skipped = Event("llm_skipped", {"reason": "token_quota"})
            return Written(request.template_reply, None, events=(skipped,))
        withheld = [p.doc_id for p in passages if self.safety.suspicious(p.text)]
        passages = [p for p in passages if p.doc_id not in withheld]
        safety_events = [Event("llm_passages_withheld", {"ids": withheld, "reason": "injection"})] if withheld else []
        hidden = Placeholders() if self.safety.redact_pii else None
        hide = hidden.hide if hidden is not None else (lambda text: text)
        messages = self.prompts.messages(
            request.locale,
            passages,
            [HistoryLine(m.role, hide(m.text)) for m in request.history],
            hide(request.parse.text),
        )
        before = self._texts(utterances[:index], request.locale)
        after = self._texts(utterances[index + 1 :], request.locale)
        joiner = "" if request.locale == "zh" else " "
        shown: list[str] = []
        state: dict[str, Any] = {}

        async def emit(piece: str) -> None:
            shown.append(piece)
            if on_text is not None:
                await on_text(piece)

        async def accept(sentences: Sequence[str]) -> None:
            for sentence in sentences:
                text = state["answer"].offer(hidden.reveal(sentence) if hidden is not None else sentence)
                if text is None:
                    continue
                lead = ("\n".join(before) + "\n") if before and not shown else ""
                separator = ("\n" if sentence.startswith("\n") else joiner) if state["answer"].sentences[1:] else ""
                await emit(lead + separator + text)

        support: list[str] = []  # what tools told the model also supports its sentences

        def known() -> str:
            return "\n".join([request.parse.text, *(p.text for p in passages), *support])

        def fresh(route: Route) -> list[dict[str, Any]]:
            # A new attempt starts a new answer (nothing from a failed one has been shown).
            state["answer"] = GroundedAnswer(
                passages,
                request.parse.text,
                request.locale,
                lambda sentence: self.safety.sentence_ok(sentence, known()),
                support,
            )
            state["buffer"] = SentenceBuffer()
            return messages

        async def on_model_text(text: str) -> None:
            await accept(state["buffer"].feed(text))

        offered = self.offered(request.decision.state.flow, request.decision.trace)
        answer = await self.gateway.complete(
            routes,
            fresh,
            deadline=request.deadline - _MARGIN_S,
            tools=offered,
            on_text=on_model_text,
            committed=lambda: bool(shown),
            params=ANSWER_PARAMS,
        )
        tool_events: list[Event] = []
        if answer.completion is not None and answer.completion.tool_calls and answer.route is not None and not shown:
            # One round of tools, then the same model must answer (offered nothing more).
            calls = answer.completion.tool_calls[:MAX_MODEL_CALLS]
            results = await self.run_calls(calls, offered, request, hidden)
            tool_events = [tool_event(result, by="model") for result in results]
            support.extend(json.dumps(r.data, ensure_ascii=False) for r in results if r.ok)
            messages = [*messages, *_tool_messages(calls, results, hide, self.safety.suspicious)]
            first = answer
            answer = await self.gateway.complete(
                [answer.route],
                fresh,
                deadline=request.deadline - _MARGIN_S,
                on_text=on_model_text,
                committed=lambda: bool(shown),
                params=ANSWER_PARAMS,
            )
            answer.attempts[:0] = first.attempts
        grounded: GroundedAnswer | None = state.get("answer")
        if answer.completion is not None and answer.completion.finish_reason != "length":
            await accept(state["buffer"].flush())  # cut off by max_tokens: the unfinished sentence is dropped
        outcome, written = await self._finish(request, answer, grounded, shown, after, emit)
        await self.gateway.account(answer, request.conversation_id, request.message_id, outcome)
        if tool_events or safety_events:
            events = (*safety_events, *tool_events, *written.events)
            written = Written(written.reply, written.model, written.handoff, events)
        return written

    async def run_calls(
        self,
        calls: Sequence[RequestedCall],
        offered: Sequence[ToolSpec],
        request: WriteRequest,
        hidden: Placeholders | None = None,
    ) -> list[ToolResult]:
        """Run the calls the model asked for: only offered tools, only with arguments that parse and
        match the tool's schema (the runner checks it); anything else is an error result, not a call.
        Placeholders in the arguments get their real values back (the tool needs the real number)."""
        names = {t.name for t in offered}
        context = TurnToolContext(
            request.user_key, request.locale, request.conversation_id, request.parse.text, request.parse.vector
        )
        results: list[ToolResult | None] = [None] * len(calls)
        runnable: list[tuple[int, ToolCall]] = []
        for i, call in enumerate(calls):
            refused = ToolCall(call.name, {}, call.id)
            if call.name not in names:
                results[i] = ToolResult(refused, False, {}, f"tool {call.name!r} is not allowed here")
                continue
            try:
                args = json.loads(call.arguments or "{}")
            except ValueError:
                results[i] = ToolResult(refused, False, {}, "arguments are not valid JSON")
                continue
            if not isinstance(args, dict):
                results[i] = ToolResult(refused, False, {}, "arguments must be a JSON object")
                continue
            if hidden is not None:
                args = hidden.reveal_args(args)
            runnable.append((i, ToolCall(call.name, args, call.id)))
        if runnable and self.actions is not None:
            done = await self.actions.run([c for _, c in runnable], context)
            for (i, _call), result in zip(runnable, done, strict=True):
                results[i] = result
        return [
            r if r is not None else ToolResult(ToolCall(c.name, {}, c.id), False, {}, "not run")
            for r, c in zip(results, calls, strict=True)
        ]

    async def _finish(
        self,
        request: WriteRequest,
        answer: GatewayAnswer,
        grounded: GroundedAnswer | None,
        shown: list[str],
        after: list[str],
        emit: TextSink,
    ) -> tuple[str, Written]:
        attempts = [
            {
                "name": a.route.version.name,
                "variant": a.route.variant,
                "outcome": a.outcome,
                "detail": a.detail[:200],
                "ms": round(a.seconds * 1000, 1),
            }
            for a in answer.attempts
        ]
        route = answer.route or (answer.attempts[-1].route if answer.attempts else None)
        completion = answer.completion
        payload: dict[str, Any] = {
            "attempts": attempts,
            "prompt_tokens": completion.prompt_tokens if completion else 0,
            "completion_tokens": completion.completion_tokens if completion else 0,
            "ttft_ms": None if completion is None or completion.ttft_s is None else round(completion.ttft_s * 1000, 1),
            "rejected": list(grounded.rejected) if grounded else [],
        }
        model = None if route is None else ModelInfo(route.version.model, route.version.name, route.variant)
        if grounded is not None and grounded.no_answer and not shown:
            text = self.templates.text(NO_ANSWER_TEMPLATE, request.locale)
            await emit(text)
            payload.update(outcome="no_answer", model=model_payload(model))
            return "no_answer", Written(Reply(text), model, handoff=True, events=(Event("llm_reply", payload),))
        if not shown or grounded is None or route is None:
            outcome = "failed" if completion is None else "rejected"
            payload.update(outcome=outcome, model=None)
            return outcome, Written(request.template_reply, None, events=(Event("llm_reply", payload),))
        marker = grounded.ensure_citation()
        if marker:
            await emit(marker)
        sources = ", ".join(f"[{i}] {c.title}" for i, c in enumerate(grounded.citations, start=1))
        tail = [self.templates.text(SOURCES_TEMPLATE, request.locale, {"sources": sources}), *after]
        await emit("\n" + "\n".join(tail))
        outcome = "ok" if completion is not None else "cut"
        payload.update(outcome=outcome, model=model_payload(model))
        reply = Reply(
            text="".join(shown),
            citations=tuple(grounded.citations),
            quick_replies=request.template_reply.quick_replies,
        )
        return outcome, Written(reply, model, events=(Event("llm_reply", payload),))

    def _texts(self, utterances: Sequence[Utterance], locale: Locale) -> list[str]:
        return [t for t in (self.templates.text(u.template, locale, u.values) for u in utterances) if t]


def schema_for_model(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The schema as the model sees it: long ``maxLength`` limits left out, because grammar-constrained
    servers (llama.cpp) unroll them into rules and fail on a few thousand. kefu still checks the full
    schema before a call runs."""
    shown: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "maxLength" and isinstance(value, int) and value > _MODEL_MAX_LENGTH:
            continue
        if isinstance(value, Mapping):
            shown[key] = schema_for_model(value)
        else:
            shown[key] = value
    return shown


def _tool_messages(
    calls: Sequence[RequestedCall],
    results: Sequence[ToolResult],
    hide: Callable[[str], str] = lambda text: text,
    suspicious: Callable[[str], bool] = lambda _text: False,
) -> list[dict[str, Any]]:
    """The calls and their results as chat messages; PII in a result goes as placeholders, and a result that
    carries instructions (text a third party wrote, e.g. a product review) is withheld from the model."""
    assistant = {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in calls
        ],
    }
    replies = []
    for c, r in zip(calls, results, strict=True):
        content = json.dumps(r.data if r.ok else {"error": r.error}, ensure_ascii=False)[:_RESULT_CHARS]
        if suspicious(content):
            content = json.dumps({"error": "result withheld: it contained instructions"})
        replies.append({"role": "tool", "tool_call_id": c.id, "content": hide(content)})
    return [assistant, *replies]
