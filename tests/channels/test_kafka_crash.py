"""``kefu worker`` processes against a real broker (tansu): the issue's crash test (two workers, 5,000
messages over 300 conversations, one worker SIGKILLed in the middle and restarted), SIGTERM, and the
command's clear errors."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.channels.conftest import KafkaNames, free_port
from tests.channels.kafka_io import HANDOFF_FREE_TEXTS as TEXTS
from tests.channels.kafka_io import Collector, committed, create_topics, inbound_value, send
from tests.conftest import MODEL_CACHE, ROOT

WORKER_READY_S = 120.0


class WorkerProcess:
    """One ``kefu worker`` subprocess, its output in a file."""

    def __init__(self, name: str, bootstrap: str, env: dict[str, str], folder: Path, *args: str) -> None:
        self.name = name
        self.output = folder / f"{name}.log"
        self.command = [sys.executable, "-m", "kefu.cli.main", "worker", "--kafka", bootstrap, *args]
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        with self.output.open("ab") as out:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT)
        return self

    def log(self) -> str:
        return self.output.read_text(errors="replace")

    async def ready(self, starts: int = 1) -> None:
        """Until the worker has said it is consuming (``starts`` times in its log, for a restart)."""
        deadline = time.monotonic() + WORKER_READY_S
        while self.log().count("kefu worker: group") < starts:
            assert self.process is not None
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"worker {self.name} did not start:\n{self.log()[-3000:]}")
            await asyncio.sleep(0.2)

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    async def exit_code(self, timeout_s: float = 60.0) -> int:
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while (code := self.process.poll()) is None:
            if time.monotonic() > deadline:
                self.process.kill()
                pytest.fail(f"worker {self.name} did not exit within {timeout_s} s:\n{self.log()[-3000:]}")
            await asyncio.sleep(0.1)
        return code

    def stop_hard(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def worker_env(tmp: Path, database_url: str, names: KafkaNames) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEFU_")}
    env.update(
        names.env(),
        KEFU_DATABASE_URL=database_url,
        KEFU_DATA_DIR=str(tmp),
        KEFU_MODEL_CACHE_DIR=str(MODEL_CACHE),
        KEFU_SECRET_KEY="kafka-crash-test-secret-0123456789abcdef",  # replicas share one
        KEFU_LLM_ANSWERS="false",
        KEFU_KB_RELOAD_S="0",
        KEFU_LLM_RELOAD_S="0",
        KEFU_LOG_LEVEL="info",
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
    )
    return env


def plan(prefix: str, conversations: int, total: int) -> list[tuple[bytes, bytes]]:
    """``total`` messages over ``conversations``, interleaved so every conversation spans the whole run;
    message ``-m{i}`` is the conversation's i-th."""
    records = []
    for index in range(total):
        c, i = index % conversations, index // conversations
        cid = f"{prefix}-c{c}"
        records.append((cid.encode(), inbound_value(cid, f"{cid}-m{i}", TEXTS[(c + i) % len(TEXTS)])))
    return records


