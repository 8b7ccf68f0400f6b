"""What the metrics make of a turn's records, the LLM gateway's calls, the agent console's and the Kafka
workers' reports, and the handover queue read from the store."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from kefu.core.types import Event
from kefu.llm.registry import CallRecord
from kefu.obs.metrics import Metrics
from kefu.obs.queue import waiting_for_agent, watch_handoff_queue
from kefu.runtime import Runtime
from tests.conftest import message


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def test_handover_reasons_are_bounded(runtime: Runtime) -> None:
    metrics = Metrics.for_pack(runtime.pack)
    for reason in (
        "customer_request",
        "order_backend_unavailable",  # a reason the pack's flows declare
        "moderation:self_harm",
        "return_refund:order_id_not_given",
        "return_refund:confirm",
        "made_up_by_nobody",
    ):
        metrics.recorded("web", [Event("owner_changed", {"from": "bot", "to": "agent", "reason": reason})])
    metrics.recorded("web", [Event("owner_changed", {"from": "agent", "to": "bot", "reason": "agent_done"})])
    counted = {
        s.labels["reason"]: s.value
        for family in metrics.registry.collect()
        if family.name == "kefu_handoffs"
        for s in family.samples
        if s.name == "kefu_handoffs_total"
    }
    assert counted == {
        "customer_request": 1,
        "order_backend_unavailable": 1,
        "moderation": 1,
        "slot_not_filled": 1,
        "flow_step": 1,
        "other": 1,
    }


def test_turn_records_count_guard_failures_and_abstentions() -> None:
    metrics = Metrics(("greeting", "out_of_scope"), fallback_intent="out_of_scope")
    events = [
        Event("guard_inbound", {"action": "flag", "pii": ["PHONE", "EMAIL", "SOMETHING_NEW"], "injection": True}),
        Event("tool_called", {"tool": "search_knowledge", "ms": 12.5}),
        Event("tool_called", {"tool": "lookup_order", "ms": 3.0}),
        Event("dialogue_step", {"utterances": ["kb_no_answer"]}),
        Event("llm_reply", {"outcome": "no_answer"}),
        Event("turn_failed", {"error": "KeyError: 'x'"}),
        Event("guard_outbound", {"action": "block", "pii": []}),
    ]
    metrics.recorded("app", events)
    metrics.turn("app", "bot", "out_of_scope", 0.9)
    metrics.turn("app", "replayed", "out_of_scope", 0.9)  # a replay is not a new fallback
    metrics.turn("zzz-9", "handoff", "never-heard-of", 0.2)
    assert _value(metrics, "kefu_guard_actions_total", direction="in", action="flag") == 1
    assert _value(metrics, "kefu_guard_actions_total", direction="out", action="block") == 1
    assert [_value(metrics, "kefu_pii_detected_total", type=t) for t in ("PHONE", "EMAIL", "other")] == [1, 1, 1]
    assert _value(metrics, "kefu_injection_flagged_total") == 1
    assert _value(metrics, "kefu_turn_duration_seconds_count", stage="retrieval") == 1
    assert _value(metrics, "kefu_turn_duration_seconds_sum", stage="retrieval") == pytest.approx(0.0125)
    assert _value(metrics, "kefu_abstentions_total", source="flow") == 1
    assert _value(metrics, "kefu_abstentions_total", source="llm") == 1
    assert _value(metrics, "kefu_turn_errors_total", channel="app") == 1
    assert _value(metrics, "kefu_fallbacks_total", channel="app") == 1
    assert _value(metrics, "kefu_turns_total", channel="other", outcome="handoff") == 1
    assert _value(metrics, "kefu_intents_total", intent="other") == 1
    metrics.stage("some_new_stage", 0.1)
    assert _value(metrics, "kefu_turn_duration_seconds_count", stage="other") == 1


def test_llm_calls_give_tokens_first_token_and_stage() -> None:
    metrics = Metrics()
    ok = CallRecord("c", "m", "env-qwen3-14b", "Qwen/Qwen3-14B", "canary", "ok", 900, 120, 420.0, 1800.0)
    failed = CallRecord("c", "m", "local", "smollm2", "local", "timeout", 0, 0, None, 8000.0)
    metrics.llm_call(ok)
    metrics.llm_call(failed)
    assert _value(metrics, "kefu_llm_tokens_total", model="env-qwen3-14b", variant="canary", kind="prompt") == 900
    assert _value(metrics, "kefu_llm_calls_total", model="local", variant="local", outcome="timeout") == 1
    assert _value(metrics, "kefu_llm_first_token_seconds_sum", model="env-qwen3-14b", variant="canary") == 0.42
    assert _value(metrics, "kefu_turn_duration_seconds_count", stage="llm_first_token") == 1  # the failed one: none
    metrics.circuit("local", "open")
    assert _value(metrics, "kefu_llm_circuit_state", model="local") == 2


def test_agent_console_and_worker_reports() -> None:
    metrics = Metrics()
    metrics.observe_handoff_wait(95.0)
    metrics.observe_handoff_wait(-1.0)  # clocks of two machines: never a negative wait
    assert _value(metrics, "kefu_handoff_wait_seconds_bucket", le="0.0") == 0
    assert _value(metrics, "kefu_handoff_wait_seconds_bucket", le="5.0") == 1
    assert _value(metrics, "kefu_handoff_wait_seconds_bucket", le="90.0") == 1
    assert _value(metrics, "kefu_handoff_wait_seconds_bucket", le="120.0") == 2
    metrics.set_kafka_lag("kefu.inbound", 3, 1250)
    assert _value(metrics, "kefu_kafka_consumer_lag", topic="kefu.inbound", partition="3") == 1250
    metrics.forget_kafka_partition("kefu.inbound", 3)
    metrics.forget_kafka_partition("kefu.inbound", 4)  # never reported: nothing happens
    assert (
        metrics.registry.get_sample_value("kefu_kafka_consumer_lag", {"topic": "kefu.inbound", "partition": "3"})
        is None
    )
    metrics.csat(5, "canary")
    metrics.csat(2, "a-variant-nobody-knows")
    assert _value(metrics, "kefu_csat_score_sum", variant="canary") == 5
    assert _value(metrics, "kefu_csat_ratings_total", rating="2", variant="other") == 1


@pytest.mark.asyncio
async def test_handoff_queue_is_read_from_the_store(runtime: Runtime) -> None:
    before = await waiting_for_agent(runtime.engine)
    for text in ("转人工", "I want to talk to a person"):
        result = await runtime.pipeline.handle(message(f"queue-{uuid.uuid4().hex[:10]}", text))
        assert result.owner == "agent"
    await runtime.pipeline.handle(message(f"queue-{uuid.uuid4().hex[:10]}", "hello"))
    assert await waiting_for_agent(runtime.engine) == before + 2

    metrics = Metrics()
    watcher = asyncio.create_task(watch_handoff_queue(runtime.engine, metrics, every_s=0.01))
    try:
        for _ in range(200):
            if _value(metrics, "kefu_handoff_queue_length") == before + 2:
                break
            await asyncio.sleep(0.01)
    finally:
        watcher.cancel()
    assert _value(metrics, "kefu_handoff_queue_length") == before + 2
