"""``kefu worker --kafka HOST:PORT``: the pipeline in a Kafka consumer group (see docs/kafka.md).

SIGTERM or Ctrl-C: stop reading, finish the turns under way, publish their answers, commit, exit 0. A
second signal stops at once (the unfinished turns are redelivered to the next worker).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kefu.cli.common import cli_settings, console, fail
from kefu.config import Settings

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from kefu.channels.kafka.worker import KafkaWorker

log = logging.getLogger(__name__)


def worker(
    kafka: Annotated[
        str | None,
        typer.Option("--kafka", help="Bootstrap servers HOST:PORT[,HOST:PORT] (default KEFU_KAFKA_BOOTSTRAP)."),
    ] = None,
    group: Annotated[str | None, typer.Option(help="Consumer group (default KEFU_KAFKA_GROUP, kefu-workers).")] = None,
    concurrency: Annotated[
        int, typer.Option(min=1, max=1024, help="Conversations answered at the same time by this worker.")
    ] = 16,
    partitions: Annotated[
        int, typer.Option(min=1, max=10_000, help="Partitions of topics this worker has to create.")
    ] = 6,
    session_timeout: Annotated[
        float,
        typer.Option(min=1, max=300, help="Seconds without heartbeat before the group moves this worker's partitions."),
    ] = 10.0,
    metrics_port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Serve Prometheus /metrics on this port.")
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="Interface for --metrics-port.")] = "127.0.0.1",
) -> None:
    """Answer the messages of kefu.inbound and publish the answers to kefu.outbound."""
    from kefu.access.tokens import load_secret
    from kefu.channels.kafka.connect import parse_bootstrap
    from kefu.guard.setup import build_pseudonymizer
    from kefu.obs.logs import configure_logging

    settings = cli_settings()
    raw = kafka if kafka is not None else settings.kafka_bootstrap
    if not raw:
        raise fail("--kafka HOST:PORT is required (or set KEFU_KAFKA_BOOTSTRAP)")
    try:
        bootstrap = parse_bootstrap(raw)
    except ValueError as exc:
        raise fail(f"--kafka: {exc}") from exc
    configure_logging(
        settings.log_level,
        settings.log_json,
        build_pseudonymizer(settings, load_secret(settings.secret_key, settings.data_dir)),
    )
    options: dict[str, Any] = {
        "group": group,
        "concurrency": concurrency,
        "partitions": partitions,
        "session_timeout_ms": int(session_timeout * 1000),
    }
    code = asyncio.run(_serve(settings, bootstrap, options, metrics_port, metrics_host))
    if code:
        raise typer.Exit(code)


async def _serve(
    settings: Settings, bootstrap: str, options: dict[str, Any], metrics_port: int | None, metrics_host: str
) -> int:
    from kefu.channels.kafka.connect import BrokerUnavailable, ensure_topics
    from kefu.channels.kafka.worker import KafkaWorker, WorkerConfig, WorkerFailed
    from kefu.runtime import build_runtime

    config = WorkerConfig.from_settings(settings, bootstrap, **options)
    topics = (config.inbound_topic, config.outbound_topic, config.deadletter_topic)
    try:  # before the (slower) runtime: a wrong address fails in seconds
        await ensure_topics(bootstrap, topics, config.partitions)
    except BrokerUnavailable as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        return 1
    runtime = await build_runtime(settings, kafka_relay=False)
    worker = KafkaWorker(config, runtime.pipeline, runtime.metrics)
    server = None
    try:
        try:
            await worker.start()
        except BrokerUnavailable as exc:
            console.print(f"[red]error:[/] {exc}", highlight=False)
            return 1
        if metrics_port is not None:
            server = _serve_metrics(runtime.metrics.registry, metrics_host, metrics_port)
        _on_signals(worker)
        console.print(
            f"kefu worker: group [bold]{config.group}[/] on {config.inbound_topic} at {bootstrap}, "
            f"{config.concurrency} at a time; answers to {config.outbound_topic}",
            highlight=False,
        )
        try:
            await worker.run()
        except WorkerFailed as exc:
            console.print(f"[red]error:[/] the broker refused a write ({exc}); unfinished messages are redelivered")
            return 1
    finally:
        await worker.close()
        await runtime.close()
        if server is not None:
            server.shutdown()
    s = worker.stats
    console.print(
        f"kefu worker stopped: {s.answered} answered ({s.replayed} from the store), {s.retried} retried, "
        f"{s.dead_letters} dead letters, {s.commits} commits",
        highlight=False,
    )
    return 0


def _on_signals(worker: KafkaWorker) -> None:
    loop = asyncio.get_running_loop()
    aborting: set[asyncio.Task[None]] = set()

    def on_signal(name: str) -> None:
        if worker.stopping:
            console.print(f"{name} again: stopping now; unfinished messages will be redelivered")
            task = loop.create_task(worker.abort())
            aborting.add(task)
            task.add_done_callback(aborting.discard)
            return
        console.print(f"{name}: finishing the turns under way, then committing (again to stop at once)")
        worker.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig.name)


def _serve_metrics(registry: CollectorRegistry, host: str, port: int) -> Any:
    from prometheus_client import start_http_server

    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise fail(f"--metrics-port {port}: {exc}") from exc
    return server
