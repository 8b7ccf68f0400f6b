"""``kefu``: serve, chat, and pack tools."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import typer

from kefu.cli import access as access_cli
from kefu.cli import chat as chat_cli
from kefu.cli import guard as guard_cli
from kefu.cli import intent as intent_cli
from kefu.cli import kb as kb_cli
from kefu.cli import loadtest as loadtest_cli
from kefu.cli import models as models_cli
from kefu.cli import privacy as privacy_cli
from kefu.cli import worker as worker_cli
from kefu.cli.common import cli_settings, console
from kefu.config import Settings

app = typer.Typer(help="kefu (客服): self-hosted customer-service system.", no_args_is_help=True)
pack_app = typer.Typer(help="Domain packs: check and prepare.", no_args_is_help=True)
app.add_typer(pack_app, name="pack")
app.add_typer(intent_cli.app, name="intent")
app.add_typer(kb_cli.app, name="kb")
app.add_typer(models_cli.model_app, name="model")
app.add_typer(models_cli.experiment_app, name="experiment")
app.add_typer(models_cli.llm_app, name="llm")
app.add_typer(access_cli.keys_app, name="keys")
app.add_typer(access_cli.user_app, name="user")
app.add_typer(guard_cli.app, name="guard")
app.add_typer(privacy_cli.app, name="privacy")
app.command("loadtest")(loadtest_cli.loadtest)
app.command("worker")(worker_cli.worker)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default KEFU_HOST or 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default KEFU_PORT or 8000).")] = None,
    llm_local: Annotated[
        bool, typer.Option("--llm-local", help="Start the bundled llama.cpp engine too, and stop it on exit.")
    ] = False,
    gguf: Annotated[Path | None, typer.Option(help="With --llm-local: this GGUF instead of SmolLM2-135M.")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Server processes sharing the port (one per core pays). Live pushes between them need KEFU_REDIS_URL.",
        ),
    ] = 1,
) -> None:
    """Start the HTTP server (database from KEFU_DATABASE_URL; SQLite under ./data/ by default)."""
    import uvicorn

    from kefu.access.tokens import load_secret
    from kefu.api import create_app
    from kefu.guard.setup import build_pseudonymizer
    from kefu.llm.local import LocalEngine, LocalEngineError
    from kefu.obs.logs import configure_logging

    settings = cli_settings(host=host, port=port)
    secret = load_secret(settings.secret_key, settings.data_dir)
    configure_logging(settings.log_level, settings.log_json, build_pseudonymizer(settings, secret))
    engine = None
    if llm_local and not settings.llm_local_url:
        try:
            engine = LocalEngine(gguf, log_file=settings.data_dir / "llama-server.log")
            url = engine.start()
        except LocalEngineError as exc:
            console.print(f"[yellow]warning:[/] no local LLM ({exc}); replies come from the templates")
            engine = None
        else:
            overrides: dict[str, object] = {"llm_local_url": url}
            if gguf is not None:
                overrides.update(llm_local_model=gguf.stem, llm_local_languages=[])
            settings = settings.model_copy(update=overrides)
            console.print(f"local LLM [bold]{engine.gguf.name}[/] at {url}")
    console.print(f"kefu serving pack [bold]{settings.pack}[/] on [bold]http://{settings.host}:{settings.port}/[/]")
    served: object = create_app(settings)
    if workers > 1:
        served = _prepare_workers(settings, workers)
    try:
        uvicorn.run(
            served,  # type: ignore[arg-type]
            factory=workers > 1,
            workers=workers,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            access_log=False,
            log_config=None,  # uvicorn's own records go through kefu's handler (JSON, PII redacted)
            lifespan="on",
        )
    finally:
        if engine is not None:
            engine.stop()


def _prepare_workers(settings: Settings, workers: int) -> str:
    """Before the worker processes start: migrate the schema once (they would race), warn about what is
    per process, and hand the command line's choices on through the environment."""
    from kefu.store.database import create_engine, migrate

    async def migrate_once() -> None:
        engine = create_engine(settings.resolved_database_url)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()

    asyncio.run(migrate_once())
    if not settings.redis_url:
        console.print(
            f"[yellow]note:[/] {workers} workers without KEFU_REDIS_URL: each has its own conversation locks and live "
            "pushes (a widget and an agent console on different workers do not see each other's messages)"
        )
    chosen = {
        "host": settings.host,
        "port": str(settings.port),
        "llm_local_url": settings.llm_local_url,
        "llm_local_model": settings.llm_local_model,
        "llm_local_languages": ",".join(settings.llm_local_languages),
    }
    os.environ.update({f"KEFU_{name.upper()}": value for name, value in chosen.items()})
    return "kefu.api.app:create_app_from_environment"


