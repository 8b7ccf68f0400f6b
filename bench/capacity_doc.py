"""``docs/capacity.md`` rendered from ``bench/results/capacity.json`` (written by ``bench/capacity.py``), so the
figures in the text are always the ones computed. Edit the prose here, not in the generated page."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kefu.llm.sim_profiles import CALIBRATION, GPUS, PRECISIONS, serving_profile

EXAMPLE = ("h100", "bf16", True)  # the configuration worked through step by step


def _ms(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _s(value_ms: float | None) -> str:
    return "—" if value_ms is None else f"{value_ms / 1000:.2f} s"


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _errors(summary: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in summary["errors_by_kind"].items()) or "0"


def _label(plan: Mapping[str, Any]) -> str:
    return f"{plan['gpu']} | {plan['precision']} | {'on' if plan['prefix_caching'] else 'off'}"


def summary(model: Mapping[str, Any]) -> list[str]:
    lines = [
        "| GPU | weights | prefix cache | GPUs for p90 TTFT ≤ 1.5 s | p90 TTFT there | p90 TTFT, one GPU fewer "
        f"| p90 answer there | GPUs for p90 answer ≤ {model['answer_limit_s']:g} s too | p90 TTFT / answer there |",
        "| --- | --- | --- | --: | --: | --: | --: | --: | --: |",
    ]
    for p in model["plans"]:
        fewer = p["one_fewer"]["ttft"]["p90_ms"] if p["one_fewer"] else None
        answer = p["at_gpus_for_answer"]
        lines.append(
            f"| {_label(p)} | **{p['gpus']}** | {_s(p['at_gpus']['ttft']['p90_ms'])} | {_s(fewer)} "
            f"| {_s(p['at_gpus']['answer']['p90_ms'])} | **{p['gpus_for_answer']}** "
            f"| {_s(answer['ttft']['p90_ms'])} / {_s(answer['answer']['p90_ms'])} |"
        )
    return lines


def calibration() -> list[str]:
    lines = ["| figure | value | sets | source |", "| --- | --- | --- | --- |"]
    lines += [f"| {c.figure} | {c.value} | {c.sets} | {c.source} |" for c in CALIBRATION]
    return lines


def recommendation(model: Mapping[str, Any]) -> str:
    """The fewest GPUs per GPU type (answers in time), with the configuration that needs them."""
    parts = []
    for gpu in GPUS:
        best = min((p for p in model["plans"] if p["gpu"] == gpu), key=lambda p: p["gpus_for_answer"])
        cache = "prefix caching" if best["prefix_caching"] else "no prefix caching"
        parts.append(f"**{best['gpus_for_answer']} x {gpu}** ({best['precision']}, {cache}; {best['gpus']} meet "
                     "the TTFT target alone)")  # fmt: skip
    return "Fewest GPUs per type for the design load with answers in time: " + ", ".join(parts) + "."


def decode_tables() -> list[str]:
    batches = (1, 8, 32, 64, 128, 256)
    lines = [
        "| GPU | weights | " + " | ".join(f"ITL at batch {b} (ms)" for b in batches)
        + " | prefill tokens/s | KV tokens |",
        "| --- | --- | " + " | ".join("--:" for _ in batches) + " | --: | --: |",
    ]  # fmt: skip
    for gpu in GPUS:
        for precision in PRECISIONS:
            profile = serving_profile(gpu, precision)
            cells = " | ".join(f"{profile.decode_s(b, b * 512) * 1000:.1f}" for b in batches)
            lines.append(
                f"| {gpu} | {precision} | {cells} | {profile.prefill_tokens_per_s:,.0f} | {profile.kv_tokens:,} |"
            )
    return lines


def arithmetic(model: Mapping[str, Any]) -> list[str]:
    w = model["workload"]
    lines = [
        "| GPU | weights | prefix cache | cached | prefill tokens | prefill ms | sequences by KV | batch B "
        "| step(B) ms | decode per request ms | max req/s per GPU | GPUs by throughput | idle TTFT ms "
        "| idle answer s |",
        "| --- | --- | --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |",
    ]
    for p in model["plans"]:
        a = p["arithmetic"]
        lines.append(
            f"| {_label(p)} | {a['cached_tokens']} | {a['prefill_tokens']} | {a['prefill_ms']} "
            f"| {a['sequences_by_kv']:,} | {a['batch']} | {a['step_ms']} | {a['decode_per_request_ms']} "
            f"| {a['max_rps_per_gpu']} "
            f"| {a['gpus_by_throughput']} | {a['idle_ttft_ms']} | {a['idle_answer_ms'] / 1000:.2f} |"
        )
    example = next(p for p in model["plans"] if (p["gpu"], p["precision"], p["prefix_caching"]) == EXAMPLE)
    a = example["arithmetic"]
    prompt, answer, share = w["prompt_tokens"], w["answer_tokens"], w["cacheable_share"]
    profile = serving_profile("h100", "bf16")
    lines += [
        "",
        "Worked example, H100, bf16, prefix caching on:",
        "",
        f"1. Shared prefix: {share:.3f} x {prompt} = {round(prompt * share)} tokens; vLLM caches whole 16-token "
        f"blocks, so {a['cached_tokens']} tokens are reused and {a['prefill_tokens']} computed.",
        f"2. Prefill: {a['prefill_tokens']} / {profile.prefill_tokens_per_s:,.0f} tokens/s = {a['prefill_ms']} ms "
        "of GPU time per request.",
        f"3. KV cache: {a['kv_tokens']:,} tokens; a sequence holds {a['prefill_tokens']} + {answer} = "
        f"{a['prefill_tokens'] + answer} tokens besides the shared blocks, so {a['sequences_by_kv']:,} fit; vLLM "
        f"runs at most {profile.max_num_seqs}: B = {a['batch']}.",
        f"4. A decode step of B = {a['batch']} sequences (context {prompt} + {answer}/2 tokens each) takes "
        f"{a['step_ms']} ms and gives each sequence one token: {answer} tokens cost {answer} x {a['step_ms']} / "
        f"{a['batch']} = {a['decode_per_request_ms']} ms of GPU time per request.",
        f"5. One GPU finishes at most 1 / ({a['prefill_ms']} + {a['decode_per_request_ms']}) ms = "
        f"{a['max_rps_per_gpu']} requests/s; {model['design_rps']:g} requests/s need at least "
        f"{model['design_rps']:g} / {a['max_rps_per_gpu']} → **{a['gpus_by_throughput']} GPUs**.",
        f"6. That bound is a GPU at 100 %: the queue, and with it the time to first token, has no limit there. The "
        f"simulation below finds the latency at each count: {example['gpus']} GPUs give p90 TTFT "
        f"{_s(example['at_gpus']['ttft']['p90_ms'])}, but a full batch makes every token slow (p90 answer "
        f"{_s(example['at_gpus']['answer']['p90_ms'])}); {example['gpus_for_answer']} GPUs keep the p90 answer "
        f"within kefu's {model['answer_limit_s']:g} s model-call timeout.",
    ]
    return lines


def knee(model: Mapping[str, Any]) -> list[str]:
    lines = [
        "| requests/s per GPU | share of the bound | p90 TTFT | p99 TTFT | mean ITL ms |",
        "| --: | --: | --: | --: | --: |",
    ]
    for r in model["knee"]["rows"]:
        ttft = r["ttft"]
        lines.append(_row(r["rps_per_gpu"], f"{r['share_of_bound']:.0%}", _s(ttft["p90_ms"]), _s(ttft["p99_ms"]),
                          _ms(r["itl"]["mean_ms"], 1)))  # fmt: skip
    return lines


def ceiling(part: Mapping[str, Any] | None) -> list[str]:
    if not part:
        return ["(not run yet: `python bench/capacity.py --parts ceiling`)"]
    lines = [
        f"Each rate for {part['seconds']:g} s, Poisson arrivals, against `kefu.loadtest.floor` (a constant JSON "
        "answer) in its own process; generator and server share the 2 cores.",
        "",
        "| offered req/s | answered req/s | errors | p50 ms | p99 ms | send lag p99 ms | connections |",
        "| --: | --: | --: | --: | --: | --: | --: |",
    ]
    for r in part["rows"]:
        lines.append(
            f"| {r['offered_rps']} | {r['throughput_rps']} | {r['errors']} | {_ms(r['latency']['p50_ms'], 2)} "
            f"| {_ms(r['latency']['p99_ms'], 2)} | {_ms(r['send_lag']['p99_ms'], 2)} | {r['connections_opened']} |"
        )
    criteria = "every request answered, ≥ 97 % of the offered rate, send lag p99 ≤ 10 ms"
    found = f"**{part['ceiling_rps']:g} requests/s**" if part["ceiling_rps"] else "none of these rates"
    lines += ["", f"Highest rate kept ({criteria}): {found}."]
    return lines


def live(part: Mapping[str, Any] | None) -> list[str]:
    if not part:
        return ["(not run yet: `python bench/capacity.py --parts live`)"]
    lines = [
        "`kefu serve` (SQLite, the demo pack, one process) with `kefu llm simulate` registered by `kefu model add` "
        "and promoted to stable; `kefu loadtest`'s generator offers each rate for "
        f"{part['seconds']:g} s (multi-turn zh/en sessions, Poisson). Turn latency is the whole HTTP turn from the "
        "scheduled send time (a knowledge answer waits for the model's whole answer); TTFT and ITL come from the "
        "simulator; CPU is cores used by each process during the run.",
        "",
        "| simulated GPUs | offered turns/s | answered turns/s | errors | turn p50 | turn p90 | turn p99 "
        "| model calls/s | p90 TTFT | mean ITL ms | kefu CPU cores | simulator CPU cores | generator CPU cores |",
        "| --- | --: | --: | --- | --: | --: | --: | --: | --: | --: | --: | --: | --: |",
    ]
    for r in part["rows"]:
        t, llm, turn = r["turns"], r["llm"], r["turns"]["latency"]
        lines.append(_row(f"{r['gpu']} x {r['replicas']}", t["offered_rps"], t["throughput_rps"], _errors(t),
                          _s(turn["p50_ms"]), _s(turn["p90_ms"]), _s(turn["p99_ms"]), r["llm_rps"],
                          _s(llm["ttft"]["p90_ms"]), _ms(llm["itl"]["mean_ms"], 1), r["kefu_cpu_cores"],
                          r["simulator_cpu_cores"], r["generator_cpu_cores"]))  # fmt: skip
    clean = [r for r in part["rows"] if not r["turns"]["errors"]]
    broken = [r for r in part["rows"] if r["turns"]["errors"]]
    if clean and broken:
        last, first_bad = max(clean, key=lambda r: r["rps"]), min(broken, key=lambda r: r["rps"])
        share = sum(r["llm_rps"] for r in clean) / sum(r["turns"]["throughput_rps"] for r in clean)
        lines += [
            "",
            f"kefu answered every turn up to {last['turns']['offered_rps']} turns/s and broke at "
            f"{first_bad['turns']['offered_rps']} (turns time out after 10 s): its one process then uses "
            f"{first_bad['kefu_cpu_cores']} of a core, while the simulator and the generator use under a tenth "
            "each; kefu's own CPU, not the simulated GPU, is the limit on this machine (the p90 TTFT hardly "
            f"moves). In this session mix {share:.0%} of turns reach the model (knowledge answers; order, cancel "
            "and return turns are answered from tools and templates), so the design's 100 turns/s through kefu is "
            "only ~12 model calls/s, which one GPU serves; the slower A100 shows in the turn time, since a "
            "knowledge turn waits for the whole answer. The GPU count matters at 100 model calls/s, which the "
            "replay below sends straight to the simulator.",
        ]
    return lines


def replay(part: Mapping[str, Any] | None) -> list[str]:
    if not part:
        return ["(not run yet: `python bench/capacity.py --parts replay`)"]
    w = part["workload"]
    lines = [
        f"The {part['prompts']} model requests kefu sent in the run above ({part.get('distinct_prompts', '?')} "
        "distinct prompts: the session mix asks a few policy questions), shuffled and sent straight to `kefu llm "
        f"simulate` at {part['rps']:g} requests/s (Poisson, open loop) for {part['seconds']:g} s per row. Each "
        f"answer is exactly {w['answer_tokens']} tokens (vLLM's `ignore_eos`), and each prompt gets a number at "
        "the start of its first message after the system prompt, so that only the system prompt (rules, persona, "
        f"tools) is shared: {w['prompt_tokens']} tokens on average, {w['cacheable_share']:.1%} shared (kefu's "
        "recorded prompts repeat a few questions, which would otherwise be cached whole). The simulator tokenizes "
        "every prompt with the Qwen3 tokenizer, its prefix cache works on the real tokens and its engines run on "
        "the wall clock; the model columns are the virtual-time engine on the same workload and duration. "
        '"planned" is the count the model finds for this workload (p90 TTFT ≤ 1.5 s; and answers in time).',
        "",
        "| GPU | weights | prefix cache | GPUs (planned) | p90 TTFT measured | p90 TTFT model | p90 answer measured "
        "| p90 answer model | cached share | answered / sent | errors | simulator CPU cores |",
        "| --- | --- | --- | --: | --: | --: | --: | --: | --: | --: | --- | --: |",
    ]
    for r in part["rows"]:
        sim, req, model = r["sim"], r["requests"], r["model"]
        lines.append(_row(_label(r), f"{r['gpus']} ({r['planned_gpus']}; {r['planned_gpus_for_answer']})",
                          _s(sim["ttft"]["p90_ms"]), _s(model["ttft"]["p90_ms"]), _s(sim["total"]["p90_ms"]),
                          _s(model["answer"]["p90_ms"]), sim["cached_share"], f"{req['ok']} / {req['requests']}",
                          _errors(req), r["simulator_cpu_cores"]))  # fmt: skip
    planned = [r for r in part["rows"] if r["gpus"] >= r["planned_gpus"]]
    fewer = [r for r in part["rows"] if r["gpus"] < r["planned_gpus"]]

    def gap(rows: Sequence[Mapping[str, Any]], key: str, sim_key: str) -> float:
        return max(abs(float(r["sim"][sim_key]["p90_ms"]) / float(r["model"][key]["p90_ms"]) - 1) for r in rows)

    if planned and fewer:
        measured = [r["sim"]["ttft"]["p90_ms"] / 1000 for r in fewer]
        lines += [
            "",
            f"At the planned count and above, measured and modelled agree: p90 TTFT within "
            f"{gap(planned, 'ttft', 'ttft'):.0%}, p90 answer within {gap(planned, 'answer', 'total'):.0%}; the "
            "wall-clock server behaves as the model it runs. Where it breaks: with one GPU fewer than planned the "
            f"queue builds within seconds (p90 TTFT {min(measured):.1f}-{max(measured):.1f} s after "
            f"{part['seconds']:g} s, and growing: the model's figures for the same {part['seconds']:g} s differ "
            "more there, as a queue's growth is sensitive to the exact arrivals). A row that still looks fine at one "
            "fewer is a queue growing too slowly to show in this window; the plan's 180 s show it. The simulator's "
            f"own CPU stayed at {max(r['simulator_cpu_cores'] for r in part['rows'])} of a core or less.",
        ]
    return lines


def render(results: Mapping[str, Any]) -> str:
    model = results["model"]
    w = model["workload"]
    parts: Sequence[str] = [
        "# Capacity planning: Qwen3-14B on vLLM for kefu",
        "",
        "Generated by `python bench/capacity.py` (raw figures and the command and date of each part: "
        "`bench/results/capacity.json`). The page is rendered by `bench/capacity_doc.py`; edit the prose there and "
        "run `python bench/capacity.py --parts ''` to render it again. Everything below comes from one latency "
        "model, `kefu/llm/sim_profiles.py` + "
        "`kefu/llm/simulator.py`: the same functions `kefu llm simulate` serves with. It is arithmetic calibrated on "
        "published figures, not a GPU measurement: confirm the chosen count with `vllm bench serve` on one real GPU.",
        "",
        "## Answer",
        "",
        f"The design load: **{model['design_rps']:g} model requests/s** (every turn calling the model: an upper "
        f"bound, since only knowledge answers do), p90 time to first token (TTFT) ≤ {model['ttft_target_s']:g} s.",
        "",
        *summary(model),
        "",
        recommendation(model),
        "",
        f"Time to first token alone is a weak target: at the GPU count that just meets it the batch is full and "
        f"each token is slow, so a {w['answer_tokens']}-token answer takes many seconds. kefu gives a model call "
        f"{model['answer_limit_s']:g} s (`llm_call_timeout_s`) before the template answer stands, so the last two "
        "columns are the count to plan for. Prefix caching (on by default in kefu's vLLM scripts) roughly halves "
        "the GPUs because kefu's prompts share most of their tokens; FP8 helps most on H100 (FP8 tensor cores). "
        "The A100-40GB holds few sequences in bf16 and is slow per token: avoid it for this load.",
        "",
        "## The workload",
        "",
        f"* Prompt: {w['prompt_tokens']} Qwen3 tokens on average, of which {w['cacheable_share']:.1%} are shared "
        f"with other conversations' prompts (system prompt, persona, tool schemas), both measured on kefu's real "
        f"prompts in `bench/results/llm.json`.",
        f"* Answer: {w['answer_tokens']} tokens, kefu's cap for knowledge answers (`ANSWER_PARAMS['max_tokens']`); "
        "kefu asks for two or three short sentences, so real answers are often shorter: the plan is conservative.",
        f"* Arrivals: Poisson at {model['design_rps']:g} requests/s, dealt round-robin to the GPUs (one vLLM "
        f"replica each, tensor parallel 1). Each configuration is simulated for {model['seconds']:g} s of traffic; "
        f"the first {model['warmup_s']:g} s are not counted. Round-robin makes replicas alike, so one replica's "
        "share is simulated.",
        "",
        "## The latency model and its calibration",
        "",
        "A vLLM engine step decodes one token of every running sequence and fills the rest of its token budget "
        "(8,192) with prompt chunks (chunked prefill), so step time = decode(B) + attention beyond 512 tokens of "
        "context per sequence + prefill tokens / prefill rate. Requests are admitted first come, first served "
        "while a sequence slot (256) and KV room for prompt and answer are free; prefix-cached 16-token blocks are "
        "not computed again and are shared in the KV cache.",
        "",
        *calibration(),
        "",
        "Resulting step times (context 512 tokens per sequence) and limits:",
        "",
        *decode_tables(),
        "",
        "## The arithmetic, step by step",
        "",
        "The throughput bound per GPU: a request costs its prefill plus its share of the decode steps at the "
        "largest batch that fits, `max req/s = 1 / (prefill + answer x step(B) / B)` with "
        "`B = min(256, (KV tokens - cached) / (computed prompt + answer))`.",
        "",
        *arithmetic(model),
        "",
        "## Where it breaks",
        "",
        f"p90 TTFT against the load per GPU (H100, bf16, prefix caching; {model['seconds']:g} s simulated per row). "
        "TTFT stays low until the GPU nears its throughput bound, then the queue grows without limit: there is no "
        "gentle degradation to plan into, so keep each GPU below ~90 % of its bound.",
        "",
        *knee(model),
        "",
        "## Measured on this machine (2 cores, no GPU)",
        "",
        "### The load generator's own ceiling",
        "",
        *ceiling(results.get("ceiling")),
        "",
        "### kefu + simulator + `kefu loadtest` at rising rates",
        "",
        *live(results.get("live")),
        "",
        "### The design load, replayed against the simulator",
        "",
        *replay(results.get("replay")),
        "",
        "## Running it yourself",
        "",
        "```sh",
        "kefu llm simulate --gpu h100 --port 8078            # --precision fp8, --no-prefix-cache, --replicas 4",
        "kefu model add sim --base-url http://127.0.0.1:8078/v1 --model qwen3-14b && kefu model promote sim",
        "kefu serve --port 8000",
        "kefu loadtest --url http://127.0.0.1:8000 --rps 100 --duration 60 --report loadtest-report/ --json",
        "curl -s http://127.0.0.1:8078/sim/stats              # TTFT, ITL, queueing as the simulated GPUs saw them",
        "```",
        "",
        "`kefu loadtest` is open loop: each request leaves at its scheduled time (Poisson, or `--arrival fixed`) "
        "whether or not earlier ones were answered, and its latency counts from that time, so a server that falls "
        "behind cannot hide it (no coordinated omission). Each conversation sends its next turn only after the "
        "previous answer; when none is ready a new conversation starts. It loads only loopback addresses unless "
        "given `--allow-remote`, stops after `--duration` plus at most `--timeout` seconds, and with `--report DIR` "
        "writes `index.html` with latency-over-time, distribution and throughput pictures.",
        "",
        "## Limits of this plan",
        "",
        "* The calibration points are published figures for comparable models and vLLM versions, not Qwen3-14B "
        "measured here; the A100 growth with batch, the H100 prefill rate and the FP8 factors are derived (see "
        "the table). Re-calibrate `kefu/llm/sim_profiles.py` with `vllm bench serve` on the real GPU.",
        "* No preemption: room for the whole answer is reserved at admission; vLLM admits more and preempts, "
        "which changes little below saturation.",
        "* Fixed prompt and answer lengths; real traffic varies, which widens the tails.",
        "* Requests are dealt round-robin; a Kubernetes Service balances connections, not requests, and does worse.",
        "",
    ]
    return "\n".join(parts)
