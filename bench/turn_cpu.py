"""CPU per turn in process: the runtime built as `kefu serve` builds it, `Pipeline.handle` called directly for
`kefu loadtest`'s multi-turn zh/en demo sessions, N conversations at a time, no HTTP.

Writes the turns, wall time, process CPU per turn (all threads: aiosqlite's included) and the pipeline's own
stage timings (`kefu_turn_duration_seconds` sums divided by turns) to ``--out``.

Usage::

    python bench/turn_cpu.py [--turns 2000] [--concurrency 16] [--out bench/results/turn_cpu.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kefu.config.settings import load_settings  # noqa: E402
from kefu.core.types import InboundMessage  # noqa: E402
from kefu.loadtest.sessions import SessionMix  # noqa: E402
from kefu.runtime import build_runtime  # noqa: E402

WARMUP_SESSIONS = 50


async def measure(turns: int, concurrency: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kefu-turn-cpu-") as data:
        settings = load_settings(
            data_dir=data,
            model_cache_dir=str(ROOT / "data" / "models"),
            model_reload_s=0,
            kb_reload_s=0,
            llm_reload_s=0,
        )
        runtime = await build_runtime(settings)
        mix = SessionMix(seed=1, run_id=uuid.uuid4().hex[:6])
        done = 0

        async def session(limit: int | None) -> None:
            nonlocal done
            current = mix.new_session()
            while not current.done and (limit is None or done < limit):
                _, text = current.next_turn()
                done += 1
                message = InboundMessage(
                    conversation_id=current.conversation_id,
                    message_id=uuid.uuid4().hex,
                    text=text,
                    received_at=datetime.now(UTC),
                    user_id=current.user_id,
                    channel="web",
                )
                await runtime.pipeline.handle(message)

        async def worker() -> None:
            while done < turns:
                await session(turns)

        try:
            for _ in range(WARMUP_SESSIONS):
                await session(None)
            before = _stage_sums(runtime.metrics.registry)
            done = 0
            wall, cpu = time.perf_counter(), time.process_time()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            after = _stage_sums(runtime.metrics.registry)
        finally:
            await runtime.close()
    stages = {
        k: round((after[k] - before.get(k, 0.0)) / done * 1000, 3) for k in after if after[k] > before.get(k, 0.0)
    }
    return {
        "turns": done,
        "concurrency": concurrency,
        "wall_s": round(wall, 2),
        "turns_per_s": round(done / wall, 1),
        "cpu_ms_per_turn": round(cpu / done * 1000, 3),
        "stage_ms_per_turn": stages,  # wall time per stage; with concurrency it includes waiting
    }


def _stage_sums(registry: Any) -> dict[str, float]:
    sums = {}
    for line in generate_latest(registry).decode().splitlines():
        if line.startswith("kefu_turn_duration_seconds_sum{"):
            stage = line.split('stage="', 1)[1].split('"', 1)[0]
            sums[stage] = float(line.rsplit(" ", 1)[1])
    return sums


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "turn_cpu.json")
    args = parser.parse_args()
    if args.turns < 1 or args.concurrency < 1:
        parser.error("--turns and --concurrency must be at least 1")
    result = asyncio.run(measure(args.turns, args.concurrency))
    result.update(
        measured_at=datetime.now(UTC).isoformat(timespec="seconds"),
        machine={"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        command="python bench/turn_cpu.py " + " ".join(sys.argv[1:]),
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
