"""``kefu loadtest``: an open-loop load test of a kefu server with multi-turn zh/en demo-shop sessions."""

from __future__ import annotations

import asyncio
import json
import math
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kefu.cli.common import console, fail
from kefu.loadtest.runner import LoadPlan, LoadRun, parse_target
from kefu.loadtest.runner import Progress as LoadProgress
from kefu.loadtest.schedule import ARRIVALS, MAX_REQUESTS
from kefu.loadtest.sessions import LOCALES

MAX_DURATION_S = 3600.0
MAX_RPS = 20_000.0


def _locales(text: str) -> tuple[str, ...]:
    picked = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [p for p in picked if p not in LOCALES]
    if not picked or unknown:
        raise fail(f"--sessions takes a comma-separated list of {', '.join(LOCALES)}; got {text!r}")
    return picked


def _run(coroutine_factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run on uvloop when it is installed (several times less CPU per request than the default loop)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coroutine_factory())
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(coroutine_factory())


def _print_summary(summary: dict[str, Any], out: Console) -> None:
    latency, lag = summary["latency"], summary["send_lag"]
    title = f"open loop at {summary['target_rps']:g} req/s for {summary['duration_s']:g} s"
    table = Table("requests", "ok", "errors", "throughput req/s", "p50 ms", "p90 ms", "p99 ms", "max ms",
                  "send lag p99 ms", title=title)  # fmt: skip
    table.add_row(
        *(str(v) for v in (summary["requests"], summary["ok"], summary["errors"], summary["throughput_rps"],
                           latency["p50_ms"], latency["p90_ms"], latency["p99_ms"], latency["max_ms"], lag["p99_ms"]))
    )  # fmt: skip
    out.print(table)
    if summary["errors_by_kind"]:
        out.print("errors by kind: " + ", ".join(f"{k} {v}" for k, v in summary["errors_by_kind"].items()))
    timeline = Table("second", "sent", "ok", "errors", "p50 ms", "p99 ms", "max ms", title="per second")
    for row in summary["timeline"]:
        timeline.add_row(*(str(row[k]) for k in ("second", "sent", "ok", "errors", "p50_ms", "p99_ms", "max_ms")))
    out.print(timeline)


def loadtest(
    url: Annotated[str, typer.Option(help="The kefu server's base URL, e.g. http://127.0.0.1:8000.")],
    rps: Annotated[float, typer.Option(help="Requests per second to offer (open loop).")],
    duration: Annotated[float, typer.Option(help="Seconds of scheduled requests.")],
    as_json: Annotated[bool, typer.Option("--json", help="End with one JSON line of results.")] = False,
    report: Annotated[Path | None, typer.Option(help="Write an HTML report with plots into this folder.")] = None,
    sessions: Annotated[str, typer.Option(help="Conversation languages, comma-separated: zh, en.")] = "zh,en",
    seed: Annotated[int, typer.Option(help="Seed of the schedule and the session mix.")] = 0,
    arrival: Annotated[str, typer.Option(help="poisson (independent customers) or fixed (even spacing).")] = "poisson",
    timeout: Annotated[float, typer.Option(help="Seconds after its scheduled time a request gives up.")] = 10.0,
    max_connections: Annotated[int, typer.Option(help="Keep-alive connections at most.")] = 1024,
    allow_remote: Annotated[bool, typer.Option("--allow-remote", help="Allow a non-loopback server.")] = False,
    api_key: Annotated[str, typer.Option(envvar="KEFU_CLIENT_API_KEY", help="Bearer key for the server.")] = "",
) -> None:
    """Load a kefu server on a schedule (sent whether or not earlier requests were answered) with multi-turn
    demo-shop conversations; report latency from the scheduled time, throughput, errors and a timeline."""
    if not (math.isfinite(rps) and 0 < rps <= MAX_RPS):
        raise fail(f"--rps must be above 0 and at most {MAX_RPS:g}")
    if not (math.isfinite(duration) and 0 < duration <= MAX_DURATION_S):
        raise fail(f"--duration must be above 0 and at most {MAX_DURATION_S:g} seconds")
    if rps * duration > MAX_REQUESTS:
        raise fail(f"--rps x --duration is {rps * duration:,.0f} requests; at most {MAX_REQUESTS:,} in one run")
    if arrival not in ARRIVALS:
        raise fail(f"--arrival must be one of {', '.join(ARRIVALS)}")
    if not (math.isfinite(timeout) and 0 < timeout <= 600):
        raise fail("--timeout must be above 0 and at most 600 seconds")
    if not 1 <= max_connections <= 10_000:
        raise fail("--max-connections must be between 1 and 10000")
    if report is not None and report.exists() and not report.is_dir():
        raise fail(f"--report {report}: exists and is not a folder")
    try:
        target = parse_target(url, allow_remote=allow_remote)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    plan = LoadPlan(target, rps, duration, arrival, _locales(sessions), seed, timeout, max_connections, api_key)
    run = LoadRun(plan)
    console.print(
        f"loadtest: {len(run.offsets)} requests to {target.url} over {duration:g} s ({arrival}, {rps:g}/s), "
        f"sessions {','.join(plan.locales)}",
        highlight=False,
    )
    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("in flight {task.fields[in_flight]}  errors {task.fields[errors]}"),
        console=console, refresh_per_second=4, transient=True,
    )  # fmt: skip
    task = bar.add_task("answered", total=len(run.offsets), in_flight=0, errors=0)

    def tick(progress: LoadProgress) -> None:
        bar.update(task, completed=progress.done, in_flight=progress.in_flight, errors=progress.errors)

    interrupted = False
    with bar:
        try:
            _run(lambda: run.execute(tick))
        except KeyboardInterrupt:
            interrupted = True
    summary = run.summary(interrupted=interrupted)
    out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)  # tables unsquashed in logs
    _print_summary(summary, out)
    if report is not None:
        from kefu.loadtest.report import write_report  # matplotlib: loaded only when a report is asked for

        page = write_report(report, summary, run.samples)
        out.print(f"report: {page}", highlight=False)
    if as_json:
        print(json.dumps(summary, ensure_ascii=False))
    if interrupted:
        raise typer.Exit(130)
    if summary["requests"] and not summary["ok"]:
        raise fail("no request was answered with a 2xx", 1)
