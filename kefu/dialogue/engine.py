"""The flow state machine. Pure: it returns tool calls for the pipeline to run and is resumed with results."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kefu.core.types import Decision, DialogueState, Parse, ToolCall, ToolResult, Utterance
from kefu.dialogue.flows import TEXT_ENTITY, Flow, Slot, Step
from kefu.dialogue.values import evaluate, substitute

_SEEN = "_seen"  # entity values the customer gave in this conversation (survives flows)
_FLOW_ENTITIES = "_entities"  # entity values given since the current flow started
_MAX_STEPS = 200  # guards against a flow whose steps loop without waiting for the customer


@dataclass(frozen=True, slots=True)
class DialogueConfig:
    """Which intents and flows have a special role. Comes from the pack."""

    handoff_intents: frozenset[str] = frozenset({"human_agent"})
    closing_intents: frozenset[str] = frozenset({"thanks", "goodbye"})  # also mean "yes" to "did that help?"
    negative_intents: frozenset[str] = frozenset({"complaint"})  # also mean "no" to "did that help?"
    fallback_flow: str = "fallback"
    knowledge_tool: str = "search_knowledge"  # probes the knowledge base when a slot answer is a question
    act_threshold: float = 0.6


class FlowEngine:
    """Runs flows step by step: slots, tool calls, branches, confirmations, digressions and handoffs."""

    def __init__(self, flows: Sequence[Flow], config: DialogueConfig | None = None) -> None:
        self.config = config or DialogueConfig()
        self.flows = {f.name: f for f in flows}
        self.by_intent = {intent: f for f in flows for intent in f.triggers}
        if self.config.fallback_flow not in self.flows:
            raise ValueError(f"the fallback flow {self.config.fallback_flow!r} is not defined")

    # ------------------------------------------------------------------ entry points
    def step(self, state: DialogueState, parse: Parse) -> Decision:
        decision = Decision(state=copy.deepcopy(state))
        state = decision.state
        seen = state.memory.setdefault(_SEEN, {})
        for entity in parse.entities:
            seen[entity.type] = entity.value
            state.memory.setdefault(_FLOW_ENTITIES, {})[entity.type] = entity.value
        intent = parse.intent.name  # low confidence is already the out-of-scope intent (NLU step)

        if intent in self.config.handoff_intents:
            return self._handoff(decision, "customer_request", "handoff")
        if state.flow is not None:
            if self._act(parse) == "stop":
                self._reset(state)
                decision.trace.append("stopped")
                decision.utterances.append(Utterance("flow_stopped"))
                return decision
            if state.waiting == "confirm":
                return self._on_confirm(decision, parse, intent)
            if state.waiting and state.waiting.startswith("slot:"):
                return self._on_slot(decision, parse, intent, state.waiting[5:])
        if self._act(parse) == "stop" and intent == self.flows[self.config.fallback_flow].triggers[0]:
            decision.utterances.append(Utterance("flow_stopped"))
            return decision
        return self._start(decision, parse, intent)

    def resume(self, decision: Decision, results: Sequence[ToolResult], parse: Parse) -> Decision:
        state = decision.state
        decision.tool_calls = []
        for result in results:
            state.memory[result.call.save_as] = {**result.data, "ok": result.ok, "error": result.error}
        if state.waiting and state.waiting.startswith("probe:"):
            return self._after_probe(decision, parse, state.waiting[6:])
        if state.waiting != "tool" or state.flow is None or state.step is None:
            raise RuntimeError(f"resume() without a pending tool call (state {state.name}, waiting {state.waiting})")
        state.waiting = None
        flow = self.flows[state.flow]
        return self._goto(decision, parse, flow, self._next_of(flow, flow.step(state.step)))

    # ------------------------------------------------------------------ reading the parse
    def _act(self, parse: Parse) -> str | None:
        return parse.act if parse.act and parse.act_confidence >= self.config.act_threshold else None

    # ------------------------------------------------------------------ customer replies while a flow waits
    def _on_confirm(self, decision: Decision, parse: Parse, intent: str) -> Decision:
        state = decision.state
        assert state.flow is not None and state.step is not None
        flow = self.flows[state.flow]
        step = flow.step(state.step)
        act = self._act(parse)
        context = self._context(state, parse)
        if self._names_something_else(flow, state, parse):
            # "Yes, but cancel 100002 instead": never confirm an action on a value the customer just replaced.
            answer = None
        elif (
            any(evaluate(condition, context) for condition in step.yes_if)
            or act == "affirm"
            or (act is None and intent in self.config.closing_intents)
        ):
            answer = "yes"
        elif act == "deny" or intent in self.config.negative_intents:
            answer = "no"
        else:
            answer = None
        if answer is None:
            # Not an answer to the question: a new request. Leave this flow and handle it afresh.
            decision.trace.append(f"{flow.name}.{step.id}:unanswered")
            self._reset(state)
            return self._start(decision, parse, intent)
        state.waiting = None
        decision.trace.append(f"{flow.name}.{step.id}:{answer}")
        say = step.yes_say if answer == "yes" else step.no_say
        if say:
            decision.utterances.append(Utterance(say, self._context(state, parse)))
        return self._goto(decision, parse, flow, step.yes if answer == "yes" else step.no)

    @staticmethod
    def _names_something_else(flow: Flow, state: DialogueState, parse: Parse) -> bool:
        for slot in flow.slots.values():
            entity = None if slot.entity == TEXT_ENTITY else parse.entity(slot.entity)
            if entity is not None and state.slots.get(slot.name) not in (None, entity.value):
                return True
        return False

    def _on_slot(self, decision: Decision, parse: Parse, intent: str, slot_name: str) -> Decision:
        state = decision.state
        assert state.flow is not None
        flow = self.flows[state.flow]
        slot = flow.slots[slot_name]
        value = self._answer_for(slot, parse)
        if value is not None:
            state.slots[slot_name] = value
            state.waiting = None
            return self._run(decision, parse, flow)
        other = self.by_intent.get(intent)
        if other is not None and other.name != flow.name and other.name != self.config.fallback_flow:
            if other.digression:
                decision.trace.append(f"digress:{other.name}")
                self._suspend(state)
                return self._begin(decision, parse, other)
            decision.trace.append(f"switch:{flow.name}->{other.name}")
            self._reset(state)
            return self._begin(decision, parse, other)
        if self._act(parse) in ("affirm", "deny"):
            return self._reask(decision, parse, flow, slot_name, "not_understood")
        # Maybe a question in passing ("how long is the warranty anyway?"): ask the knowledge base.
        state.waiting = f"probe:{slot_name}"
        decision.tool_calls = [ToolCall(self.config.knowledge_tool, {"query": parse.text}, "_probe")]
        decision.trace.append(f"probe:{slot_name}")
        return decision

    def _after_probe(self, decision: Decision, parse: Parse, slot_name: str) -> Decision:
        state = decision.state
        assert state.flow is not None
        flow = self.flows[state.flow]
        found = state.memory.pop("_probe", {})
        if found.get("found"):
            decision.utterances.append(Utterance("kb_answer", {"kb": found, "_cite": found}))
            decision.utterances.append(Utterance("back_to_flow", self._context(state, parse)))
            decision.utterances.append(Utterance(flow.slots[slot_name].ask, self._context(state, parse)))
            state.waiting = f"slot:{slot_name}"
            decision.trace.append("probe:answered")
            return decision
        return self._reask(decision, parse, flow, slot_name, "not_understood")

    def _answer_for(self, slot: Slot, parse: Parse) -> str | None:
        """The value a reply to "what is your <slot>?" gives, if any."""
        if slot.entity == TEXT_ENTITY:
            # Any answer counts (an address is often classified as change_address); a confirmation follows.
            stripped = parse.text.strip()
            return stripped if stripped and self._act(parse) is None else None
        entity = parse.entity(slot.entity)
        return entity.value if entity else None

    # ------------------------------------------------------------------ running flows
    def _start(self, decision: Decision, parse: Parse, intent: str) -> Decision:
        flow = self.by_intent.get(intent)
        if flow is None or flow.name == self.config.fallback_flow:
            # An unclear message that carries, say, only an order number starts the flow that wants it.
            kinds = {e.type for e in parse.entities}
            flow = next((f for f in self.flows.values() if kinds & set(f.trigger_entities)), None)
        return self._begin(decision, parse, flow or self.flows[self.config.fallback_flow])

    def _begin(self, decision: Decision, parse: Parse, flow: Flow) -> Decision:
        state = decision.state
        state.flow, state.step, state.waiting = flow.name, flow.steps[0].id, None
        state.slots, state.asks = {}, {}
        state.memory[_FLOW_ENTITIES] = {e.type: e.value for e in parse.entities}
        decision.trace.append(f"start:{flow.name}")
        return self._run(decision, parse, flow)

    def _run(self, decision: Decision, parse: Parse, flow: Flow) -> Decision:
        state = decision.state
        for _ in range(_MAX_STEPS):
            assert state.step is not None
            step = flow.step(state.step)
            decision.trace.append(f"{flow.name}.{step.id}")
            context = self._context(state, parse)
            if step.kind == "ask":
                slot = flow.slots[step.arg]
                if step.arg not in state.slots:
                    entity = None if slot.entity == TEXT_ENTITY else parse.entity(slot.entity)
                    value = entity.value if entity else None
                    if value is None and slot.remember:
                        value = state.memory.get(_SEEN, {}).get(slot.entity)
                    if value is None:
                        return self._ask(decision, parse, flow, step.arg)
                    state.slots[step.arg] = value
            elif step.kind == "call":
                state.waiting = "tool"
                decision.tool_calls = [ToolCall(step.arg, substitute(step.args, context), step.save or step.id)]
                return decision
            elif step.kind == "branch":
                target = next((c.then for c in step.arg if evaluate(c.condition, context)), step.otherwise)
                if target is None:
                    raise RuntimeError(f"flow {flow.name!r} step {step.id!r}: no branch matched and no 'else'")
                return self._goto(decision, parse, flow, target)
            elif step.kind == "say":
                self._say(decision, step.arg, context, step)
            elif step.kind == "confirm":
                if state.stack:  # inside a digression: the suspended flow's question comes next instead
                    return self._goto(decision, parse, flow, "end")
                self._say(decision, step.arg, context, step)
                state.waiting = "confirm"
                return decision
            elif step.kind == "reask":
                return self._reask(decision, parse, flow, step.arg, step.say)
            elif step.kind == "handoff":
                return self._handoff(decision, step.arg, step.say or "handoff", context)
            elif step.kind == "end":
                if step.say:
                    self._say(decision, step.say, context, step)
                return self._goto(decision, parse, flow, "close" if step.arg == "close" else "end")
            if step.say and step.kind not in ("say",):
                self._say(decision, step.say, context, step)
            target = self._next_of(flow, step)
            if target in ("end", "close", "handoff"):
                return self._goto(decision, parse, flow, target)
            state.step = target
        raise RuntimeError(f"flow {flow.name!r} ran {_MAX_STEPS} steps without waiting for the customer")

    def _goto(self, decision: Decision, parse: Parse, flow: Flow, target: str) -> Decision:
        state = decision.state
        if target == "handoff":
            return self._handoff(decision, f"{flow.name}:{state.step}", "handoff")
        if target in ("end", "close"):
            if state.stack:
                return self._pop(decision, parse)
            self._reset(state)
            decision.close = target == "close"
            return decision
        state.step = target
        return self._run(decision, parse, flow)

    @staticmethod
    def _next_of(flow: Flow, step: Step) -> str:
        if step.next:
            return step.next
        position = flow.index(step.id) + 1
        return flow.steps[position].id if position < len(flow.steps) else "end"

    def _ask(self, decision: Decision, parse: Parse, flow: Flow, slot_name: str) -> Decision:
        state = decision.state
        slot = flow.slots[slot_name]
        state.asks[slot_name] = state.asks.get(slot_name, 0) + 1
        if state.asks[slot_name] > slot.max_asks:
            return self._handoff(decision, f"{flow.name}:{slot_name}_not_given", "handoff_unfilled")
        decision.utterances.append(Utterance(slot.ask, self._context(state, parse)))
        state.waiting = f"slot:{slot_name}"
        state.step = flow.ask_step_for(slot_name).id
        return decision

    def _reask(self, decision: Decision, parse: Parse, flow: Flow, slot_name: str, say: str | None) -> Decision:
        state = decision.state
        if say:  # the message may quote the refused value ("no order 999999"), so render before clearing it
            decision.utterances.append(Utterance(say, self._context(state, parse)))
        state.slots.pop(slot_name, None)
        return self._ask(decision, parse, flow, slot_name)

    def _handoff(
        self, decision: Decision, reason: str, template: str, context: dict[str, Any] | None = None
    ) -> Decision:
        decision.utterances.append(Utterance(template, context or {}))
        decision.handoff = True
        decision.handoff_reason = reason
        decision.trace.append(f"handoff:{reason}")
        self._reset(decision.state)
        decision.state.stack = []
        return decision

    def _say(self, decision: Decision, template: str, context: dict[str, Any], step: Step) -> None:
        values = dict(context)
        if step.cite:
            values["_cite"] = context.get(step.cite)
        decision.utterances.append(Utterance(template, values))
        decision.quick_replies = list(step.quick_replies)

    # ------------------------------------------------------------------ state helpers
    def _context(self, state: DialogueState, parse: Parse) -> dict[str, Any]:
        entities = dict(state.memory.get(_FLOW_ENTITIES, {}))
        entities.update({e.type: e.value for e in parse.entities})
        context = {k: v for k, v in state.memory.items() if not k.startswith("_")}
        context.update(
            slots=dict(state.slots),
            entities=entities,
            text=parse.text,
            intent=parse.intent.name,
            act=parse.act,
        )
        return context

    @staticmethod
    def _reset(state: DialogueState) -> None:
        seen = state.memory.get(_SEEN, {})
        state.flow = state.step = state.waiting = None
        state.slots, state.asks = {}, {}
        state.memory = {_SEEN: seen}

    @staticmethod
    def _suspend(state: DialogueState) -> None:
        frame = {
            "flow": state.flow,
            "step": state.step,
            "slots": state.slots,
            "asks": state.asks,
            "memory": state.memory,
            "waiting": state.waiting,
        }
        state.stack.append(copy.deepcopy(frame))

    def _pop(self, decision: Decision, parse: Parse) -> Decision:
        state = decision.state
        frame = state.stack.pop()
        seen = state.memory.get(_SEEN, {})
        state.flow, state.step, state.waiting = frame["flow"], frame["step"], frame["waiting"]
        state.slots, state.asks, state.memory = frame["slots"], frame["asks"], frame["memory"]
        state.memory[_SEEN] = seen
        decision.trace.append(f"resume:{state.flow}")
        flow = self.flows[state.flow] if state.flow else None
        if flow is None or state.step is None:
            return decision
        decision.utterances.append(Utterance("back_to_flow", self._context(state, parse)))
        if state.waiting and state.waiting.startswith("slot:"):
            decision.utterances.append(Utterance(flow.slots[state.waiting[5:]].ask, self._context(state, parse)))
        elif state.waiting == "confirm":
            step = flow.step(state.step)
            self._say(decision, step.arg, self._context(state, parse), step)
        return decision
