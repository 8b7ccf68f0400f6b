"""Latency of one turn through HTTP: kefu (template responder) beside a bare FastAPI floor.

Starts two servers on 127.0.0.1 with the same uvicorn settings:

* ``floor``: a bare FastAPI app (defined below) whose ``POST /v1/conversations/{cid}/messages`` parses the
  JSON body into a pydantic model and returns a constant JSON reply of about kefu's size. It is the floor
  of this stack: HTTP + JSON in and out, no pipeline.
* ``kefu``: ``kefu serve`` with a fresh data folder, no LLM configured (template responder), reusing the
  trained models from ``data/models`` when that folder exists.

For each concurrency level it loads the floor, then kefu, with a closed loop of C clients (one asyncio
process, httpx with C keep-alive connections); each client talks in its own conversation and cycles
through realistic demo-shop messages in Chinese and English. Warm-up requests are not counted.

Target (at 20 clients): kefu p99 <= 3 x floor p99 + 20 ms.

Usage::

    python bench/turn_latency.py [--requests 2000] [--warmup 200] [--concurrency 1,20]
                                 [--out bench/results/turn_latency.json] [--port-base 18100]
                                 [--client httpx|raw]

The default generator is httpx; on a small machine its own CPU cost per request dominates the floor at
20 clients, so ``--client raw`` (a minimal HTTP/1.1 keep-alive client on asyncio streams) gives a floor
closer to the server's own.

Exit status: 0 when every request got a 200 (even if the target fails), 1 on errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

import httpx
import numpy as np
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from kefu.loadtest.http import HttpConnection, TransportError

REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL_CACHE = REPO_ROOT / "data" / "models"
HOST = "127.0.0.1"
READY_TIMEOUT_S = 180.0
REQUEST_TIMEOUT_S = 30.0
STOP_GRACE_S = 5.0
TARGET_CONCURRENCY = 20
TARGET_FACTOR = 3.0
TARGET_SLACK_MS = 20.0
SERVERS = ("floor", "kefu")
CLIENT_KINDS = ("httpx", "raw")
JSON_HEADERS = {"Content-Type": "application/json"}

# Realistic demo-shop turns (zh + en). None of them asks for a human, so conversations stay with the bot.
MESSAGES: tuple[str, ...] = (
    "你好",
    "帮我看看订单 100001 现在到哪儿了",
    "好的谢谢",
    "where is order 100001",
    "thanks",
    "运费怎么算",
    "how long is the warranty",
    "hi",
    "I want to return order 100002",
    "100003 那个音箱我不要了 帮我取消",
    "好的谢谢",
    "do you have wireless earbuds in stock",
    "发货一般要几天",
    "how do I get an invoice",
    "智能手表 S3 多少钱",
    "which payment methods do you accept",
    "我忘记密码了怎么办",
    "can I cancel order 100003",
    "会员积分怎么用",
    "thanks, bye",
)

# The floor's constant reply: the shape and about the size of one of kefu's answers.
FLOOR_REPLY: dict[str, Any] = {
    "conversation_id": "bench-floor",
    "message_id": "00000000000000000000000000000000",
    "reply": {
        "text": (
            "Your order 100001 (Wireless Earbuds Pro) has shipped with SF Express, tracking number "
            "SF1234567890. It usually arrives within 2-3 days.\n(Source: Shipping times)\n"
            "Did that solve your question?"
        ),
        "citations": [{"id": "shipping-times", "title": "Shipping times"}],
        "quick_replies": ["Yes, thanks", "No"],
    },
    "intent": {"name": "order_status", "confidence": 0.9312},
    "entities": [{"type": "order_id", "value": "100001"}],
    "state": "order_status.confirm",
    "handoff": False,
    "owner": "bot",
    "model": None,
}


# --------------------------------------------------------------------------------------------- floor server


class FloorMessageIn(BaseModel):
    """The floor's request body: the fields of kefu's that a benchmark turn sends."""

    text: str
    message_id: str | None = None


def build_floor_app() -> FastAPI:
    """A bare FastAPI app: parse the JSON body into a pydantic model, answer a constant."""
    app = FastAPI()

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    @app.post("/v1/conversations/{conversation_id}/messages")
    async def post_message(conversation_id: str, body: FloorMessageIn) -> JSONResponse:
        # kefu's route also answers with a JSONResponse built from a dict (no response-model pass).
        return JSONResponse(FLOOR_REPLY)

    return app


def serve_floor(port: int) -> None:
    """Run the floor app in this process with kefu's uvicorn settings (uvloop/httptools as auto-picked)."""
    import uvicorn

    uvicorn.run(build_floor_app(), host=HOST, port=port, log_level="warning", access_log=False, lifespan="on")


