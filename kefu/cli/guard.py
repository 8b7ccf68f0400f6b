"""``kefu guard check``: the guard's verdict on each JSONL line of stdin (PII, injection, moderation)."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated, Any, TextIO

import typer

from kefu.cli.common import cli_settings, console, fail
from kefu.guard.injection import InjectionDetector
from kefu.guard.moderation import Moderator
from kefu.guard.pii import find_pii, redact
from kefu.guard.safety import SafetyGuard
from kefu.guard.setup import build_moderator, semantic_check
from kefu.nlu.encoder import RecentVectors, UseEncoder

app = typer.Typer(help="Safety checks: PII redaction, prompt injection, moderation.", no_args_is_help=True)


async def _check_lines(source: TextIO, out: TextIO, moderator: Moderator, guard: SafetyGuard) -> int:
    """Writes one verdict per good line, in order; a bad line is reported on stderr and skipped. Returns
    how many lines were bad."""
    bad = 0
    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        try:
            item: Any = json.loads(line)
        except json.JSONDecodeError as exc:
            console.print(f"line {number}: not JSON ({exc.msg} at column {exc.colno})", markup=False)
            bad += 1
            continue
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            console.print(f'line {number}: expected an object with a string "text"', markup=False)
            bad += 1
            continue
        text: str = item["text"]
        spans = find_pii(text)
        redacted = redact(text, spans)
        moderation = await moderator.check(redacted)  # an external service never sees the PII
        verdict = {
            "text": text,
            "redacted": redacted,
            "pii": [{"type": s.type, "start": s.start, "end": s.end} for s in spans],
            "injection": guard.check_injection(text).flagged,
            "moderation": {"flagged": moderation.flagged, "categories": list(moderation.categories)},
        }
        out.write(json.dumps(verdict, ensure_ascii=False) + "\n")
        out.flush()
    return bad


@app.command()
def check(
    external: Annotated[
        bool, typer.Option("--external/--no-external", help="Also ask KEFU_MODERATION_URL when it is set.")
    ] = True,
) -> None:
    """Read JSONL {"text": ...} lines on stdin, write one JSONL verdict per line on stdout."""
    settings = cli_settings()
    if not external:
        settings = settings.model_copy(update={"moderation_url": ""})
    moderator = build_moderator(settings)
    # The server's injection check: rules, n-gram model and the sentence-embedding model.
    guard = SafetyGuard(
        injection=InjectionDetector(settings.injection_threshold),
        semantic=semantic_check(RecentVectors(UseEncoder())),
    )

    async def run() -> int:
        try:
            return await _check_lines(sys.stdin, sys.stdout, moderator, guard)
        finally:
            await moderator.close()

    bad = asyncio.run(run())
    if bad:
        raise fail(f'{bad} line(s) skipped: each must be a JSON object with a string "text"', 1)
