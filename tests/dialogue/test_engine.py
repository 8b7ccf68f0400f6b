"""The flow engine on the demo pack's flows, driven with hand-made parses (no model involved)."""

from __future__ import annotations

from typing import Any

import pytest

from kefu.core.types import Decision, DialogueState, Entity, IntentScore, Parse, ToolResult
from kefu.dialogue.engine import FlowEngine
from kefu.packs.loader import load_pack
from kefu.runtime import build_dialogue


@pytest.fixture(scope="module")
def engine() -> FlowEngine:
    return build_dialogue(load_pack("ecommerce"))


def parse(text: str, intent: str = "out_of_scope", *, act: str | None = None, **entities: str) -> Parse:
    found = tuple(Entity(kind, value, 0, 0, value) for kind, value in entities.items())
    score = IntentScore(intent, 0.95)
    return Parse(text, "en", score, (score,), found, act, 0.95 if act else 0.0)


ORDERS: dict[str, dict[str, Any]] = {
    "100001": {"found": True, "id": "100001", "status": "shipped", "tracking": "SF1234567890"},
    "100002": {"found": True, "id": "100002", "status": "delivered", "days_since_delivery": 3},
    "100003": {"found": True, "id": "100003", "status": "processing"},
    "100004": {"found": True, "id": "100004", "status": "delivered", "days_since_delivery": 45},
}


def tools(call_name: str, args: dict[str, Any]) -> dict[str, Any]:
    if call_name == "lookup_order":
        return ORDERS.get(args["order_id"], {"found": False})
    if call_name in ("cancel_order", "create_return"):
        return {**ORDERS[args["order_id"]], "done": True, "return_id": "R1"}
    if call_name == "search_knowledge":
        found = "warranty" in args["query"]
        if not found:
            return {"found": False, "likely": False}
        return {"found": True, "likely": True, "id": "warranty", "title": "Warranty", "answer": "1 year"}
    return {"found": False}


def turn(engine: FlowEngine, state: DialogueState, p: Parse) -> Decision:
    decision = engine.step(state, p)
    for _ in range(10):
        if not decision.tool_calls:
            break
        results = [ToolResult(c, True, tools(c.name, c.args)) for c in decision.tool_calls]
        decision = engine.resume(decision, results, p)
    return decision


def said(decision: Decision) -> list[str]:
    return [u.template for u in decision.utterances]


def test_slot_asked_then_filled_then_branches_on_tool_result(engine: FlowEngine) -> None:
    d = turn(engine, DialogueState(), parse("where is my order", "order_status"))
    assert said(d) == ["ask_order_id"] and d.state.waiting == "slot:order_id"
    d = turn(engine, d.state, parse("100001", order_id="100001"))
    assert said(d) == ["order_shipped", "ask_resolved"]
    assert d.state.waiting == "confirm"
    d = turn(engine, d.state, parse("yes", act="affirm"))
    assert d.close and said(d) == ["closing"] and d.state.flow is None


def test_confirmation_no_hands_over(engine: FlowEngine) -> None:
    d = turn(engine, DialogueState(), parse("track 100001", "order_status", order_id="100001"))
    d = turn(engine, d.state, parse("no", act="deny"))
    assert d.handoff and said(d) == ["sorry_not_solved", "handoff"]


def test_reask_limit_hands_over(engine: FlowEngine) -> None:
    d = turn(engine, DialogueState(), parse("where is my order", "order_status"))
    for _ in range(2):
        d = turn(engine, d.state, parse("555555", order_id="555555"))
        assert said(d) == ["order_not_found", "ask_order_id"] and not d.handoff
    d = turn(engine, d.state, parse("555555", order_id="555555"))
    assert d.handoff and d.handoff_reason == "order_status:order_id_not_given"


def test_human_agent_hands_over_at_any_point(engine: FlowEngine) -> None:
    d = turn(engine, DialogueState(), parse("refund", "return_refund"))
    d = turn(engine, d.state, parse("human please", "human_agent"))
    assert d.handoff and d.handoff_reason == "customer_request" and d.state.flow is None


def test_never_mind_leaves_the_flow(engine: FlowEngine) -> None:
    d = turn(engine, DialogueState(), parse("cancel my order", "cancel_order"))
    d = turn(engine, d.state, parse("never mind", act="stop"))
    assert said(d) == ["flow_stopped"] and d.state.flow is None and not d.handoff


