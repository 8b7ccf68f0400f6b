"""How each step of a turn is written into the event log: one builder per kind of event payload, shared by
the pipeline and the reply writer so that an event means the same thing whoever records it."""

from __future__ import annotations

from typing import Any

from kefu.core.types import Event, GuardVerdict, ModelInfo, Parse, ToolResult


def model_payload(model: ModelInfo | None) -> dict[str, str] | None:
    return None if model is None else {"id": model.id, "version": model.version, "variant": model.variant}


def parse_payload(parse: Parse) -> dict[str, object]:
    return {
        "language": parse.language,
        "intent": parse.intent.name,
        "confidence": round(parse.intent.confidence, 4),
        "ranking": [[s.name, round(s.confidence, 4)] for s in parse.ranking[:5]],
        "entities": [{"type": e.type, "value": e.value, "start": e.start, "end": e.end} for e in parse.entities],
        "act": parse.act,
    }


def guard_payload(verdict: GuardVerdict, *, inbound: bool) -> dict[str, object]:
    payload: dict[str, object] = {
        "pii": [s.type for s in verdict.pii],
        "flagged": verdict.flagged,
        "categories": list(verdict.categories),
        "action": verdict.action,
    }
    if verdict.reason:
        payload["reason"] = verdict.reason
    if inbound:
        payload["injection"] = verdict.injection
        payload["injection_score"] = verdict.injection_score
        if verdict.injection_categories:
            payload["injection_categories"] = list(verdict.injection_categories)
    else:
        payload["leak"] = verdict.leak
    if verdict.detail:
        payload["detail"] = verdict.detail
    # Marked for a person to look at: anything the policy did not simply allow.
    payload["review"] = verdict.action != "allow" or verdict.flagged or verdict.injection
    return payload


def tool_event(result: ToolResult, message_id: str | None = None, *, by: str | None = None) -> Event:
    """A tool call and its result; ``by`` is "model" when a model asked for the call (else a flow did)."""
    payload: dict[str, Any] = {"tool": result.call.name, "args": result.call.args}
    if by is not None:
        payload["by"] = by
    payload.update(ok=result.ok, error=result.error, result=result.data, ms=round(result.duration_ms, 2))
    return Event("tool_called", payload, message_id)