# --------------------------------------------------------------------------------------- server processes


@dataclass
class ServerProcess:
    """One server started as a child process; its output goes to files under ``log_dir``."""

    name: str
    argv: list[str]
    port: int
    env: dict[str, str]
    log_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    _files: list[TextIO] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def stdout_path(self) -> Path:
        return self.log_dir / f"{self.name}.stdout.log"

    @property
    def stderr_path(self) -> Path:
        return self.log_dir / f"{self.name}.stderr.log"

    def start(self) -> None:
        if not port_is_free(self.port):
            raise RuntimeError(f"{self.name}: port {self.port} on {HOST} is already in use (try --port-base)")
        out = self.stdout_path.open("w", encoding="utf-8")
        err = self.stderr_path.open("w", encoding="utf-8")
        self._files = [out, err]
        # A new session: Ctrl-C in the terminal reaches only this script, which then stops the server.
        self.proc = subprocess.Popen(
            self.argv, env=self.env, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True
        )

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> float:
        """Poll ``GET /readyz`` until 200; return the seconds it took. Raise if the process dies first."""
        assert self.proc is not None
        started = time.monotonic()
        deadline = started + timeout_s
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with status {self.proc.returncode} before ready")
                try:
                    if client.get(f"{self.base_url}/readyz").status_code == 200:
                        return time.monotonic() - started
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout_s:.0f} s")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; idempotent."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_GRACE_S)
        for file in self._files:
            file.close()
        self._files = []

    def tail(self, lines: int = 40) -> str:
        parts = []
        for path in (self.stderr_path, self.stdout_path):
            if path.is_file():
                text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
                if text:
                    parts.append(f"--- {path.name} (last {len(text)} lines)\n" + "\n".join(text))
        return "\n".join(parts) or "(no output)"


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def kefu_command() -> list[str]:
    """The ``kefu`` console script beside this interpreter, or the CLI module run by it."""
    script = Path(sys.executable).parent / "kefu"
    if script.is_file():
        return [str(script)]
    found = shutil.which("kefu")
    if found:
        return [found]
    return [sys.executable, "-c", "from kefu.cli.main import main; main()"]


def server_env(extra: dict[str, str]) -> dict[str, str]:
    """The current environment without any ``KEFU_*`` setting (no API keys, no LLM), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEFU_")}
    env.update({"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    env.update(extra)
    return env


# ---------------------------------------------------------------------------------------------- load test


@dataclass
class Phase:
    """The outcome of one measured (or warm-up) run against one server."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    owners: Counter[str] = field(default_factory=Counter)
    wall_s: float = 0.0


class TurnClient(Protocol):
    """Sends one JSON POST and returns (status, body); raises ``TransportError`` when no answer comes."""

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]: ...


@dataclass
class HttpxClient:
    """httpx.AsyncClient; one instance (with a pool of C keep-alive connections) shared by all C clients."""

    client: httpx.AsyncClient

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        try:
            response = await self.client.post(path, content=body, headers=JSON_HEADERS)
        except httpx.HTTPError as exc:
            raise TransportError("connection", f"{type(exc).__name__}: {exc}") from exc
        return response.status_code, response.content


@contextlib.asynccontextmanager
async def open_clients(kind: str, base_url: str, port: int, concurrency: int) -> AsyncIterator[list[TurnClient]]:
    """``concurrency`` clients of the chosen kind, closed on exit."""
    if kind == "httpx":
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        timeout = httpx.Timeout(REQUEST_TIMEOUT_S)
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as pool:
            shared = HttpxClient(pool)
            yield [shared] * concurrency
        return
    raw = [HttpConnection(HOST, port, timeout_s=REQUEST_TIMEOUT_S) for _ in range(concurrency)]
    try:
        yield list(raw)
    finally:
        for connection in raw:
            await connection.aclose()


async def run_load(
    server: ServerProcess,
    client_kind: str,
    concurrency: int,
    total: int,
    run_id: str,
    on_done: Callable[[], None],
) -> Phase:
    """Closed loop: ``concurrency`` clients, each in its own conversation, ``total`` requests in all."""
    phase = Phase()
    tickets = itertools.count()  # shared by the clients: exactly ``total`` requests are sent

    async def one_client(index: int, client: TurnClient) -> None:
        path = f"/v1/conversations/bench-{run_id}-{index}/messages"
        offset = index * 7  # clients start at different places in the script
        turn = 0
        while next(tickets) < total:
            text = MESSAGES[(offset + turn) % len(MESSAGES)]
            body = json.dumps({"text": text, "message_id": uuid.uuid4().hex}, ensure_ascii=False).encode()
            turn += 1
            start = time.perf_counter()
            try:
                status, content = await client.post(path, body)
                elapsed_ms = (time.perf_counter() - start) * 1000.0
            except TransportError as exc:
                status, content, elapsed_ms = 0, str(exc).encode(), 0.0
            if status == 200:
                phase.latencies_ms.append(elapsed_ms)
                phase.owners[str(json.loads(content).get("owner"))] += 1
            else:
                phase.errors += 1
                if len(phase.error_samples) < 5:
                    label = f"HTTP {status}" if status else "no answer"
                    phase.error_samples.append(f"{label}: {content[:200].decode(errors='replace')}")
            on_done()

    async with open_clients(client_kind, server.base_url, server.port, concurrency) as clients:
        started = time.perf_counter()
        await asyncio.gather(*(one_client(i, client) for i, client in enumerate(clients)))
        phase.wall_s = time.perf_counter() - started
    return phase


