"""``kefu llm simulate``: an OpenAI-compatible server that answers like vLLM serving Qwen3-14B on a given GPU.

Each request's prompt is rendered as Qwen3's chat template and counted with the Qwen3 tokenizer; its answer
(``sim_text``) is as long as its text in Qwen3 tokens, capped by ``max_tokens``. The request then goes
through the continuous-batching model of ``kefu.llm.simulator``, driven by the wall clock: its first token
comes when the model says its prompt is done, then one token per engine step. Several replicas stand for
several GPUs behind a load balancer that deals requests in turn.

Routes: ``GET /v1/models``, ``POST /v1/chat/completions`` (SSE streaming with ``stream_options.include_usage``,
or one JSON answer), ``GET /health``, and the simulator's own ``GET /sim/stats`` (time to first token,
inter-token latency, queueing, by request) and ``POST /sim/reset``.

Streamed tokens are sent in batches every ``stream_interval_s`` (40 ms by default; 0 sends every step), so
that a 2-core machine can stream hundreds of answers at once; the first token is never held back.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from kefu.llm.prompt import render_chatml
from kefu.llm.sim_profiles import ServingProfile
from kefu.llm.sim_text import answer_text, split_pieces
from kefu.llm.simulator import Engine, SimRequest, block_hashes
from kefu.llm.tokens import QwenTokens
from kefu.loadtest.stats import latency_summary

log = logging.getLogger(__name__)
SERVED_MODEL = "qwen3-14b"
KEEP_FINISHED = 100_000  # finished requests kept for /sim/stats


@dataclass(frozen=True, slots=True)
class Finished:
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    queue_s: float
    ttft_s: float
    itl_s: float | None
    total_s: float


class EngineDriver:
    """Runs one engine against the wall clock: plan a step, sleep until it ends, apply it, wake its streams.
    Steps are scheduled back to back on an ideal timeline, so a process that was briefly descheduled catches
    up instead of serving fewer tokens per second than the GPU would."""

    def __init__(self, engine: Engine, on_finished: Callable[[SimRequest], None]) -> None:
        self.engine = engine
        self._on_finished = on_finished
        self._wake = asyncio.Event()
        self._progress: dict[SimRequest, tuple[asyncio.Event, bool]] = {}
        self.lag_s: deque[float] = deque(maxlen=10_000)  # how late each step was applied (a busy process)

    def submit(self, request: SimRequest, every_token: bool = True) -> asyncio.Event:
        """``every_token``: wake the caller at each new token (a stream); else only when the answer is done
        (a one-piece answer: a hundred requests/s of 160 tokens would otherwise mean 16,000 wake-ups/s)."""
        self.engine.submit(request)
        progress = asyncio.Event()
        self._progress[request] = (progress, every_token)
        self._wake.set()
        return progress

    def abort(self, request: SimRequest) -> None:
        self.engine.abort(request)
        self._progress.pop(request, None)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        while True:
            plan = self.engine.plan(now)
            if plan is None:
                self._wake.clear()
                await self._wake.wait()
                now = loop.time()
                continue
            end = now + plan.duration_s
            delay = end - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.lag_s.append(loop.time() - end)
            for request in self.engine.finish(plan, end):
                done = request.finished_at is not None
                event, every_token = self._progress.get(request, (None, False))
                if event is not None and (every_token or done):
                    event.set()
                if done:
                    self._progress.pop(request, None)
                    self._on_finished(request)
            now = end


class SimulatedVllm:
    """``replicas`` engines of one profile, requests dealt round-robin, with statistics of finished requests."""

    def __init__(
        self,
        profile: ServingProfile,
        *,
        replicas: int = 1,
        prefix_caching: bool = True,
        served_model: str = SERVED_MODEL,
        tokens: QwenTokens | None = None,
        stream_interval_s: float = 0.04,
        record: Path | None = None,
    ) -> None:
        if replicas < 1:
            raise ValueError("replicas must be at least 1")
        self.profile = profile
        self.prefix_caching = prefix_caching
        self.served_model = served_model
        self.tokens = tokens or QwenTokens()
        self.stream_interval_s = stream_interval_s
        self.drivers = [EngineDriver(Engine(profile, prefix_caching), self._count_finished) for _ in range(replicas)]
        self._turn = itertools.cycle(self.drivers)
        self._tasks: list[asyncio.Task[None]] = []
        self.finished: deque[Finished] = deque(maxlen=KEEP_FINISHED)
        self.aborted = 0
        # Every accepted request as one JSON line, to replay the exact prompts kefu sent (bench/capacity.py).
        self._recording: TextIO | None = record.open("a", encoding="utf-8") if record is not None else None

    def remember(self, ask: Ask) -> None:
        if self._recording is not None:
            line = {"messages": ask.messages, "tools": ask.tools, "max_tokens": ask.max_tokens}
            self._recording.write(json.dumps(line, ensure_ascii=False) + "\n")
            self._recording.flush()

    def _ensure_running(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(d.run()) for d in self.drivers]
            for task in self._tasks:
                task.add_done_callback(_report_crash)

    def _count_finished(self, r: SimRequest) -> None:
        assert r.first_token_at is not None and r.finished_at is not None and r.admitted_at is not None
        self.finished.append(
            Finished(r.prompt_tokens, r.cached_tokens, r.generated, r.admitted_at - r.arrival,
                     r.first_token_at - r.arrival, r.itl, r.finished_at - r.arrival)
        )  # fmt: skip

    def submit(self, request: SimRequest, every_token: bool = True) -> tuple[EngineDriver, asyncio.Event]:
        """Start ``request`` on the next replica; ``ValueError`` when it can never fit one sequence."""
        self._ensure_running()
        driver = next(self._turn)
        request.arrival = asyncio.get_running_loop().time()
        return driver, driver.submit(request, every_token)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._recording is not None:
            self._recording.close()
            self._recording = None

    def stats(self) -> dict[str, Any]:
        done = list(self.finished)
        prompt = sum(f.prompt_tokens for f in done)
        return {
            "gpu": self.profile.gpu,
            "precision": self.profile.precision,
            "replicas": len(self.drivers),
            "prefix_caching": self.prefix_caching,
            "kv_tokens_per_replica": self.profile.kv_tokens,
            "finished": len(done),
            "aborted": self.aborted,
            "running": sum(len(d.engine.running) for d in self.drivers),
            "waiting": sum(len(d.engine.waiting) for d in self.drivers),
            "mean_prompt_tokens": round(prompt / len(done), 1) if done else None,
            "mean_completion_tokens": round(sum(f.completion_tokens for f in done) / len(done), 1) if done else None,
            "cached_share": round(sum(f.cached_tokens for f in done) / prompt, 3) if prompt else None,
            "ttft": latency_summary(f.ttft_s for f in done),
            "itl": latency_summary(f.itl_s for f in done if f.itl_s is not None),
            "queue": latency_summary(f.queue_s for f in done),
            "total": latency_summary(f.total_s for f in done),
            "step_lag": latency_summary(lag for d in self.drivers for lag in d.lag_s),
        }

    def reset(self) -> None:
        self.finished.clear()
        self.aborted = 0
        for driver in self.drivers:
            driver.lag_s.clear()


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("a simulated engine stopped", exc_info=task.exception())


def _error(status: int, message: str, kind: str = "BadRequestError") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


@dataclass(frozen=True, slots=True)
class Ask:
    """A checked chat-completions request."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    max_tokens: int | None
    stream: bool
    include_usage: bool
    ignore_eos: bool  # vLLM's extension: generate max_tokens tokens whatever the text says


