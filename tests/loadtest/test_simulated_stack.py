"""The vLLM simulator as a server: its OpenAI-compatible API, latency as the client sees it, and a real kefu
server (registered with ``kefu model add``) streaming its answers from ``kefu llm simulate``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kefu.llm.local import free_port
from kefu.llm.prompt import render_chatml
from kefu.llm.sim_profiles import serving_profile
from kefu.llm.sim_server import SimulatedVllm, build_app
from kefu.llm.tokens import QwenTokens
from tests.conftest import ROOT
from tests.e2e.conftest import start_server, stop_server
from tests.e2e.test_llm_gateway import stream_turn
from tests.llm.misbehaving import serving

PASSAGES_EN = (
    "Passages:\n\n[1] Warranty (1 year)\nEvery electronic product we sell comes with a 1-year warranty, counted "
    "from the delivery date. Water damage is not covered.\n\n[2] Returns\nUnused items can be returned within 7 "
    "days.\n\nCustomer's message:\nhow long is the warranty?"
)
PASSAGES_ZH = "资料：\n\n[1] 一年质保\n所有电子产品均享受一年质保。进水损坏不在保修范围内。\n\n顾客的消息：\n保修多久？"


@pytest.fixture(scope="module")
def tokens() -> QwenTokens:
    return QwenTokens()


@pytest.fixture(scope="module")
def sim_url(tokens: QwenTokens) -> Iterator[str]:
    sim = SimulatedVllm(serving_profile("a100-40gb"), tokens=tokens, stream_interval_s=0)
    with serving(build_app(sim)) as root:
        yield f"{root}/v1"


def chat(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"model": "qwen3-14b", "messages": messages, **extra}


def stream(url: str, body: dict[str, Any]) -> tuple[list[dict[str, Any]], float, float]:
    """The stream's chunks, the time to its first content and the whole time, as the client sees them."""
    chunks: list[dict[str, Any]] = []
    first = 0.0
    started = time.perf_counter()
    with httpx.stream("POST", f"{url}/chat/completions", json=body, timeout=30) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                chunks.append(json.loads(line[6:]))
                if not first and any(c["delta"].get("content") for c in chunks[-1]["choices"]):
                    first = time.perf_counter() - started
            assert line != "data: [DONE]" or chunks  # [DONE] comes last
    return chunks, first, time.perf_counter() - started


def test_models_and_errors(sim_url: str) -> None:
    listed = httpx.get(f"{sim_url}/models").json()
    assert [m["id"] for m in listed["data"]] == ["qwen3-14b"]
    post = f"{sim_url}/chat/completions"
    assert httpx.post(post, json=chat([{"role": "user", "content": "hi"}], model="gpt-4")).status_code == 404
    assert httpx.post(post, json=chat([])).status_code == 400
    assert httpx.post(post, json=chat([{"role": "user", "content": "hi"}], max_tokens=0)).status_code == 400
    assert httpx.post(post, content=b"{not json").status_code == 400
    too_long = [{"role": "user", "content": "词" * 20_000}]
    assert "maximum context length" in httpx.post(post, json=chat(too_long)).json()["error"]["message"]


def test_streamed_answer_cites_the_passages_and_ends_with_usage(sim_url: str, tokens: QwenTokens) -> None:
    messages = [{"role": "system", "content": "You are the shop's assistant."},
                {"role": "user", "content": PASSAGES_EN}]  # fmt: skip
    chunks, _, _ = stream(sim_url, chat(messages, stream=True, stream_options={"include_usage": True}))
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text.startswith("Every electronic product we sell comes with a 1-year warranty") and "[1]" in text
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    usage = chunks[-1]["usage"]
    assert chunks[-1]["choices"] == []
    assert usage["prompt_tokens"] == len(tokens.encode(render_chatml(messages)))  # Qwen3 tokens of the template
    # With stream_interval 0 every token is a chunk of its own.
    assert usage["completion_tokens"] == len(tokens.encode(text)) == len(chunks) - 2

    zh = httpx.post(f"{sim_url}/chat/completions", json=chat([{"role": "user", "content": PASSAGES_ZH}])).json()
    assert zh["choices"][0]["message"]["content"].startswith("所有电子产品均享受一年质保 [1]。")


