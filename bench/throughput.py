"""Throughput of kefu on this machine: ``kefu serve`` (template responder, SQLite, the demo pack) under
``kefu loadtest``'s open-loop generator, at rising rates, with one and with several server processes.

For each configuration (``--configs``: ``W`` server processes, ``W+redis`` with Redis locks and hub) a fresh
data folder and server; each rate is offered for ``--duration`` seconds (multi-turn zh/en sessions,
Poisson arrivals), latency measured from the scheduled send time. Recorded per row: answered turns/s,
errors, p50/p90/p99, and the CPU cores used by the server's processes and by the generator. With
``--profile S``, the busiest rate of each configuration is sampled with py-spy for S seconds and the
functions taking most of the server's time are listed.

Target (issue 8): 150 turns/s for 60 s with p99 <= 50 ms and no errors (stretch: 300 turns/s).

Usage::

    python bench/throughput.py [--configs 1,2,2+redis] [--rates 100,150,200,300] [--duration 60]
                               [--profile 15] [--out bench/results/throughput.json]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.capacity import cpu_seconds, load, process, wait_http  # noqa: E402
from kefu.llm.local import free_port  # noqa: E402
from kefu.loadtest.runner import LoadPlan, Target  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "throughput.json"
MODEL_CACHE = ROOT / "data" / "models"
TARGET_RPS, TARGET_P99_MS = 150.0, 50.0
REDIS_URL = "redis://127.0.0.1:6379/7"


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (uvicorn's workers are children of the server's process)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            children = (task / "children").read_text().split() if (task / "children").exists() else []
            todo.extend(int(c) for c in children)
    return found


def tree_cpu(pid: int) -> dict[int, float]:
    seconds = {}
    for p in descendants(pid):
        try:
            seconds[p] = cpu_seconds(p)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return seconds


def profile_workers(pids: Sequence[int], seconds: float, work: Path) -> list[dict[str, Any]]:
    """py-spy on each worker process at once; the functions with the most samples (inclusive), merged."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        return [{"note": "py-spy not installed (pip install py-spy)"}]
    outputs = [work / f"spy-{pid}.txt" for pid in pids]
    runs = [
        subprocess.Popen([spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "200", "-f", "raw",
                          "-o", str(out), "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for pid, out in zip(pids, outputs, strict=True)
    ]  # fmt: skip
    for run in runs:
        run.wait(seconds + 30)
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for out in outputs:
        if not out.exists():
            continue
        for line in out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            total += int(count)
            names = {re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")}
            for name in names:
                if "kefu/" in name or "sqlite" in name or "uvicorn" in name or "starlette" in name:
                    inclusive[name] += int(count)
    return [{"function": name, "share": round(n / total, 3)} for name, n in inclusive.most_common(25)] if total else []


def _spy(pids: list[int], seconds: float, work: Path, into: list[dict[str, Any]]) -> None:
    time.sleep(min(5.0, seconds / 2))  # past the rate's first seconds
    into.extend(profile_workers(pids, seconds, work))


def run_config(config: str, rates: Sequence[float], seconds: float, profile_s: float, work: Path) -> dict[str, Any]:
    workers = int(config.split("+")[0])
    redis = config.endswith("+redis")
    data = work / f"data-{config}"
    data.mkdir()
    port = free_port()
    env = {
        "KEFU_DATA_DIR": str(data),
        "KEFU_MODEL_CACHE_DIR": str(MODEL_CACHE),
        "KEFU_LOG_LEVEL": "warning",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    if redis:
        env["KEFU_REDIS_URL"] = REDIS_URL
    argv = [sys.executable, "-m", "kefu.cli.main", "serve", "--port", str(port), "--workers", str(workers)]
    rows = []
    with process(argv, work / f"serve-{config}.log", env) as server:
        wait_http(f"http://127.0.0.1:{port}/readyz", server, work / f"serve-{config}.log", 300)
        time.sleep(2.0)
        # Warm-up: every worker loads its caches before the measured rates.
        load(LoadPlan(Target("127.0.0.1", port, ""), 30.0, 5.0, seed=99))
        for rate in rates:
            before, generator_before, started = tree_cpu(server.pid), time.process_time(), time.monotonic()
            spied: list[dict[str, Any]] = []
            profiler = None
            if profile_s and rate == max(rates):
                pids = [p for p in descendants(server.pid) if p != server.pid] or [server.pid]

                profiler = threading.Thread(target=_spy, args=(pids, min(profile_s, seconds / 2), work, spied))
                profiler.start()
            summary = load(LoadPlan(Target("127.0.0.1", port, ""), rate, seconds, seed=int(rate)))
            if profiler is not None:
                profiler.join()
            elapsed = time.monotonic() - started
            after = tree_cpu(server.pid)
            server_cpu = sum(after[p] - before.get(p, 0.0) for p in after) / elapsed
            row = {
                "offered_rps": summary["offered_rps"],
                "target_rps": rate,
                "throughput_rps": summary["throughput_rps"],
                "requests": summary["requests"],
                "errors": summary["errors"],
                "errors_by_kind": summary["errors_by_kind"],
                "latency": summary["latency"],
                "send_lag": summary["send_lag"],
                "server_cpu_cores": round(server_cpu, 2),
                "generator_cpu_cores": round((time.process_time() - generator_before) / elapsed, 2),
            }
            if spied:
                row["profile"] = spied
            rows.append(row)
            lat = summary["latency"]
            print(f"{config}: {rate}/s -> {summary['throughput_rps']}/s, errors {summary['errors']}, "
                  f"p50 {lat['p50_ms']} p90 {lat['p90_ms']} p99 {lat['p99_ms']} ms, server CPU {server_cpu:.2f}",
                  flush=True)  # fmt: skip
            time.sleep(3.0)
    return {"config": config, "workers": workers, "redis": redis, "rows": rows}


def verdict(configs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    def meets(row: dict[str, Any]) -> bool:
        p99 = row["latency"]["p99_ms"]
        return (
            row["errors"] == 0
            and p99 is not None
            and p99 <= TARGET_P99_MS
            and row["throughput_rps"] >= 0.97 * row["offered_rps"]
        )

    best: dict[str, Any] = {}
    for config in configs:
        kept = [r["target_rps"] for r in config["rows"] if meets(r)]
        best[config["config"]] = max(kept) if kept else None
    at_target = {
        c["config"]: next((meets(r) for r in c["rows"] if r["target_rps"] == TARGET_RPS), None) for c in configs
    }
    return {"highest_rate_meeting_p99": best, "meets_150_at_p99_50ms": at_target}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="1,2,2+redis")
    parser.add_argument("--rates", default="100,150,200,300")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--profile", type=float, default=0.0, help="py-spy seconds at the highest rate (0: off)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    if any(not re.fullmatch(r"\d+(\+redis)?", c) for c in configs):
        parser.error("--configs: items like 1, 2 or 2+redis")
    rates = [float(r) for r in args.rates.split(",")]
    with tempfile.TemporaryDirectory(prefix="kefu-throughput-") as tmp:
        results = [run_config(c, rates, args.duration, args.profile, Path(tmp)) for c in configs]
    report = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "command": "python bench/throughput.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "duration_s": args.duration,
        "target": {"turns_per_s": TARGET_RPS, "p99_ms": TARGET_P99_MS},
        "configs": results,
        "verdict": verdict(results),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(report["verdict"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
