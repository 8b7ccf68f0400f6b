"""Runs the tool calls a flow asks for: argument checks, a timeout per call, errors as results."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence

from kefu.actions.schema import ArgumentError, validate
from kefu.core.protocols import Tool, ToolContext
from kefu.core.types import ToolCall, ToolResult

log = logging.getLogger(__name__)


class UnknownTool(KeyError):
    pass


class ToolRunner:
    """Implements ``ActionRunner``. A failing tool becomes ``ok=False`` so the flow can branch on it."""

    def __init__(self, tools: Iterable[Tool], timeout_s: float = 5.0) -> None:
        self.tools = {t.name: t for t in tools}
        self.timeout_s = timeout_s

    async def run(self, calls: Sequence[ToolCall], context: ToolContext) -> list[ToolResult]:
        return list(await asyncio.gather(*(self._run_one(call, context) for call in calls)))

    async def _run_one(self, call: ToolCall, context: ToolContext) -> ToolResult:
        tool = self.tools.get(call.name)
        if tool is None:
            raise UnknownTool(call.name)
        started = time.perf_counter()
        try:
            validate(call.args, tool.parameters)
            async with asyncio.timeout(self.timeout_s):
                data = await tool(call.args, context)
            return ToolResult(call, True, data, None, (time.perf_counter() - started) * 1000)
        except ArgumentError as exc:
            error = f"invalid arguments: {exc}"
        except TimeoutError:
            error = f"timed out after {self.timeout_s:g} s"
        except ToolFailure as exc:
            error = str(exc)
        except Exception as exc:  # a broken backend must not cost the customer their turn
            log.exception("tool %s failed", call.name, extra={"tool": call.name})
            error = f"{type(exc).__name__}: {exc}"
        return ToolResult(call, False, {"found": False}, error, (time.perf_counter() - started) * 1000)


class ToolFailure(RuntimeError):
    """A tool's backend failed (unreachable, bad answer); the customer's turn goes on without it."""
