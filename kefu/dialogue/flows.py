"""Flow definitions: YAML in the pack, parsed into typed steps and checked at load time.

A flow file holds one flow (or a list under ``flows:``)::

    name: order_status
    trigger: [order_status]
    slots:
      order_id: {entity: order_id, ask: ask_order_id, max_asks: 3}
    steps:
      - {id: get_id, ask: order_id}
      - {id: lookup, call: lookup_order, args: {order_id: $slots.order_id}, save: order}
      - id: route
        branch:
          - {if: {order.found: false}, then: not_found}
          - {if: {order.status: shipped}, then: shipped}
        else: processing
      - {id: not_found, reask: order_id, say: order_not_found}
      - {id: shipped, say: order_shipped, next: confirm}
      - {id: processing, say: order_processing}
      - {id: confirm, confirm: ask_resolved, "yes": close, "no": handoff}

Step kinds (one per step): ``ask`` a slot, ``call`` a tool, ``branch`` on values, ``say`` a template,
``confirm`` a yes/no question, ``reask`` a slot whose value failed a check, ``handoff`` to a person,
``end`` the flow (``end: close`` also closes the conversation). ``next`` names the following step, or
one of the targets ``end``, ``close``, ``handoff``; without it the flow goes on to the step below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

STEP_KINDS = ("ask", "call", "branch", "say", "confirm", "reask", "handoff", "end")
TARGETS = ("end", "close", "handoff")


class FlowError(ValueError):
    """A flow file is invalid; the message names the file, the flow and the step."""


TEXT_ENTITY = "@text"  # a slot filled with the customer's whole answer (an address, a description)


@dataclass(frozen=True, slots=True)
class Slot:
    name: str
    entity: str
    ask: str
    max_asks: int = 3
    remember: bool = True  # fill from a value the customer gave earlier in the conversation


@dataclass(frozen=True, slots=True)
class Case:
    condition: dict[str, Any]
    then: str


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    kind: str
    arg: Any  # the value of the kind key: slot name, tool name, template key, cases...
    say: str | None = None
    next: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    save: str | None = None
    otherwise: str | None = None  # branch: the target when no case matches
    yes: str = "close"
    no: str = "handoff"
    yes_if: tuple[dict[str, Any], ...] = ()  # confirm: conditions, any of which also counts as "yes"
    yes_say: str | None = None
    no_say: str | None = None
    cite: str | None = None  # say: memory key of a knowledge search whose top hit is cited
    quick_replies: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Flow:
    name: str
    triggers: tuple[str, ...]
    slots: dict[str, Slot]
    steps: tuple[Step, ...]
    source: str
    digression: bool = False  # may interrupt another flow, which then continues
    description: str = ""
    trigger_entities: tuple[str, ...] = ()  # also starts when an unclear message carries one of these

    def index(self, step_id: str) -> int:
        for i, step in enumerate(self.steps):
            if step.id == step_id:
                return i
        raise KeyError(step_id)

    def step(self, step_id: str) -> Step:
        return self.steps[self.index(step_id)]

    def ask_step_for(self, slot: str) -> Step:
        return next(s for s in self.steps if s.kind == "ask" and s.arg == slot)

    def templates(self) -> set[str]:
        keys = {s.ask for s in self.slots.values()}
        for step in self.steps:
            keys.update(k for k in (step.say, step.yes_say, step.no_say) if k)
            keys.update(step.quick_replies)
            if step.kind in ("say", "confirm"):
                keys.add(step.arg)
        return keys

    def tools(self) -> set[str]:
        return {s.arg for s in self.steps if s.kind == "call"}


def _fail(source: str, flow: str | None, step: str | None, message: str) -> FlowError:
    where = source
    if flow:
        where += f": flow {flow!r}"
    if step:
        where += f", step {step!r}"
    return FlowError(f"{where}: {message}")


def _parse_slot(source: str, flow: str, name: str, raw: Any) -> Slot:
    if not isinstance(raw, dict):
        raise _fail(source, flow, None, f"slot {name!r} must be a mapping")
    for key in ("entity", "ask"):
        if not isinstance(raw.get(key), str):
            raise _fail(source, flow, None, f"slot {name!r} needs '{key}' (a string)")
    max_asks = raw.get("max_asks", 3)
    if not isinstance(max_asks, int) or max_asks < 1:
        raise _fail(source, flow, None, f"slot {name!r}: max_asks must be a positive integer")
    return Slot(name, raw["entity"], raw["ask"], max_asks, bool(raw.get("remember", True)))


def _parse_step(source: str, flow: str, position: int, raw: Any) -> Step:
    if not isinstance(raw, dict):
        raise _fail(source, flow, f"#{position + 1}", "a step must be a mapping")
    step_id = raw.get("id")
    if not isinstance(step_id, str) or not step_id:
        raise _fail(source, flow, f"#{position + 1}", "every step needs an 'id'")
    kinds = [k for k in STEP_KINDS if k in raw]
    # 'say' is also an option of reask/handoff/end; it is the kind only when alone.
    if len(kinds) > 1 and "say" in kinds:
        kinds.remove("say")
    if len(kinds) != 1:
        raise _fail(source, flow, step_id, f"needs exactly one of {', '.join(STEP_KINDS)}; found {kinds or 'none'}")
    kind = kinds[0]
    allowed = {
        "id",
        kind,
        "say",
        "next",
        "args",
        "save",
        "else",
        "yes",
        "no",
        "yes_if",
        "yes_say",
        "no_say",
        "cite",
        "quick_replies",
    }
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise _fail(source, flow, step_id, f"unknown key(s) {', '.join(unknown)}")
    arg = raw[kind]
    if kind == "branch":
        if not isinstance(arg, list) or not arg:
            raise _fail(source, flow, step_id, "'branch' must be a non-empty list of {if, then}")
        cases = []
        for case in arg:
            if (
                not isinstance(case, dict)
                or not isinstance(case.get("if"), dict)
                or not isinstance(case.get("then"), str)
            ):
                raise _fail(source, flow, step_id, "each branch case needs 'if' (a mapping) and 'then' (a step id)")
            cases.append(Case(case["if"], case["then"]))
        arg = tuple(cases)
    elif kind == "end":
        if arg not in (True, "close", "end"):
            raise _fail(source, flow, step_id, "'end' must be true or 'close'")
    elif not isinstance(arg, str) or not arg:
        raise _fail(source, flow, step_id, f"'{kind}' must be a non-empty string")
    args = raw.get("args", {})
    if not isinstance(args, dict):
        raise _fail(source, flow, step_id, "'args' must be a mapping")
    if kind == "call" and not isinstance(raw.get("save"), str):
        raise _fail(source, flow, step_id, "a 'call' step needs 'save' (where the result goes)")
    quick = raw.get("quick_replies", [])
    if not isinstance(quick, list) or not all(isinstance(q, str) for q in quick):
        raise _fail(source, flow, step_id, "'quick_replies' must be a list of template keys")
    yes_if = raw.get("yes_if") or []
    if isinstance(yes_if, dict):
        yes_if = [yes_if]
    if not isinstance(yes_if, list) or not all(isinstance(c, dict) for c in yes_if):
        raise _fail(source, flow, step_id, "'yes_if' must be a condition mapping or a list of them")
    return Step(
        id=step_id,
        kind=kind,
        arg=arg,
        say=raw.get("say") if kind != "say" else None,
        next=raw.get("next"),
        args=args,
        save=raw.get("save"),
        otherwise=raw.get("else"),
        yes=str(raw.get("yes", "close")),
        no=str(raw.get("no", "handoff")),
        yes_if=tuple(yes_if),
        yes_say=raw.get("yes_say"),
        no_say=raw.get("no_say"),
        cite=raw.get("cite"),
        quick_replies=tuple(quick),
    )


def _check_targets(flow: Flow) -> None:
    ids = {s.id for s in flow.steps}
    valid = ids | set(TARGETS)
    for step in flow.steps:
        targets: list[tuple[str, str | None]] = [("next", step.next)]
        if step.kind == "branch":
            targets += [("then", c.then) for c in step.arg]
            targets.append(("else", step.otherwise))
        if step.kind == "confirm":
            targets += [("yes", step.yes), ("no", step.no)]
        for label, target in targets:
            if target is not None and target not in valid:
                raise _fail(flow.source, flow.name, step.id, f"{label} -> unknown step {target!r}")
        if step.kind in ("ask", "reask") and step.arg not in flow.slots:
            raise _fail(flow.source, flow.name, step.id, f"unknown slot {step.arg!r}")
    for slot in flow.slots:
        if not any(s.kind == "ask" and s.arg == slot for s in flow.steps):
            raise _fail(flow.source, flow.name, None, f"slot {slot!r} has no 'ask' step")


def parse_flow(raw: Any, source: str) -> Flow:
    if not isinstance(raw, dict):
        raise _fail(source, None, None, "a flow must be a mapping")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise _fail(source, None, None, "a flow needs a 'name'")
    unknown = sorted(set(raw) - {"name", "trigger", "trigger_entity", "slots", "steps", "digression", "description"})
    if unknown:
        raise _fail(source, name, None, f"unknown key(s) {', '.join(unknown)}")
    trigger = raw.get("trigger", [])
    if isinstance(trigger, str):
        trigger = [trigger]
    if not isinstance(trigger, list) or not all(isinstance(t, str) for t in trigger):
        raise _fail(source, name, None, "'trigger' must be an intent name or a list of them")
    entities = raw.get("trigger_entity", [])
    if isinstance(entities, str):
        entities = [entities]
    if not isinstance(entities, list) or not all(isinstance(e, str) for e in entities):
        raise _fail(source, name, None, "'trigger_entity' must be an entity type or a list of them")
    slots_raw = raw.get("slots") or {}
    if not isinstance(slots_raw, dict):
        raise _fail(source, name, None, "'slots' must be a mapping")
    steps_raw = raw.get("steps")
    if not isinstance(steps_raw, list) or not steps_raw:
        raise _fail(source, name, None, "'steps' must be a non-empty list")
    steps = tuple(_parse_step(source, name, i, s) for i, s in enumerate(steps_raw))
    seen: set[str] = set()
    for step in steps:
        if step.id in seen or step.id in TARGETS:
            raise _fail(source, name, step.id, "step ids must be unique and not 'end', 'close' or 'handoff'")
        seen.add(step.id)
    flow = Flow(
        name=name,
        triggers=tuple(trigger),
        slots={k: _parse_slot(source, name, k, v) for k, v in slots_raw.items()},
        steps=steps,
        source=source,
        digression=bool(raw.get("digression", False)),
        description=str(raw.get("description", "")),
        trigger_entities=tuple(entities),
    )
    _check_targets(flow)
    return flow


def load_flows(folder: Path) -> list[Flow]:
    """Every ``*.yaml`` in ``folder``; a flow name or trigger used twice is an error."""
    flows: list[Flow] = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise FlowError(f"{path}: not valid YAML: {exc}") from exc
        items = data.get("flows") if isinstance(data, dict) and "flows" in data else [data]
        if not isinstance(items, list):
            raise FlowError(f"{path}: 'flows' must be a list")
        flows.extend(parse_flow(item, str(path)) for item in items)
    names: dict[str, str] = {}
    triggers: dict[str, str] = {}
    for flow in flows:
        if flow.name in names:
            raise FlowError(f"{flow.source}: flow {flow.name!r} is also defined in {names[flow.name]}")
        names[flow.name] = flow.source
        for intent in flow.triggers:
            if intent in triggers:
                raise FlowError(
                    f"{flow.source}: flow {flow.name!r}: intent {intent!r} already triggers {triggers[intent]}"
                )
            triggers[intent] = flow.name
    return flows
