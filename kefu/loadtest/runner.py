"""The open-loop load test: requests leave on their schedule whether or not earlier ones were answered.

At each scheduled time the generator sends the next turn of a session that is ready (its previous turn was
answered) or, when none is, starts a new session; so a slow server gets more concurrent conversations, never
fewer requests. Latency is measured from the scheduled time and every request is bounded by ``timeout_s``
from it, so the run ends by itself at about ``duration_s + timeout_s``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from kefu.loadtest.http import ConnectionPool, TransportError
from kefu.loadtest.schedule import arrival_offsets
from kefu.loadtest.sessions import LOCALES, Session, SessionMix
from kefu.loadtest.stats import Sample, error_kind, summarize

START_DELAY_S = 0.05  # between setting up and the first due time


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    prefix: str  # a path the API lives under ("" at the root)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.prefix}"

    def messages_path(self, conversation_id: str) -> str:
        return f"{self.prefix}/v1/conversations/{quote(conversation_id, safe='')}/messages"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: not resolved here, so not known to be local


def parse_target(url: str, *, allow_remote: bool = False) -> Target:
    """The server to load; ``ValueError`` saying what is wrong with ``url``. Only loopback addresses
    (127.0.0.0/8, ::1, localhost) are accepted unless ``allow_remote``."""
    parts = urlsplit(url.strip())
    if parts.scheme != "http":
        raise ValueError(f"{url!r}: only http:// URLs are supported (https needs a TLS client; test behind it)")
    if not parts.hostname:
        raise ValueError(f"{url!r}: no host")
    if parts.query or parts.fragment:
        raise ValueError(f"{url!r}: give the server's base URL, without a query or fragment")
    try:
        port = parts.port or 80
    except ValueError as exc:
        raise ValueError(f"{url!r}: bad port") from exc
    host = "127.0.0.1" if parts.hostname == "localhost" else parts.hostname
    if not allow_remote and not is_loopback(host):
        raise ValueError(f"{url!r} is not a loopback address; pass --allow-remote to load another machine")
    return Target(host, port, parts.path.rstrip("/"))


@dataclass(frozen=True)
class LoadPlan:
    target: Target
    rps: float
    duration_s: float
    arrival: str = "poisson"
    locales: tuple[str, ...] = LOCALES
    seed: int = 0
    timeout_s: float = 10.0
    max_connections: int = 1024
    api_key: str = ""

    def describe(self) -> dict[str, Any]:
        return {
            "url": self.target.url,
            "rps": self.rps,
            "duration_s": self.duration_s,
            "arrival": self.arrival,
            "sessions": list(self.locales),
            "seed": self.seed,
            "timeout_s": self.timeout_s,
            "max_connections": self.max_connections,
        }


@dataclass(frozen=True, slots=True)
class Progress:
    total: int
    due: int
    done: int
    errors: int
    in_flight: int


class RequestSource(Protocol):
    """What the open loop sends: the next request when one is due, and what became of it."""

    def next_request(self) -> tuple[str, bytes, Any]:
        """(path, JSON body, a handle given back to ``answered``)."""
        ...

    def answered(self, handle: Any, ok: bool) -> None: ...


class SessionSource:
    """kefu conversations: the next turn of a session whose previous turn was answered, else a new session."""

    def __init__(self, plan: LoadPlan) -> None:
        self.target = plan.target
        self.mix = SessionMix(plan.locales, seed=plan.seed, run_id=f"lt-{uuid.uuid4().hex[:8]}")
        self.kinds: Counter[str] = Counter()
        self._ready: deque[Session] = deque()

    def next_request(self) -> tuple[str, bytes, Session]:
        if self._ready:
            session = self._ready.popleft()
        else:
            session = self.mix.new_session()
            self.kinds[session.kind] += 1
        index, text = session.next_turn()
        body = {"text": text, "user_id": session.user_id, "message_id": f"{session.conversation_id}-{index}"}
        payload = json.dumps(body, ensure_ascii=False).encode()
        return self.target.messages_path(session.conversation_id), payload, session

    def answered(self, handle: Session, ok: bool) -> None:
        if ok and not handle.done:  # after an error the conversation's state is unknown: it ends there
            self._ready.append(handle)


@dataclass
class LoadRun:
    """One run's state; :meth:`execute` fills ``samples`` as answers come, so an interrupted run still
    has everything measured so far. ``source`` defaults to kefu conversations (:class:`SessionSource`)."""

    plan: LoadPlan
    source: RequestSource | None = None
    samples: list[Sample] = field(default_factory=list)
    elapsed_s: float = 0.0
    connections: int = 0
    offsets: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        p = self.plan
        if p.timeout_s <= 0 or p.max_connections < 1:
            raise ValueError("timeout must be positive and max_connections at least 1")
        self.offsets = arrival_offsets(p.rps, p.duration_s, p.arrival, p.seed)
        if self.source is None:
            self.source = SessionSource(p)
        self._errors = 0
        self._in_flight = 0
        self._due = 0

    def progress(self) -> Progress:
        return Progress(len(self.offsets), self._due, len(self.samples), self._errors, self._in_flight)

    def summary(self, *, interrupted: bool = False) -> dict[str, Any]:
        result = summarize(self.samples, rps=self.plan.rps, duration_s=self.plan.duration_s, elapsed_s=self.elapsed_s)
        kinds: Counter[str] = self.source.kinds if isinstance(self.source, SessionSource) else Counter()
        return {
            "plan": self.plan.describe(),
            **result,
            "scheduled": len(self.offsets),
            "sessions_started": sum(kinds.values()),
            "sessions_by_kind": dict(sorted(kinds.items())),
            "connections_opened": self.connections,
            "interrupted": interrupted,
        }

    async def execute(self, on_tick: Callable[[Progress], None] | None = None, tick_s: float = 0.25) -> None:
        plan, source = self.plan, self.source
        assert source is not None
        headers = {"Authorization": f"Bearer {plan.api_key}"} if plan.api_key else {}
        pool = ConnectionPool(
            plan.target.host, plan.target.port, size=plan.max_connections, timeout_s=plan.timeout_s, headers=headers
        )
        loop = asyncio.get_running_loop()
        start = loop.time() + START_DELAY_S
        pending: set[asyncio.Task[None]] = set()

        async def send(due: float) -> None:
            path, payload, handle = source.next_request()
            sent_at = loop.time()
            try:
                async with asyncio.timeout_at(due + plan.timeout_s):
                    status, _ = await pool.post(path, payload)
                error = error_kind(status)
            except TimeoutError:
                status, error = 0, "timeout"
            except TransportError as exc:
                status, error = 0, exc.kind
            finished = loop.time()
            self.samples.append(Sample(due - start, finished - due, sent_at - due, status, error))
            self.elapsed_s = max(self.elapsed_s, finished - start)
            self._errors += error is not None
            source.answered(handle, error is None)

        def launched(task: asyncio.Task[None]) -> None:
            pending.discard(task)
            self._in_flight = len(pending)

        ticker = asyncio.create_task(self._tick(on_tick, tick_s)) if on_tick is not None else None
        try:
            for offset in self.offsets:
                due = start + offset
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(send(due))
                pending.add(task)
                task.add_done_callback(launched)
                self._due += 1
                self._in_flight = len(pending)
            if pending:
                await asyncio.wait(list(pending))  # each one ends by its own timeout
        finally:
            for task in list(pending):
                task.cancel()
            if ticker is not None:
                ticker.cancel()
            self.connections = pool.opened
            await pool.aclose()
            if on_tick is not None:
                on_tick(self.progress())

    async def _tick(self, on_tick: Callable[[Progress], None], tick_s: float) -> None:
        while True:
            on_tick(self.progress())
            await asyncio.sleep(tick_s)


async def run_load(plan: LoadPlan, on_tick: Callable[[Progress], None] | None = None) -> dict[str, Any]:
    """Run ``plan`` to the end and return its summary (see :func:`kefu.loadtest.stats.summarize`)."""
    run = LoadRun(plan)
    await run.execute(on_tick)
    return run.summary()