def test_max_tokens_cuts_the_answer_and_ignore_eos_fills_it(sim_url: str) -> None:
    body = chat([{"role": "user", "content": PASSAGES_EN}], max_tokens=5)
    answer = httpx.post(f"{sim_url}/chat/completions", json=body).json()
    assert answer["usage"]["completion_tokens"] == 5 and answer["choices"][0]["finish_reason"] == "length"
    natural = httpx.post(f"{sim_url}/chat/completions", json=chat(body["messages"])).json()
    assert natural["choices"][0]["finish_reason"] == "stop" and natural["usage"]["completion_tokens"] < 120

    long = httpx.post(f"{sim_url}/chat/completions", json={**body, "max_tokens": 120, "ignore_eos": True}).json()
    assert long["usage"]["completion_tokens"] == 120 and long["choices"][0]["finish_reason"] == "length"
    text = long["choices"][0]["message"]["content"]
    assert text.startswith(natural["choices"][0]["message"]["content"])  # the answer, then again from its start


def test_the_client_sees_the_modelled_time_to_first_token_and_token_rate(sim_url: str) -> None:
    profile = serving_profile("a100-40gb")
    filler = "Every product has a one-year manufacturer warranty from the day it is delivered. " * 200
    body = chat([{"role": "user", "content": f"Passages:\n\n[1] Warranty\n{filler}\n\nCustomer's message:\nwarranty?"}],
                stream=True, max_tokens=40)  # fmt: skip
    chunks, ttft, total = stream(sim_url, body)
    prompt = httpx.get(f"{sim_url.removesuffix('/v1')}/sim/stats").json()["mean_prompt_tokens"]
    expected_ttft = profile.prefill_s(3000) + profile.decode_s(1)  # ~3,000 prompt tokens at 7k/s: ~0.45 s
    assert ttft == pytest.approx(expected_ttft, rel=0.25)
    assert total - ttft == pytest.approx(39 * profile.decode_s(1, 3040), rel=0.25)
    assert prompt is not None and len(chunks) >= 40


def test_concurrent_requests_slow_each_other(sim_url: str) -> None:
    import asyncio

    root = sim_url.removesuffix("/v1")
    httpx.post(f"{root}/sim/reset")
    body = chat([{"role": "user", "content": PASSAGES_EN}], max_tokens=30)

    async def many(n: int) -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            await asyncio.gather(*(client.post(f"{sim_url}/chat/completions", json=body) for _ in range(n)))

    asyncio.run(many(1))
    alone = httpx.get(f"{root}/sim/stats").json()
    httpx.post(f"{root}/sim/reset")
    asyncio.run(many(24))
    crowded = httpx.get(f"{root}/sim/stats").json()
    assert crowded["finished"] == 24
    assert crowded["itl"]["mean_ms"] > alone["itl"]["mean_ms"]
    assert crowded["ttft"]["max_ms"] > alone["ttft"]["max_ms"]
    assert crowded["cached_share"] > 0.5  # the same prompt 24 times: the prefix cache serves most of it


def kefu_cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KEFU_DATA_DIR": str(data)}
    return subprocess.run([sys.executable, "-m", "kefu.cli.main", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


@pytest.mark.e2e
def test_a_kefu_server_streams_its_knowledge_answers_from_the_simulator(tmp_path: Path) -> None:
    port = free_port()
    simulator = subprocess.Popen(
        [sys.executable, "-m", "kefu.cli.main", "llm", "simulate", "--gpu", "h100", "--port", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    sim = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{sim}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        added = kefu_cli(tmp_path, "model", "add", "sim", "--base-url", sim, "--model", "qwen3-14b")
        assert added.returncode == 0, added.stderr
        assert kefu_cli(tmp_path, "model", "promote", "sim").returncode == 0
        process, base = start_server(tmp_path)
        try:
            for question, language in (("how long is the warranty?", "en"), ("保修多久", "zh")):
                deltas, final = stream_turn(base, question)
                assert final["model"] == {"id": "qwen3-14b", "version": "sim", "variant": "stable"}, (language, final)
                assert len(deltas) >= 2  # sentence by sentence, as the simulator streamed them
                assert "[1]" in "".join(deltas) or final["reply"]["citations"]
            stats = httpx.get(f"http://127.0.0.1:{port}/sim/stats").json()
            assert stats["finished"] >= 2 and stats["mean_prompt_tokens"] > 300  # kefu's real prompts
        finally:
            stop_server(process)
    finally:
        simulator.terminate()
        simulator.wait(10)