def summarize(server: str, concurrency: int, phase: Phase) -> dict[str, Any]:
    values = np.asarray(phase.latencies_ms, dtype=np.float64)
    requests = len(phase.latencies_ms) + phase.errors

    def pct(q: float) -> float | None:
        return round(float(np.percentile(values, q)), 3) if values.size else None

    return {
        "server": server,
        "concurrency": concurrency,
        "requests": requests,
        "errors": phase.errors,
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "max_ms": round(float(values.max()), 3) if values.size else None,
        "throughput_rps": round(requests / phase.wall_s, 1) if phase.wall_s > 0 else None,
        "owners": dict(phase.owners),
    }


def target_check(results: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    by_key = {(r["server"], r["concurrency"]): r for r in results}
    kefu = by_key.get(("kefu", TARGET_CONCURRENCY))
    floor = by_key.get(("floor", TARGET_CONCURRENCY))
    if kefu is None or floor is None or kefu["p99_ms"] is None or floor["p99_ms"] is None:
        return None
    limit = TARGET_FACTOR * floor["p99_ms"] + TARGET_SLACK_MS
    return {
        "concurrency": TARGET_CONCURRENCY,
        "kefu_p99_ms": kefu["p99_ms"],
        "floor_p99_ms": floor["p99_ms"],
        "limit_ms": round(limit, 3),
        "pass": kefu["p99_ms"] <= limit,
    }


def markdown_table(results: Sequence[dict[str, Any]]) -> str:
    def fmt(value: float | None, digits: int = 2) -> str:
        return "—" if value is None else f"{value:.{digits}f}"

    lines = [
        "| server | clients | requests | errors | p50 ms | p90 ms | p99 ms | max ms | req/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r['server']} | {r['concurrency']} | {r['requests']} | {r['errors']} | {fmt(r['p50_ms'])} "
            f"| {fmt(r['p90_ms'])} | {fmt(r['p99_ms'])} | {fmt(r['max_ms'])} "
            f"| {fmt(r['throughput_rps'], 1)} |"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- driver


def parse_concurrency(text: str) -> list[int]:
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from exc
    if not levels or any(level < 1 for level in levels):
        raise argparse.ArgumentTypeError("concurrency levels must be positive integers")
    return levels


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=positive_int, default=2000, help="measured requests per level")
    parser.add_argument("--warmup", type=int, default=200, help="uncounted requests before each measurement")
    parser.add_argument("--concurrency", type=parse_concurrency, default=[1, 20], help="e.g. 1,20")
    parser.add_argument("--out", type=Path, default=Path("bench/results/turn_latency.json"))
    parser.add_argument(
        "--client",
        choices=CLIENT_KINDS,
        default="httpx",
        help="load generator's HTTP client: httpx (pooled AsyncClient) or raw (minimal asyncio HTTP/1.1)",
    )
    parser.add_argument("--port-base", type=int, default=18100, help="floor on this port, kefu on the next")
    parser.add_argument("--serve-floor", action="store_true", help=argparse.SUPPRESS)  # internal
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)  # internal, with --serve-floor
    return parser.parse_args(argv)


def install_uvloop() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def make_servers(args: argparse.Namespace, work_dir: Path, console: Console) -> dict[str, ServerProcess]:
    """The floor and kefu, not started yet; kefu gets a fresh data folder under ``work_dir``."""
    data_dir = work_dir / "data"
    data_dir.mkdir()
    kefu_extra = {"KEFU_DATA_DIR": str(data_dir)}
    if MODEL_CACHE.is_dir():
        kefu_extra["KEFU_MODEL_CACHE_DIR"] = str(MODEL_CACHE)
    else:
        console.print(f"[yellow]note:[/] {MODEL_CACHE} absent; kefu trains its models at start-up")
    floor_port, kefu_port = args.port_base, args.port_base + 1
    floor_argv = [sys.executable, str(Path(__file__).resolve()), "--serve-floor", "--port", str(floor_port)]
    kefu_argv = [*kefu_command(), "serve", "--host", HOST, "--port", str(kefu_port)]
    return {
        "floor": ServerProcess("floor", floor_argv, floor_port, server_env({}), work_dir),
        "kefu": ServerProcess("kefu", kefu_argv, kefu_port, server_env(kefu_extra), work_dir),
    }