@app.command()
def chat(
    url: Annotated[str | None, typer.Option(help="Talk to this server; without it kefu runs in-process.")] = None,
    conversation: Annotated[str | None, typer.Option(help="Conversation id (default: a new one).")] = None,
    locale: Annotated[str | None, typer.Option(help="zh or en (default: detected per message).")] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="KEFU_CLIENT_API_KEY", help="Bearer key for the server.")
    ] = None,
) -> None:
    """A conversation in the terminal. Type 'exit' or Ctrl-D to leave."""
    if locale not in (None, "zh", "en"):
        console.print("[red]error:[/] --locale must be zh or en")
        raise typer.Exit(2)
    asyncio.run(chat_cli.run(url, conversation, locale, api_key, cli_settings))


@pack_app.command("validate")
def pack_validate(path: Annotated[Path, typer.Argument(help="A pack folder (with pack.yaml).")]) -> None:
    """Check a pack: YAML, flows, templates, intents, knowledge. Exit 1 with every problem named."""
    from kefu.actions.bank_tools import bank_tool_names
    from kefu.actions.tools import builtin_tool_names
    from kefu.packs.loader import PackError, check_pack, load_pack

    if not (path / "pack.yaml").is_file():
        console.print(f"[red]error:[/] {path}: not a pack folder (no pack.yaml)")
        raise typer.Exit(2)
    settings = cli_settings()
    try:
        pack = load_pack(str(path), settings.resolved_training_data_dir)
    except PackError as exc:
        console.print(f"[red]invalid pack:[/] {exc}")
        raise typer.Exit(1) from exc
    problems = check_pack(pack, builtin_tool_names() | bank_tool_names())
    if problems:
        console.print("[red]invalid pack:[/]\n  " + "\n  ".join(problems))
        raise typer.Exit(1)
    counts = {lang: sum(len(v) for v in by.values()) for lang, by in pack.intent_examples.items()}
    external = "".join(f", {f.examples} from {f.path} ({f.language})" for f in pack.training_files)
    print(
        f"pack {pack.name}: ok — {len(pack.intents)} intents, examples {counts}{external}, {len(pack.flows)} flows, "
        f"{len(pack.documents)} articles, {len(pack.catalogue)} products, {len(pack.orders)} orders"
    )


@pack_app.command("prepare")
def pack_prepare(
    pack: Annotated[str | None, typer.Option(help="Pack name or folder (default KEFU_PACK).")] = None,
) -> None:
    """Train and cache the pack's intent and dialogue-act models (done by `make install`)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from kefu.nlu.encoder import UseEncoder
    from kefu.nlu.model_store import ModelFormatError
    from kefu.nlu.pack_models import load_pack_models, model_folder, train_pack_models
    from kefu.packs.loader import PackError, load_pack
    from kefu.runtime import build_knowledge

    settings = cli_settings(pack=pack)
    try:
        loaded = load_pack(settings.pack, settings.resolved_training_data_dir)
    except PackError as exc:
        console.print(f"[red]invalid pack:[/] {exc}")
        raise typer.Exit(1) from exc
    encoder = UseEncoder()
    folder = model_folder(loaded, encoder, settings.resolved_model_cache_dir)
    try:
        load_pack_models(loaded, encoder, settings.resolved_model_cache_dir)
        print(f"models for pack {loaded.name} are up to date: {folder}")
    except ModelFormatError:
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
        ) as progress:
            task = progress.add_task("training", total=None)
            train_pack_models(loaded, encoder, folder, lambda msg: progress.update(task, description=msg))
        print(f"trained models for pack {loaded.name}: {folder}")
    # The pack's articles, encoded once here so that a server start only reads them.
    knowledge = asyncio.run(build_knowledge(loaded, settings, encoder, None))
    print(f"knowledge for pack {loaded.name}: {len(knowledge.pack_docs)} articles, {knowledge.size} chunks")


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    app()


if __name__ == "__main__":
    main()