def test_digression_is_answered_then_the_flow_continues(engine: FlowEngine) -> None:
    d = turn(engine, DialogueState(), parse("I want a refund", "return_refund"))
    assert d.state.waiting == "slot:order_id"
    d = turn(engine, d.state, parse("how long is the warranty?", "product_inquiry"))
    assert said(d)[0] == "kb_answer" and said(d)[-2:] == ["back_to_flow", "ask_return_order_id"]
    assert d.state.flow == "return_refund" and d.state.waiting == "slot:order_id" and not d.state.stack
    d = turn(engine, d.state, parse("it's 100002", order_id="100002"))
    assert said(d) == ["ask_return_confirm"]


def test_policy_intent_digression_uses_the_faq_flow(engine: FlowEngine) -> None:
    d = turn(engine, DialogueState(), parse("cancel please", "cancel_order"))
    d = turn(engine, d.state, parse("warranty length?", "shipping_policy"))
    assert "kb_answer" in said(d) and said(d)[-1] == "ask_order_id" and d.state.flow == "cancel_order"


def test_unanswerable_slot_reply_counts_as_a_failed_ask(engine: FlowEngine) -> None:
    d = turn(engine, DialogueState(), parse("cancel please", "cancel_order"))
    d = turn(engine, d.state, parse("blah blah"))
    assert said(d) == ["not_understood", "ask_order_id"] and d.state.asks["order_id"] == 2


def test_remembered_order_id_fills_the_next_flow(engine: FlowEngine) -> None:
    d = turn(engine, DialogueState(), parse("track 100003", "order_status", order_id="100003"))
    d = turn(engine, d.state, parse("ok cancel it then", "cancel_order"))
    assert said(d) == ["ask_cancel_confirm"] and d.state.slots["order_id"] == "100003"


def test_late_return_with_defect_hands_over(engine: FlowEngine) -> None:
    d = turn(engine, DialogueState(), parse("return 100004 no reason", "return_refund", order_id="100004"))
    assert said(d) == ["ask_quality_expired"]
    d = turn(engine, d.state, parse("it's broken", "product_inquiry", quality_issue="yes"))
    assert d.handoff and d.handoff_reason == "quality_issue_after_window"


def test_cancel_needs_confirmation(engine: FlowEngine) -> None:
    d = turn(engine, DialogueState(), parse("cancel 100003", "cancel_order", order_id="100003"))
    assert said(d) == ["ask_cancel_confirm"] and not any(c.name == "cancel_order" for c in d.tool_calls)
    d = turn(engine, d.state, parse("no keep it", act="deny"))
    assert said(d) == ["order_kept"] and d.state.flow is None


def test_unrelated_reply_to_confirmation_starts_afresh(engine: FlowEngine) -> None:
    d = turn(engine, DialogueState(), parse("track 100001", "order_status", order_id="100001"))
    d = turn(engine, d.state, parse("how do I get an invoice", "invoice"))
    # The stub knowledge base knows only warranties: the faq flow offers a person instead.
    assert d.state.flow == "faq" and said(d) == ["kb_no_answer"] and d.state.waiting == "confirm"


def test_engine_is_pure(engine: FlowEngine) -> None:
    state = DialogueState()
    turn(engine, state, parse("where is my order", "order_status"))
    assert state.flow is None and state.memory == {}


def test_bare_order_number_starts_the_status_flow(engine: FlowEngine) -> None:
    d = turn(engine, DialogueState(), parse("100001", order_id="100001"))
    assert said(d) == ["order_shipped", "ask_resolved"] and d.state.flow == "order_status"
    d = turn(engine, DialogueState(), parse("what's the weather"))
    assert d.state.flow is None and said(d) == ["fallback"]


def test_confirmation_naming_another_order_is_not_a_yes(engine: FlowEngine) -> None:
    d = turn(engine, DialogueState(), parse("cancel 100003", "cancel_order", order_id="100003"))
    assert said(d) == ["ask_cancel_confirm"]
    d = turn(engine, d.state, parse("yes, but cancel 100001 instead", "cancel_order", act="affirm", order_id="100001"))
    # Had the "yes" counted, 100003 would have been cancelled ("order_cancelled").
    assert said(d) == ["cannot_cancel_shipped", "ask_resolved"] and d.state.slots["order_id"] == "100001"
