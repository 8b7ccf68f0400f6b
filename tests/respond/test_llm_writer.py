"""The grounded writer's tool round: model-written calls are checked before they run, and a real
llama.cpp server (ChatML function calling, arguments constrained by the tool's schema) calls a tool,
gets its result and answers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from kefu.core.types import Decision, DialogueState, IntentScore, Parse, Reply, WriteRequest
from kefu.llm.types import ModelVersion, RequestedCall
from kefu.packs.loader import check_pack
from kefu.respond.llm_writer import GroundedLlmWriter
from kefu.runtime import Runtime, build_runtime
from tests.conftest import make_settings, message, start_llama


def writer_of(runtime: Runtime) -> GroundedLlmWriter:
    writer = runtime.pipeline.writer
    assert isinstance(writer, GroundedLlmWriter)
    return writer


def request(text_: str) -> WriteRequest:
    parse = Parse(text=text_, language="en", intent=IntentScore("order_status", 1.0), ranking=())
    return WriteRequest(Decision(DialogueState(flow="faq")), parse, "en", Reply("template"), "c1", "m1", "u1", (), 0.0)


async def test_only_offered_tools_with_valid_arguments_run(runtime: Runtime) -> None:
    writer = writer_of(runtime)
    offered = writer.offered("faq")
    assert {t.name for t in offered} == {"lookup_order", "search_products", "search_knowledge"}
    assert [t.name for t in offered] == [t.name for t in writer.offered("product_inquiry")]  # one fixed order
    products = next(t for t in offered if t.name == "search_products")
    assert "maxLength" not in products.parameters["properties"]["query"]  # 4000: too long for a grammar
    assert products.parameters["properties"]["sku"]["maxLength"] == 64
    assert writer.offered("smalltalk") == [] and writer.offered(None) == []
    calls = [
        RequestedCall("a", "cancel_order", '{"order_id": "100003"}'),  # exists, but not offered in this flow
        RequestedCall("b", "lookup_order", "{order_id: 100001"),  # not JSON
        RequestedCall("c", "lookup_order", '["100001"]'),  # not an object
        RequestedCall("d", "lookup_order", '{"order_id": "!!"}'),  # fails the tool's schema
        RequestedCall("e", "lookup_order", '{"order_id": "100001"}'),
    ]
    results = await writer.run_calls(calls, offered, request("where is my order?"))
    assert [r.ok for r in results] == [False, False, False, False, True]
    assert "not allowed here" in str(results[0].error)
    assert "not valid JSON" in str(results[1].error)
    assert "JSON object" in str(results[2].error)
    assert "invalid arguments" in str(results[3].error)
    assert "SF1234567890" in json.dumps(results[4].data)


def test_a_step_entry_narrows_the_flows_tools(runtime: Runtime) -> None:
    writer = writer_of(runtime)
    narrowed = GroundedLlmWriter(
        writer.gateway,
        writer.prompts,
        writer.templates,
        actions=writer.actions,
        tools=writer.tools,
        tool_allow={**writer.tool_allow, "faq.answer": ["search_knowledge"]},
    )
    assert [t.name for t in narrowed.offered("faq", ["start:faq", "faq.search", "faq.answer"])] == ["search_knowledge"]
    assert len(narrowed.offered("faq", ["start:faq", "faq.search", "faq.no_answer"])) == 3


def test_the_pack_check_names_unknown_flows_steps_and_tools(runtime: Runtime) -> None:
    pack = replace(
        runtime.pack,
        llm_tools={"nope": ("search_knowledge",), "faq.nope": ("search_knowledge",), "faq": ("refund_everything",)},
    )
    problems = check_pack(pack, set(runtime.tools.tools))
    assert "pack.yaml: llm_tools names flow 'nope', which no flow file defines" in problems
    assert "pack.yaml: llm_tools names step 'faq.nope', but flow 'faq' has no such step" in problems
    assert "pack.yaml: llm_tools for 'faq': unknown tool 'refund_everything'" in problems


@pytest.fixture(scope="module")
def function_calling_llama() -> Any:
    engine = start_llama(chat_format="chatml-function-calling")
    yield engine
    engine.stop()


@pytest.fixture
async def tool_runtime(tmp_path: Path, function_calling_llama: Any) -> AsyncIterator[Runtime]:
    runtime = await build_runtime(make_settings(tmp_path, turn_deadline_s=90, llm_call_timeout_s=80))
    assert runtime.registry is not None
    forced = {"type": "function", "function": {"name": "search_products"}}
    version = ModelVersion("tools", function_calling_llama.base_url, "smollm2", params={"tool_choice": forced})
    await runtime.registry.add(version, actor="test")
    await runtime.registry.promote("tools", actor="test")
    assert runtime.gateway is not None
    await runtime.gateway.refresh()  # as the admin endpoints do after a change
    yield runtime
    await runtime.close()


async def test_a_real_model_calls_an_offered_tool_and_answers_after_it(tool_runtime: Runtime) -> None:
    result = await tool_runtime.pipeline.handle(message("tools-1", "What payment methods do you accept?", locale="en"))
    async with tool_runtime.engine.connect() as conn:
        rows = (
            await conn.execute(text("SELECT type, payload FROM events WHERE conversation_id = 'tools-1' ORDER BY seq"))
        ).all()
    events = [(kind, json.loads(p) if isinstance(p, str) else p) for kind, p in rows]
    by_model = [p for kind, p in events if kind == "tool_called" and p.get("by") == "model"]
    assert [p["tool"] for p in by_model] == ["search_products"]
    assert by_model[0]["ok"] is True and isinstance(by_model[0]["args"].get("query"), str)
    [sent] = [p for kind, p in events if kind == "reply_sent"]
    assert sent["assigned"] == {"id": "smollm2", "version": "tools", "variant": "stable"}
    [reply] = [p for kind, p in events if kind == "llm_reply"]
    assert [a["outcome"] for a in reply["attempts"]] == ["ok", "ok"]  # the tool round, then the answer
    assert reply["outcome"] in ("ok", "rejected")
    if reply["outcome"] == "ok":
        assert result.model is not None and result.model.version == "tools" and result.reply.citations
    else:  # the small model's answer failed the grounding check: the cited template answer stands
        assert result.model is None and "(Source: Payment methods" in result.reply.text