async def store_facts(database_url: str, prefix: str) -> tuple[Counter[str], Counter[str], dict[str, list[str]]]:
    """Bot replies per message, turns per message, and each conversation's messages in stored order."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as db:
            like = {"p": f"{prefix}-%"}
            replies = Counter(
                mid
                for (mid,) in await db.execute(
                    text("SELECT message_id FROM events WHERE type = 'reply_sent' AND conversation_id LIKE :p"), like
                )
            )
            turn_rows = await db.execute(text("SELECT message_id FROM turns WHERE conversation_id LIKE :p"), like)
            turns = Counter(mid for (mid,) in turn_rows)
            order: dict[str, list[str]] = {}
            rows = await db.execute(
                text(
                    "SELECT conversation_id, message_id FROM events WHERE type = 'message_received' "
                    "AND conversation_id LIKE :p ORDER BY conversation_id, seq"
                ),
                like,
            )
            for cid, mid in rows:
                order.setdefault(cid, []).append(mid)
    finally:
        await engine.dispose()
    return replies, turns, order


def expected_order(records: list[tuple[bytes, bytes]]) -> dict[str, list[str]]:
    order: dict[str, list[str]] = {}
    for key, value in records:
        order.setdefault(key.decode(), []).append(json.loads(value)["message_id"])
    return order


@pytest.mark.postgres
async def test_sigkilled_worker_loses_and_duplicates_nothing(
    kafka_bootstrap: str, kafka_names: KafkaNames, postgres_url: str, tmp_path: Path
) -> None:
    prefix = uuid.uuid4().hex[:8]
    records = plan(prefix, conversations=300, total=5000)
    sent = {json.loads(value)["message_id"] for _, value in records}
    await create_topics(kafka_bootstrap, kafka_names.inbound, kafka_names.outbound, kafka_names.deadletter)
    env = worker_env(tmp_path, postgres_url, kafka_names)
    args = ("--concurrency", "16", "--session-timeout", "6")
    a = WorkerProcess("a", kafka_bootstrap, env, tmp_path, *args).start()
    b = WorkerProcess("b", kafka_bootstrap, env, tmp_path, *args).start()
    started = time.monotonic()
    try:
        async with asyncio.timeout(420):  # the hard bound of the whole test
            await asyncio.gather(a.ready(), b.ready())
            async with Collector(kafka_bootstrap, kafka_names.outbound) as replies:
                await send(kafka_bootstrap, kafka_names.inbound, records)
                await replies.wait_for(1500, 240, "replies before the crash")
                b.signal(signal.SIGKILL)  # no goodbye: its turns under way and its uncommitted offsets are lost
                assert await b.exit_code() == -signal.SIGKILL
                answered_at_crash = len(replies.replied())
                b.start()  # the same worker again, appending to its log
                await b.ready(starts=2)
                await replies.wait_for(len(records), 300, "replies")
                await asyncio.sleep(1.0)  # let a late duplicate show up before counting
                a.signal(signal.SIGTERM)
                b.signal(signal.SIGTERM)
                assert await a.exit_code() == 0, a.log()[-3000:]
                assert await b.exit_code() == 0, b.log()[-3000:]
    finally:
        a.stop_hard()
        b.stop_hard()
    elapsed = time.monotonic() - started
    # Every inbound message got a reply on the outbound topic.
    assert replies.replied() == sent
    published = Counter(str(r.value["in_reply_to"]) for r in replies.records)
    redelivered = sum(n - 1 for n in published.values())
    assert answered_at_crash < len(records)
    # The store holds exactly one bot reply (and one turn) per user message...
    bot_replies, turns, order = await store_facts(postgres_url, prefix)
    assert set(bot_replies) == sent and set(bot_replies.values()) == {1}
    assert set(turns) == sent and set(turns.values()) == {1}
    # ...and every conversation's messages in the order they were sent.
    assert order == expected_order(records)
    print(f"crash test: {len(records)} messages in {elapsed:.0f} s, {redelivered} answers published again")


async def test_sigterm_finishes_turns_under_way_and_commits_them(
    kafka_bootstrap: str, kafka_names: KafkaNames, tmp_path: Path
) -> None:
    prefix = uuid.uuid4().hex[:8]
    records = plan(prefix, conversations=100, total=1200)
    await create_topics(kafka_bootstrap, kafka_names.inbound, kafka_names.outbound, kafka_names.deadletter)
    env = worker_env(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'kefu.db'}", kafka_names)
    metrics_port = free_port()
    worker = WorkerProcess(
        "w", kafka_bootstrap, env, tmp_path, "--concurrency", "32", "--metrics-port", str(metrics_port)
    ).start()
    try:
        async with asyncio.timeout(300):
            await worker.ready()
            async with Collector(kafka_bootstrap, kafka_names.outbound) as replies:
                await send(kafka_bootstrap, kafka_names.inbound, records)
                await replies.wait_for(200, 120)
                metrics = await asyncio.to_thread(scrape, metrics_port)
                worker.signal(signal.SIGTERM)
                assert await worker.exit_code() == 0, worker.log()[-3000:]
                await asyncio.sleep(1.0)
                answered = len(replies.records)
                assert answered < len(records), "the worker finished everything before the signal"
                # Everything it answered is committed, nothing more: no turn was cut off or left out.
                offsets = await committed(kafka_bootstrap, kafka_names.group, kafka_names.inbound)
                assert sum(offsets.values()) == answered
                assert f"kefu worker stopped: {answered} answered (0 from the store)" in worker.log()
                worker.start()
                await worker.ready(starts=2)
                await replies.wait_for(len(records), 180)
                await asyncio.sleep(1.0)
                worker.signal(signal.SIGINT)
                assert await worker.exit_code() == 0
    finally:
        worker.stop_hard()
    # Nothing answered before the SIGTERM came again after the restart.
    published = Counter(str(r.value["in_reply_to"]) for r in replies.records)
    assert max(published.values()) == 1 and len(published) == len(records)
    assert f"kefu worker stopped: {len(records) - answered} answered (0 from the store)" in worker.log()
    # The worker's own metrics: lag per partition it holds, and its turns.
    lags = [line for line in metrics.splitlines() if line.startswith("kefu_kafka_consumer_lag{")]
    assert lags and all(f'topic="{kafka_names.inbound}"' in line for line in lags)
    assert 'kefu_turns_total{channel="kafka"' in metrics


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        body: bytes = response.read()
        return body.decode()


def run_cli(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEFU_")}
    return subprocess.run(
        [sys.executable, "-m", "kefu.cli.main", "worker", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env,
        cwd=ROOT,
    )


@pytest.mark.parametrize("value", ["localhost", "host:notaport", "a:99999", ""])
def test_a_bad_kafka_address_is_refused_clearly(value: str) -> None:
    done = run_cli("--kafka", value)
    assert done.returncode == 2
    assert "error:" in done.stderr and "--kafka" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_an_unreachable_broker_is_reported_without_a_traceback() -> None:
    done = run_cli("--kafka", f"127.0.0.1:{free_port()}")
    assert done.returncode == 1
    assert "cannot reach the Kafka broker" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
