"""``kefu keys …`` (API keys for channel clients) and ``kefu user …`` (agent and admin accounts).

Both work on the database the servers use (KEFU_DATABASE_URL); a running server sees a new or revoked key,
or a disabled account, within KEFU_AUTH_CACHE_S (5 s by default)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table

from kefu.access.accounts import AccessStore, AccountExists, UnknownAccount
from kefu.access.passwords import hash_password, password_problem
from kefu.access.principals import ACCOUNT_ROLES, ROLES, as_role
from kefu.cli.common import cli_settings, console, fail
from kefu.store.database import create_engine, migrate

keys_app = typer.Typer(help="API keys for channel clients: create, list, revoke.", no_args_is_help=True)
user_app = typer.Typer(help="Agent and admin accounts: add, list, disable, change a password.", no_args_is_help=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first line of standard input.")
]
T = TypeVar("T")


def _with_store(action: Callable[[AccessStore], Awaitable[T]]) -> T:
    async def run() -> T:
        engine = create_engine(cli_settings().resolved_database_url)
        try:
            await migrate(engine)
            return await action(AccessStore(engine))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except (ValueError, AccountExists, UnknownAccount) as exc:
        raise fail(str(exc)) from exc


def _show(records: list[dict[str, Any]], columns: tuple[str, ...], as_json: bool) -> None:
    if as_json:
        print(json.dumps(records, ensure_ascii=False))
        return
    table = Table(*columns)
    for record in records:
        table.add_row(*(str(record[c]) if record[c] is not None else "-" for c in columns))
    console.print(table)


# --- keys
@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="What the key is for, e.g. 'web widget' or 'wechat bridge'.")],
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")] = "channel",
) -> None:
    """Make a key and print it once: only its hash is kept, so it cannot be shown again."""
    try:
        checked = as_role(role)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    info, key = _with_store(lambda store: store.create_key(name, checked))
    console.print(f"created key [bold]{info.id}[/] ({info.role}) for {info.name!r}; store it now, it is shown once:")
    print(key)


@keys_app.command("list")
def keys_list(as_json: JsonFlag = False) -> None:
    """Every key, revoked ones too; never the keys themselves."""
    keys = _with_store(lambda store: store.keys())
    _show([k.to_dict() for k in keys], ("id", "name", "role", "created_at", "last_used_at", "revoked_at"), as_json)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (the 8 characters after kefu_).")]) -> None:
    """Revoke a key; servers refuse it within KEFU_AUTH_CACHE_S."""
    info = _with_store(lambda store: store.revoke_key(key_id))
    if info is None:
        raise fail(f"no key {key_id!r}", 1)
    print(f"revoked key {info.id} ({info.name}) at {info.revoked_at.isoformat() if info.revoked_at else '?'}")


# --- accounts
def _new_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = typer.prompt("Password / 密码", hide_input=True, confirmation_prompt=True)
    else:
        raise fail("no terminal to ask for the password: pass --password-stdin and write it on standard input")
    problem = password_problem(password)
    if problem:
        raise fail(problem)
    return hash_password(password)


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="Letters (any script), digits, . _ @ -; 1-64 characters.")],
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ACCOUNT_ROLES)}.")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Add an account; the password (at least 10 characters) is asked for without echo."""
    try:
        checked = as_role(role)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    if checked not in ACCOUNT_ROLES:
        raise fail(f"an account's role is one of {', '.join(ACCOUNT_ROLES)}")
    hashed = _new_password(password_stdin)
    account = _with_store(lambda store: store.create_account(username, checked, hashed))
    print(f"added {account.role} {account.username}")


@user_app.command("list")
def user_list(as_json: JsonFlag = False) -> None:
    """Every account; never a password hash."""
    accounts = _with_store(lambda store: store.accounts())
    _show([a.to_dict() for a in accounts], ("username", "role", "created_at", "last_login_at", "disabled_at"), as_json)


@user_app.command("disable")
def user_disable(username: Annotated[str, typer.Argument()]) -> None:
    """Disable an account: it cannot sign in, and its sessions stop working within KEFU_AUTH_CACHE_S."""
    account = _with_store(lambda store: store.disable(username))
    print(f"disabled {account.username}")


@user_app.command("enable")
def user_enable(username: Annotated[str, typer.Argument()]) -> None:
    """Enable a disabled account again (its earlier sessions stay invalid)."""
    account = _with_store(lambda store: store.enable(username))
    print(f"enabled {account.username}")


@user_app.command("passwd")
def user_passwd(username: Annotated[str, typer.Argument()], password_stdin: PasswordStdin = False) -> None:
    """Set a new password; sessions signed in with the old one stop working."""
    hashed = _new_password(password_stdin)
    account = _with_store(lambda store: store.set_password(username, hashed))
    print(f"changed the password of {account.username}")
