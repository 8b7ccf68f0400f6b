"""``kefu privacy …``: erase a user or a conversation, purge expired conversations, read the privacy audit.

Works on the database the servers use (KEFU_DATABASE_URL). Every run, dry runs included, is audited; the
audit names a user only by pseudonym (HMAC with KEFU_PSEUDONYM_SECRET), never by the id given here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from kefu.access.tokens import load_secret
from kefu.cli.common import cli_actor, cli_settings, console, fail
from kefu.config import Settings
from kefu.guard.pseudonym import Pseudonymizer
from kefu.guard.setup import build_pseudonymizer
from kefu.guard.storage import Sealer
from kefu.store.database import create_engine, migrate
from kefu.store.privacy import Erasure, audit_log, erase_conversation, erase_user, purge

app = typer.Typer(
    help="Privacy: erase a user's records, purge old conversations, read the audit.", no_args_is_help=True
)
JsonFlag = Annotated[bool, typer.Option("--json", help="End with one JSON line of results.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Count what would go; delete nothing (still audited).")]
T = TypeVar("T")


def _pseudonymizer(settings: Settings) -> Pseudonymizer:
    """The servers' pseudonyms (KEFU_PSEUDONYM_SECRET, else derived from the server secret), so an audit
    subject matches the user's pseudonym in logs and metrics."""
    try:
        return build_pseudonymizer(settings, load_secret(settings.secret_key, settings.data_dir))
    except (ValueError, OSError) as exc:
        raise fail(f"no pseudonym secret: {exc}") from exc


def _on_database(settings: Settings, action: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    async def run() -> T:
        engine = create_engine(settings.resolved_database_url)
        try:
            await migrate(engine)
            return await action(engine)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _report(erasure: Erasure, as_json: bool) -> None:
    verb = "would erase" if erasure.dry_run else "erased"
    table = Table("table", "rows")
    for name, count in erasure.counts.items():
        table.add_row(name, str(count))
    Console(soft_wrap=True).print(table)
    if erasure.found:
        print(f"{erasure.action} {erasure.subject}: {verb} {erasure.total} rows")
    else:
        print(f"{erasure.action} {erasure.subject}: no records found, nothing to erase")
    if as_json:
        print(json.dumps(erasure.to_dict(), ensure_ascii=False))


@app.command("erase")
def erase(
    user: Annotated[str | None, typer.Option("--user", help="Every conversation and record of this user id.")] = None,
    conversation: Annotated[
        str | None, typer.Option("--conversation", help="One conversation (e.g. an anonymous one) by its id.")
    ] = None,
    dry_run: DryRun = False,
    as_json: JsonFlag = False,
) -> None:
    """Remove every record of a user (or one conversation) in one transaction, and audit it."""
    if (user is None) == (conversation is None):
        raise fail("give exactly one of --user ID and --conversation ID")
    subject = user if user is not None else conversation
    if not subject or not subject.strip():
        raise fail("the id must not be empty")
    try:
        subject.encode("utf-8")
    except UnicodeEncodeError as exc:  # undecodable bytes on the command line: no stored id looks like that
        raise fail("the id is not valid UTF-8") from exc
    settings = cli_settings()
    pseudonymize = _pseudonymizer(settings)
    if user is not None:
        erasure = _on_database(
            settings, lambda engine: erase_user(engine, user, pseudonymize, actor=cli_actor(), dry_run=dry_run)
        )
    else:
        assert conversation is not None
        erasure = _on_database(
            settings,
            lambda engine: erase_conversation(engine, conversation, pseudonymize, actor=cli_actor(), dry_run=dry_run),
        )
    _report(erasure, as_json)


@app.command("purge")
def purge_command(
    older_than: Annotated[
        int | None,
        typer.Option("--older-than", min=1, max=36500, help="Days without activity (default KEFU_RETENTION_DAYS)."),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="Conversations per transaction.")] = 500,
    dry_run: DryRun = False,
    as_json: JsonFlag = False,
) -> None:
    """Erase conversations idle for longer than the retention period, with everything hanging off them."""
    settings = cli_settings()
    days = older_than if older_than is not None else settings.retention_days
    if days < 1:
        raise fail("retention is off (KEFU_RETENTION_DAYS=0): pass --older-than DAYS")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("counting" if dry_run else "purging", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        erasure = _on_database(
            settings,
            lambda engine: purge(
                engine,
                days,
                now=datetime.now(UTC),
                actor=cli_actor(),
                dry_run=dry_run,
                batch_size=batch_size,
                progress=advance,
            ),
        )
    _report(erasure, as_json)


@app.command("audit")
def audit(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many entries, newest first.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Erasures and purges, newest first: when, who, what (by pseudonym), how many rows, dry run or not."""
    entries = _on_database(cli_settings(), lambda engine: audit_log(engine, limit))
    table = Table("at", "actor", "action", "subject", "rows", "dry run")
    for entry in entries:
        rows = sum(entry["counts"].values())
        table.add_row(entry["at"], entry["actor"], entry["action"], entry["subject"], str(rows), str(entry["dry_run"]))
    Console(soft_wrap=True).print(table)
    if as_json:
        print(json.dumps({"audit": entries}, ensure_ascii=False))


@app.command("new-key")
def new_key() -> None:
    """Print a new key for KEFU_STORE_ORIGINALS_KEY (seals customers' original texts at rest)."""
    print(Sealer.new_key())