def load_phase(
    progress: Progress,
    server: ServerProcess,
    client_kind: str,
    concurrency: int,
    total: int,
    run_id: str,
    label: str,
) -> Phase:
    """One closed-loop run with a progress bar; errors are printed with the server's output."""
    task = progress.add_task(label, total=total)
    phase = asyncio.run(run_load(server, client_kind, concurrency, total, run_id, lambda: progress.advance(task)))
    if phase.errors:
        progress.console.print(f"[red]{label}: {phase.errors} errors[/]")
        for sample in phase.error_samples:
            progress.console.print(f"  {sample}", markup=False, highlight=False)
        progress.console.print(server.tail(20), markup=False, highlight=False)
    return phase


def run_benchmark(args: argparse.Namespace, console: Console) -> tuple[list[dict[str, Any]], bool]:
    """Start both servers, load them level by level, stop them. Returns (results, any_errors)."""
    results: list[dict[str, Any]] = []
    any_errors = False
    run_stamp = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="kefu-bench-") as tmp:
        servers = make_servers(args, Path(tmp), console)
        starting: str | None = None  # the server being started, to show its output if that fails
        try:
            for name in SERVERS:
                starting = name
                servers[name].start()
            for name in SERVERS:
                starting = name
                took = servers[name].wait_ready()
                console.print(f"{name} ready on {servers[name].base_url} after {took:.1f} s")
            starting = None

            progress = Progress(
                TextColumn("{task.description:<22}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                refresh_per_second=4,
            )
            with progress:
                for concurrency in args.concurrency:
                    for name in SERVERS:  # floor, then kefu, at each level
                        server = servers[name]
                        run_id = f"{run_stamp}-{name}-c{concurrency}"
                        if args.warmup > 0:
                            label = f"{name} c={concurrency} warm-up"
                            warm_id = f"{run_id}-w"
                            warm = load_phase(progress, server, args.client, concurrency, args.warmup, warm_id, label)
                            any_errors = any_errors or warm.errors > 0
                        label = f"{name} c={concurrency}"
                        phase = load_phase(progress, server, args.client, concurrency, args.requests, run_id, label)
                        any_errors = any_errors or phase.errors > 0
                        row = summarize(name, concurrency, phase)
                        results.append(row)
                        progress.console.print(
                            f"{label:<10} p50 {row['p50_ms']} ms  p99 {row['p99_ms']} ms  "
                            f"{row['throughput_rps']} req/s  owners {row['owners']}",
                            highlight=False,
                        )
        except BaseException:
            if starting is not None:
                console.print(f"[red]{starting} failed to start; its output:[/]")
                console.print(servers[starting].tail(), markup=False, highlight=False)
            raise
        finally:
            for server in servers.values():
                server.stop()
    return results, any_errors


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.serve_floor:
        serve_floor(args.port)
        return 0

    loop_name = install_uvloop()
    console = Console(stderr=True)
    command = shlex.join(["python", *sys.argv]) if argv is None else shlex.join(["python", *argv])
    console.print(
        f"turn latency: {args.requests} requests per level (+{args.warmup} warm-up), "
        f"clients {args.concurrency}, {os.cpu_count()} CPUs, generator: {args.client} on {loop_name}"
    )
    try:
        results, any_errors = run_benchmark(args, console)
    except RuntimeError as exc:
        console.print(f"[red]error:[/] {exc}")
        return 1
    except KeyboardInterrupt:
        console.print("[red]interrupted[/] (servers stopped)")
        return 130

    target = target_check(results)
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "command": command,
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "results": results,
        "target": target,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    print(markdown_table(results))
    print()
    out = Console(soft_wrap=True)
    if target is None:
        out.print(f"target: not checked (needs a run at {TARGET_CONCURRENCY} clients)")
    else:
        verdict = "[bold green]PASS[/]" if target["pass"] else "[bold red]FAIL[/]"
        out.print(
            f"target at {TARGET_CONCURRENCY} clients: kefu p99 {target['kefu_p99_ms']:.2f} ms "
            f"<= {TARGET_FACTOR:g} x floor p99 {target['floor_p99_ms']:.2f} ms + {TARGET_SLACK_MS:g} ms "
            f"= {target['limit_ms']:.2f} ms: {verdict}"
        )
    out.print(f"results written to {args.out}", highlight=False)
    if any_errors:
        console.print("[red]errors occurred: see above[/]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