def parse_ask(body: Any, served_model: str) -> Ask | JSONResponse:
    """The request, or the error answer vLLM would give (400, or 404 for another model)."""
    if not isinstance(body, dict):
        return _error(400, "the body must be a JSON object")
    if body.get("model") not in (None, served_model):
        return _error(404, f"The model `{body.get('model')}` does not exist.", "NotFoundError")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        return _error(400, "messages must be a non-empty list of objects")
    limit = body.get("max_tokens", body.get("max_completion_tokens"))
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        return _error(400, "max_tokens must be a positive integer")
    tools = body.get("tools") or []
    options = body.get("stream_options") or {}
    return Ask(
        messages=messages,
        tools=tools if isinstance(tools, list) else [],
        max_tokens=limit,
        stream=bool(body.get("stream")),
        include_usage=isinstance(options, Mapping) and bool(options.get("include_usage")),
        ignore_eos=body.get("ignore_eos") is True,
    )


def _chunk(cid: str, model: str, created: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    data = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [choice]}
    return b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n"


def build_app(sim: SimulatedVllm) -> Starlette:
    profile = sim.profile

    async def models(_: Request) -> Response:
        entry = {"id": sim.served_model, "object": "model", "owned_by": "kefu-simulator"}
        return JSONResponse({"object": "list", "data": [{**entry, "max_model_len": profile.max_model_len}]})

    async def health(_: Request) -> Response:
        return Response(status_code=200)

    async def stats(_: Request) -> Response:
        return JSONResponse(sim.stats())

    async def reset(_: Request) -> Response:
        sim.reset()
        return JSONResponse({"reset": True})

    async def completions(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "the body is not JSON")
        ask = parse_ask(body, sim.served_model)
        if isinstance(ask, JSONResponse):
            return ask
        prompt_ids = sim.tokens.encode(render_chatml(ask.messages, ask.tools))
        text = answer_text(ask.messages)
        natural = max(1, len(sim.tokens.encode(text)))
        cap = ask.max_tokens or max(1, profile.max_model_len - len(prompt_ids))
        output = cap if ask.ignore_eos else min(natural, cap)
        finish_reason = "length" if output == cap and (natural > cap or ask.ignore_eos) else "stop"
        pieces = split_pieces(text, natural)
        pieces = [pieces[i % natural] for i in range(output)]  # the text again and again past its end
        blocks = block_hashes(prompt_ids) if sim.prefix_caching else ()
        job = SimRequest(prompt_tokens=len(prompt_ids), output_tokens=output, blocks=blocks)
        try:
            driver, progress = sim.submit(job, every_token=ask.stream)
        except ValueError as exc:
            return _error(400, f"This model's maximum context length is exceeded: {exc}")
        sim.remember(ask)
        cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        usage = {"prompt_tokens": job.prompt_tokens, "completion_tokens": output,
                 "total_tokens": job.prompt_tokens + output}  # fmt: skip

        def usage_now() -> dict[str, Any]:
            return {**usage, "prompt_tokens_details": {"cached_tokens": job.cached_tokens}}

        if not ask.stream:
            try:
                while not job.finished:
                    await progress.wait()
                    progress.clear()
            finally:
                if not job.finished:
                    driver.abort(job)
                    sim.aborted += 1
            message = {"role": "assistant", "content": "".join(pieces)}
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
            answer = {"id": cid, "object": "chat.completion", "created": created, "model": sim.served_model}
            return JSONResponse({**answer, "choices": [choice], "usage": usage_now()})

        async def stream() -> AsyncIterator[bytes]:
            sent = 0
            try:
                while not job.finished:
                    await progress.wait()
                    progress.clear()
                    if job.generated > sent:
                        delta: dict[str, Any] = {"content": "".join(pieces[sent : job.generated])}
                        if sent == 0:
                            delta = {"role": "assistant", **delta}
                        sent = job.generated
                        yield _chunk(cid, sim.served_model, created, delta)
                    if sim.stream_interval_s > 0 and not job.finished:
                        await asyncio.sleep(sim.stream_interval_s)  # let tokens gather into one chunk
                if sent < len(pieces):
                    yield _chunk(cid, sim.served_model, created, {"content": "".join(pieces[sent:])})
                yield _chunk(cid, sim.served_model, created, {}, finish_reason)
                if ask.include_usage:
                    tail = {"id": cid, "object": "chat.completion.chunk", "created": created,
                            "model": sim.served_model, "choices": [], "usage": usage_now()}  # fmt: skip
                    yield b"data: " + json.dumps(tail).encode() + b"\n\n"
                yield b"data: [DONE]\n\n"
            finally:
                if not job.finished:  # the client went away: free its sequence, as vLLM does
                    driver.abort(job)
                    sim.aborted += 1

        return StreamingResponse(stream(), media_type="text/event-stream")

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await sim.close()

    return Starlette(
        lifespan=lifespan,
        routes=[
            Route("/v1/models", models),
            Route("/v1/chat/completions", completions, methods=["POST"]),
            Route("/health", health),
            Route("/sim/stats", stats),
            Route("/sim/reset", reset, methods=["POST"]),
        ],
    )


def serve(sim: SimulatedVllm, host: str, port: int) -> None:
    """Run the simulator's HTTP server until interrupted."""
    import uvicorn

    uvicorn.run(build_app(sim), host=host, port=port, log_level="warning", access_log=False, lifespan="on")
