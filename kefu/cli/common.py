"""What every ``kefu`` sub-command shares: one error console and the settings, with a clean exit on errors."""

from __future__ import annotations

import getpass

import typer
from rich.console import Console

from kefu.config import Settings, SettingsError, load_settings

console = Console(stderr=True, soft_wrap=True)  # error lines stay whole for grep and logs


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` on stderr; raise the returned ``Exit``."""
    console.print(f"[red]error:[/] {message}", markup=True, highlight=False)
    return typer.Exit(code)


def cli_settings(**overrides: object) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        raise fail(str(exc)) from exc


def cli_actor() -> str:
    """Who made an audited change from the command line."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"
