"""The terminal chat: against a server over HTTP, or with an in-process pipeline."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from rich.console import Console

from kefu.config import Settings
from kefu.core.types import InboundMessage

console = Console()


def _show(data: dict[str, Any]) -> None:
    reply = data["reply"]
    console.print(
        f"[bold green]kefu[/] [dim]({data['intent']['name']} {data['intent']['confidence']:.2f}, {data['state']})[/]"
    )
    console.print(reply["text"] or "[dim](a human agent has this conversation)[/]")
    for citation in reply.get("citations", []):
        console.print(f"  [dim]source: {citation['title']} ({citation['id']})[/]")
    if reply.get("quick_replies"):
        console.print("  [cyan]" + " | ".join(reply["quick_replies"]) + "[/]")


def _read() -> str | None:
    try:
        return console.input("[bold]you[/] > ")
    except EOFError:
        return None


async def run(
    url: str | None,
    conversation: str | None,
    locale: str | None,
    api_key: str | None,
    settings_factory: Callable[..., Settings],
) -> None:
    conversation_id = conversation or f"cli-{uuid.uuid4().hex[:12]}"
    console.print(f"[dim]conversation {conversation_id}; 'exit' to leave[/]")
    if url:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        async with httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=30) as client:
            while (text := _read()) is not None and text.strip() not in ("exit", "quit"):
                if not text.strip():
                    continue
                body: dict[str, Any] = {"text": text, "channel": "cli"}
                if locale:
                    body["locale"] = locale
                response = await client.post(f"/v1/conversations/{conversation_id}/messages", json=body)
                data = response.json()
                if response.status_code != 200:
                    console.print(f"[red]{data['error']['code']}:[/] {data['error']['message']}")
                    continue
                _show(data)
        return

    from kefu.runtime import build_runtime

    settings = settings_factory()
    with console.status("loading kefu"):
        runtime = await build_runtime(settings)
    try:
        while (text := _read()) is not None and text.strip() not in ("exit", "quit"):
            if not text.strip():
                continue
            message = InboundMessage(
                conversation_id,
                uuid.uuid4().hex,
                text,
                datetime.now(UTC),
                channel="cli",
                locale=locale,  # type: ignore[arg-type]
            )
            result = await runtime.pipeline.handle(message)
            _show(result.to_dict())
    finally:
        await runtime.close()
