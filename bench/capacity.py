"""Capacity planning for kefu's model server (Qwen3-14B on vLLM) from the simulator's model, and the load
generator and the simulator measured for real on this machine. Writes ``bench/results/capacity.json`` and
renders ``docs/capacity.md`` from it.

Parts (``--parts``, default all; a part not run keeps its last results from the JSON file):

* ``model``: the design load (100 requests/s, Poisson) through ``kefu.llm.simulator`` in virtual time for
  every GPU x precision x prefix caching: the arithmetic bound, the fewest GPUs whose p90 time to first
  token is <= 1.5 s, and p90 TTFT against the load per GPU. kefu's prompt (mean tokens, cacheable share)
  comes from ``bench/results/llm.json``; the answer is kefu's cap, ``ANSWER_PARAMS["max_tokens"]``.
* ``ceiling``: ``kefu loadtest``'s generator against a trivial server (``kefu.loadtest.floor``) in another
  process, at rising rates: the highest rate it keeps.
* ``live``: ``kefu serve`` + ``kefu llm simulate`` + the open-loop generator at rising rates (kefu's own
  conversations), recording the prompts kefu sends.
* ``replay``: those prompts sent straight to ``kefu llm simulate`` at the design load with the GPU counts
  the model part found (and one fewer): p90 TTFT measured on the wall clock, over HTTP, with the Qwen3
  tokenizer and the prefix cache working on kefu's real prompts.

Usage::

    python bench/capacity.py [--parts model,ceiling,live,replay] [--live-rates 10,25,50] [--live-duration 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import cycle
from pathlib import Path
from typing import Any

import httpx
import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.capacity_doc import render  # noqa: E402
from kefu.config.settings import Settings  # noqa: E402
from kefu.llm.local import free_port  # noqa: E402
from kefu.llm.prompt import render_chatml  # noqa: E402
from kefu.llm.sim_profiles import GPUS, PRECISIONS, ServingProfile, serving_profile  # noqa: E402
from kefu.llm.simulator import BLOCK_TOKENS, Engine, SimRequest, block_hashes, run_engine  # noqa: E402
from kefu.llm.tokens import QwenTokens  # noqa: E402
from kefu.loadtest.runner import LoadPlan, LoadRun, Target  # noqa: E402
from kefu.loadtest.schedule import arrival_offsets  # noqa: E402
from kefu.loadtest.stats import latency_summary  # noqa: E402
from kefu.respond.llm_writer import ANSWER_PARAMS  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "capacity.json"
PROMPTS = ROOT / "bench" / "results" / "capacity_prompts.jsonl"  # kefu's model requests in the live part
DOC = ROOT / "docs" / "capacity.md"
MODEL_CACHE = ROOT / "data" / "models"
DESIGN_RPS = 100.0
TTFT_TARGET_S = 1.5
ANSWER_LIMIT_S = float(Settings.model_fields["llm_call_timeout_s"].default)  # kefu cuts a longer model call
MODEL_SECONDS, MODEL_WARMUP_S = 180.0, 30.0
PARTS = ("model", "ceiling", "live", "replay")
# Configurations replayed on the wall clock (each at its GPU count and one fewer).
# Every request in flight needs its own connection: more than the answers in flight at the design load
# (100/s x up to ~40 s), or the excess would wait in the generator where the simulator cannot see it.
MAX_REPLAY_CONNECTIONS = 6000
NONCE = "@nonce@"  # replaced by each replayed request's number
REPLAYED = (("h100", "bf16", True), ("h100", "bf16", False), ("h100", "fp8", True), ("a100-80gb", "bf16", True))


# ------------------------------------------------------------------------------------------------ model


def kefu_workload() -> dict[str, Any]:
    prefix = json.loads((ROOT / "bench" / "results" / "llm.json").read_text())["prefix"]
    return {
        "prompt_tokens": round(prefix["mean_prompt_tokens"]),
        "cacheable_share": prefix["cacheable_share"],
        "answer_tokens": int(ANSWER_PARAMS["max_tokens"]),
        "source": "bench/results/llm.json (prefix) and kefu.respond.llm_writer.ANSWER_PARAMS (max_tokens)",
    }


def requests_for(workload: dict[str, Any], rate: float, seconds: float, every: int = 1) -> list[SimRequest]:
    """Poisson arrivals at ``rate``; every ``every``-th one (one replica's share under round-robin). Each
    prompt starts with the same ``cacheable_share`` of tokens (system prompt, persona, tools) and ends in
    tokens of its own."""
    prompt, answer = workload["prompt_tokens"], workload["answer_tokens"]
    shared = list(range(round(prompt * workload["cacheable_share"])))
    arrivals = arrival_offsets(rate, seconds, "poisson", seed=11)[::every]
    out = []
    for i, at in enumerate(arrivals):
        own = [1_000_000 + i * prompt + k for k in range(prompt - len(shared))]
        out.append(SimRequest(prompt, answer, block_hashes(shared + own), arrival=at))
    return out


def replica_run(
    profile: ServingProfile,
    caching: bool,
    workload: dict[str, Any],
    gpus: int,
    seconds: float = MODEL_SECONDS,
    warmup_s: float = MODEL_WARMUP_S,
) -> dict[str, Any]:
    """One replica's share of the design load, in virtual time; figures over arrivals after the warm-up."""
    requests = requests_for(workload, DESIGN_RPS, seconds, gpus)
    run_engine(Engine(profile, prefix_caching=caching), requests)
    kept = [r for r in requests if r.arrival >= warmup_s]
    return {
        "gpus": gpus,
        "ttft": latency_summary(r.ttft or 0.0 for r in kept),
        "itl": latency_summary(r.itl or 0.0 for r in kept),
        "answer": latency_summary((r.finished_at or 0.0) - r.arrival for r in kept),
    }


def arithmetic(profile: ServingProfile, caching: bool, workload: dict[str, Any]) -> dict[str, Any]:
    """The throughput bound, step by step (what the table in docs/capacity.md shows)."""
    prompt, answer = workload["prompt_tokens"], workload["answer_tokens"]
    shared = round(prompt * workload["cacheable_share"])
    cached = shared // BLOCK_TOKENS * BLOCK_TOKENS if caching else 0
    computed = prompt - cached
    prefill_s = profile.prefill_s(computed)
    per_sequence = computed + answer  # KV a sequence holds besides the shared cached blocks
    by_kv = (profile.kv_tokens - cached) // per_sequence
    batch = min(profile.max_num_seqs, by_kv)
    step_s = profile.decode_s(batch, batch * (prompt + answer // 2))
    decode_per_request_s = answer * step_s / batch
    max_rps = 1.0 / (prefill_s + decode_per_request_s)
    idle_ttft = prefill_s + profile.decode_s(1)
    return {
        "cached_tokens": cached,
        "prefill_tokens": computed,
        "prefill_ms": round(prefill_s * 1000, 1),
        "kv_tokens": profile.kv_tokens,
        "sequences_by_kv": by_kv,
        "batch": batch,
        "step_ms": round(step_s * 1000, 2),
        "decode_per_request_ms": round(decode_per_request_s * 1000, 1),
        "max_rps_per_gpu": round(max_rps, 2),
        "gpus_by_throughput": math.ceil(DESIGN_RPS / max_rps),
        "idle_ttft_ms": round(idle_ttft * 1000, 1),
        "idle_answer_ms": round((idle_ttft + (answer - 1) * profile.decode_s(1, prompt)) * 1000, 1),
    }


def plan_config(gpu: str, precision: str, caching: bool, workload: dict[str, Any]) -> dict[str, Any]:
    """The fewest GPUs meeting p90 TTFT <= 1.5 s, then the fewest also finishing the p90 answer within kefu's
    model-call timeout (a slower answer is cut off and the template reply stands)."""
    profile = serving_profile(gpu, precision)
    bound = arithmetic(profile, caching, workload)
    runs: dict[int, dict[str, Any]] = {}

    def run(gpus: int) -> dict[str, Any]:
        if gpus not in runs:
            runs[gpus] = replica_run(profile, caching, workload, gpus)
        return runs[gpus]

    def fewest(ok: Any, start: int) -> int:
        gpus = start
        while not ok(run(gpus)):
            gpus += 1
        return gpus

    def ttft_ok(r: dict[str, Any]) -> bool:
        return bool(r["ttft"]["p90_ms"] <= TTFT_TARGET_S * 1000)

    def answer_ok(r: dict[str, Any]) -> bool:
        return ttft_ok(r) and bool(r["answer"]["p90_ms"] <= ANSWER_LIMIT_S * 1000)

    for_ttft = fewest(ttft_ok, max(1, bound["gpus_by_throughput"] - 1))
    for_answer = fewest(answer_ok, for_ttft)
    return {
        "gpu": gpu,
        "precision": precision,
        "prefix_caching": caching,
        "arithmetic": bound,
        "gpus": for_ttft,
        "at_gpus": run(for_ttft),
        "one_fewer": run(for_ttft - 1) if for_ttft > 1 else None,
        "gpus_for_answer": for_answer,
        "at_gpus_for_answer": run(for_answer),
    }


def knee(gpu: str, precision: str, caching: bool, workload: dict[str, Any]) -> list[dict[str, Any]]:
    """p90 TTFT against requests/s per GPU, for one configuration: where it breaks."""
    profile = serving_profile(gpu, precision)
    top = arithmetic(profile, caching, workload)["max_rps_per_gpu"]
    rows = []
    for share in (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0, 1.05):
        rate = round(top * share, 2)
        requests = requests_for(workload, rate, MODEL_SECONDS)
        run_engine(Engine(profile, prefix_caching=caching), requests)
        kept = [r for r in requests if r.arrival >= MODEL_WARMUP_S]
        rows.append({"rps_per_gpu": rate, "share_of_bound": share,
                     "ttft": latency_summary(r.ttft or 0.0 for r in kept),
                     "itl": latency_summary(r.itl or 0.0 for r in kept)})  # fmt: skip
    return rows


def model_part() -> dict[str, Any]:
    workload = kefu_workload()
    plans = []
    for gpu in GPUS:
        for precision in PRECISIONS:
            for caching in (False, True):
                plan = plan_config(gpu, precision, caching, workload)
                print(f"model: {gpu} {precision} cache={caching}: {plan['gpus']} GPUs (p90 TTFT "
                      f"{plan['at_gpus']['ttft']['p90_ms']} ms), {plan['gpus_for_answer']} with answers in time",
                      flush=True)  # fmt: skip
                plans.append(plan)
    return {"workload": workload, "design_rps": DESIGN_RPS, "ttft_target_s": TTFT_TARGET_S,
            "answer_limit_s": ANSWER_LIMIT_S,
            "seconds": MODEL_SECONDS, "warmup_s": MODEL_WARMUP_S, "plans": plans,
            "knee": {"config": "h100 bf16 prefix caching", "rows": knee("h100", "bf16", True, workload)}}  # fmt: skip


# ------------------------------------------------------------------------------------- real processes


@contextmanager
def process(argv: Sequence[str], log: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        child = subprocess.Popen(list(argv), cwd=ROOT, env={**os.environ, **(env or {})}, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        try:
            yield child
        finally:
            child.terminate()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(5)


def wait_http(url: str, child: subprocess.Popen[bytes], log: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"{url}: the process exited:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {seconds:.0f} s")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(plan: LoadPlan, source: Any = None) -> dict[str, Any]:
    run = LoadRun(plan, source)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run.execute())
    summary = run.summary()
    summary.pop("timeline")
    return summary


def ceiling_part(work: Path, rates: Sequence[float], seconds: float) -> dict[str, Any]:
    port = free_port()
    code = f"import uvloop; from kefu.loadtest.floor import serve_forever; uvloop.run(serve_forever({port}))"
    rows = []
    with process([sys.executable, "-c", code], work / "floor.log"):
        time.sleep(1.0)
        for rate in rates:
            summary = load(LoadPlan(Target("127.0.0.1", port, ""), rate, seconds, timeout_s=5))
            rows.append({k: summary[k] for k in ("target_rps", "offered_rps", "throughput_rps", "errors",
                                                  "latency", "send_lag", "connections_opened")})  # fmt: skip
            print(f"ceiling: {rate}/s -> {summary['throughput_rps']}/s, p99 {summary['latency']['p99_ms']} ms, "
                  f"send lag p99 {summary['send_lag']['p99_ms']} ms", flush=True)  # fmt: skip
    kept = [r["target_rps"] for r in rows if r["errors"] == 0 and r["throughput_rps"] >= 0.97 * r["offered_rps"]
            and (r["send_lag"]["p99_ms"] or 0) <= 10]  # fmt: skip
    return {"seconds": seconds, "rows": rows, "ceiling_rps": max(kept) if kept else None}


def simulate_argv(port: int, gpu: str, precision: str, caching: bool, replicas: int, record: Path | None) -> list[str]:
    cache = "--prefix-cache" if caching else "--no-prefix-cache"
    argv = [sys.executable, "-m", "kefu.cli.main", "llm", "simulate", "--gpu", gpu, "--precision", precision,
            "--replicas", str(replicas), "--port", str(port), cache]  # fmt: skip
    return [*argv, "--record", str(record)] if record is not None else argv


def live_part(work: Path, sweeps: Sequence[tuple[str, int, Sequence[float]]], seconds: float) -> dict[str, Any]:
    """One kefu server; for each (GPU, replicas, turn rates) a simulator on the same port, each rate in turn."""
    sim_port, kefu_port = free_port(), free_port()
    base = f"http://127.0.0.1:{sim_port}"
    prompts = work / "prompts.jsonl"
    data = work / "kefu-data"
    data.mkdir()
    env = {"KEFU_DATA_DIR": str(data), "KEFU_MODEL_CACHE_DIR": str(MODEL_CACHE), "KEFU_LOG_LEVEL": "warning",
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}  # fmt: skip
    kefu = [sys.executable, "-m", "kefu.cli.main"]
    for step in (["model", "add", "sim", "--base-url", f"{base}/v1", "--model", "qwen3-14b", "--no-check"],
                 ["model", "promote", "sim"]):  # fmt: skip
        subprocess.run([*kefu, *step], cwd=ROOT, env={**os.environ, **env}, check=True, capture_output=True)
    rows = []
    with process([*kefu, "serve", "--port", str(kefu_port)], work / "kefu.log", env) as server:
        wait_http(f"http://127.0.0.1:{kefu_port}/readyz", server, work / "kefu.log")
        target = Target("127.0.0.1", kefu_port, "")
        for gpu, replicas, rates in sweeps:
            with process(simulate_argv(sim_port, gpu, "bf16", True, replicas, prompts), work / "sim.log") as sim:
                wait_http(f"{base}/v1/models", sim, work / "sim.log")
                load(LoadPlan(target, 5, 10, seed=99))  # warm-up (kefu's caches, the model circuit), not counted
                for rate in rates:
                    httpx.post(f"{base}/sim/reset")
                    cpu = (cpu_seconds(server.pid), cpu_seconds(sim.pid), time.process_time())
                    started = time.monotonic()
                    summary = load(LoadPlan(target, rate, seconds, seed=int(rate)))
                    wall = time.monotonic() - started
                    stats = httpx.get(f"{base}/sim/stats").json()
                    row = {"gpu": gpu, "replicas": replicas, "rps": rate, "turns": summary, "llm": stats,
                           "llm_rps": round(stats["finished"] / seconds, 2),
                           "kefu_cpu_cores": round((cpu_seconds(server.pid) - cpu[0]) / wall, 2),
                           "simulator_cpu_cores": round((cpu_seconds(sim.pid) - cpu[1]) / wall, 2),
                           "generator_cpu_cores": round((time.process_time() - cpu[2]) / wall, 2)}  # fmt: skip
                    rows.append(row)
                    print(f"live: {gpu} x{replicas} {rate}/s -> {summary['throughput_rps']}/s ok, errors "
                          f"{summary['errors_by_kind']}, turn p90 {summary['latency']['p90_ms']} ms, model "
                          f"{row['llm_rps']}/s p90 TTFT {stats['ttft']['p90_ms']} ms, CPU kefu "
                          f"{row['kefu_cpu_cores']} sim {row['simulator_cpu_cores']} generator "
                          f"{row['generator_cpu_cores']}", flush=True)  # fmt: skip
    kept = [json.loads(line) for line in prompts.read_text().splitlines() if line.strip()]
    kept = [p for p in kept if p.get("max_tokens") != 1]  # the writer's one-token warm-up calls
    distinct: dict[str, dict[str, Any]] = {}
    for prompt in kept:
        key = json.dumps(prompt, ensure_ascii=False, sort_keys=True)
        distinct.setdefault(key, {**prompt, "count": 0})["count"] += 1
    PROMPTS.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in distinct.values()), encoding="utf-8")
    return {"seconds": seconds, "rows": rows, "prompts_recorded": len(kept), "distinct_prompts": len(distinct)}


class ReplaySource:
    """Recorded model requests, in turn, as non-streamed chat completions; each request's ``NONCE`` becomes a
    number of its own, so no two requests share more than the system prompt (see :func:`replay_bodies`)."""

    def __init__(self, bodies: Sequence[dict[str, Any]]) -> None:
        self._bodies = cycle([json.dumps(b, ensure_ascii=False).encode() for b in bodies])
        self._sent = 0

    def next_request(self) -> tuple[str, bytes, None]:
        self._sent += 1
        return "/v1/chat/completions", next(self._bodies).replace(NONCE.encode(), str(self._sent).encode(), 1), None

    def answered(self, handle: None, ok: bool) -> None:
        pass  # requests are independent


def replay_bodies(prompts: Sequence[dict[str, Any]], answer: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """kefu's recorded requests made comparable with the plan: each answer exactly ``answer`` tokens
    (vLLM's ``ignore_eos``), and a number at the start of the first message after the system prompt, so that
    only the system prompt (persona, rules, tools) is shared, not whole prompts that the recording repeats.
    Returns the bodies and their workload (mean prompt tokens, shared share) for the model's prediction."""
    tokens = QwenTokens()
    bodies, lengths, shares = [], [], []
    for prompt in prompts:
        messages = [dict(m) for m in prompt["messages"]]
        first = next(k for k, m in enumerate(messages) if m.get("role") != "system")
        messages[first]["content"] = f"(#{NONCE}) {messages[first].get('content') or ''}"
        tools = prompt.get("tools") or []
        ids = tokens.encode(render_chatml(messages, tools))
        head = render_chatml(messages[:first], tools).removesuffix("<|im_start|>assistant\n") + "<|im_start|>user\n"
        lengths.append(len(ids))
        shares.append(len(tokens.encode(head)) / len(ids))
        bodies.append({"model": "qwen3-14b", "messages": messages, "tools": tools, "max_tokens": answer,
                       "ignore_eos": True})  # fmt: skip
    workload = {"prompt_tokens": round(sum(lengths) / len(lengths)),
                "cacheable_share": round(sum(shares) / len(shares), 3), "answer_tokens": answer,
                "source": f"{len(prompts)} prompts kefu sent in the live part (capacity_prompts.jsonl)"}  # fmt: skip
    return bodies, workload


def replay_part(work: Path, seconds: float) -> dict[str, Any]:
    distinct = [json.loads(line) for line in PROMPTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    prompts = [p for p in distinct for _ in range(p.get("count", 1))]  # as often as kefu sent each
    random.Random(0).shuffle(prompts)
    bodies, workload = replay_bodies(prompts, int(ANSWER_PARAMS["max_tokens"]))
    print(f"replay workload: {workload}", flush=True)
    rows = []
    for gpu, precision, caching in REPLAYED:
        plan = plan_config(gpu, precision, caching, workload)
        profile = serving_profile(gpu, precision)
        for gpus in sorted({plan["gpus"] - 1, plan["gpus"], plan["gpus_for_answer"]} - {0}):
            predicted = replica_run(profile, caching, workload, gpus, seconds, 0.0)
            port = free_port()
            with process(simulate_argv(port, gpu, precision, caching, gpus, None), work / "replay-sim.log") as sim:
                wait_http(f"http://127.0.0.1:{port}/v1/models", sim, work / "replay-sim.log")
                cpu = cpu_seconds(sim.pid)
                summary = load(LoadPlan(Target("127.0.0.1", port, ""), DESIGN_RPS, seconds, timeout_s=60,
                                        max_connections=MAX_REPLAY_CONNECTIONS),
                               ReplaySource(bodies))  # fmt: skip
                stats = httpx.get(f"http://127.0.0.1:{port}/sim/stats").json()
                cores = round((cpu_seconds(sim.pid) - cpu) / seconds, 2)
            row = {"gpu": gpu, "precision": precision, "prefix_caching": caching, "gpus": gpus,
                   "planned_gpus": plan["gpus"], "planned_gpus_for_answer": plan["gpus_for_answer"],
                   "model": predicted, "requests": summary, "sim": stats, "simulator_cpu_cores": cores}  # fmt: skip
            rows.append(row)
            print(f"replay: {gpu} {precision} cache={caching} x{gpus}: p90 TTFT {stats['ttft']['p90_ms']} ms "
                  f"(model {predicted['ttft']['p90_ms']}), errors {summary['errors_by_kind']}", flush=True)  # fmt: skip
    return {"rps": DESIGN_RPS, "seconds": seconds, "prompts": len(prompts), "distinct_prompts": len(distinct),
            "workload": workload, "rows": rows}  # fmt: skip


# ------------------------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--parts", default=",".join(PARTS), help="comma-separated: " + ", ".join(PARTS) + " ('': render only)"
    )
    parser.add_argument("--ceiling-rates", default="300,600,1000,1500,2000,3000")
    parser.add_argument("--ceiling-duration", type=float, default=10.0)
    parser.add_argument("--live-rates", default="10,25,50,75,100,125,150", help="turns/s, against one H100")
    parser.add_argument("--live-duration", type=float, default=30.0)
    parser.add_argument("--replay-duration", type=float, default=40.0)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if unknown := set(parts) - set(PARTS):
        print(f"unknown parts: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    with tempfile.TemporaryDirectory(prefix="kefu-capacity-") as tmp:
        work = Path(tmp)
        if "model" in parts:
            results["model"] = model_part()
        if "ceiling" in parts:
            rates = [float(r) for r in args.ceiling_rates.split(",")]
            results["ceiling"] = ceiling_part(work, rates, args.ceiling_duration)
        if "live" in parts:
            sweeps = [("h100", 1, [float(r) for r in args.live_rates.split(",")]),
                      ("a100-80gb", 1, [DESIGN_RPS]), ("a100-80gb", 2, [DESIGN_RPS])]  # fmt: skip
            results["live"] = live_part(work, sweeps, args.live_duration)
        if "replay" in parts:
            results["replay"] = replay_part(work, args.replay_duration)
    if parts:  # none: only render docs/capacity.md again from the JSON file
        command = " ".join(["python bench/capacity.py", *(sys.argv[1:] if argv is None else argv)])
        stamp = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "command": command}
        results.setdefault("runs", {}).update({part: stamp for part in parts})
    RESULTS.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    DOC.write_text(render(results), encoding="utf-8")
    print(f"wrote {RESULTS.relative_to(ROOT)} and {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
