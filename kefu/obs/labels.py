"""Label values of the metrics, bounded: a value outside a known set is reported as ``other``.

A label value that a client can choose (a channel name, a URL, a method) or that grows with traffic (ids)
would give Prometheus one time series per value; every label here maps onto a small fixed set instead.
"""

from __future__ import annotations

OTHER = "other"

# The stages the pipeline times (kefu.core.pipeline), plus those derived from a turn's records:
# retrieval (knowledge-search tool calls) and llm_first_token (the reply writer's time to first token).
STAGES = frozenset(
    {
        "guard",
        "nlu",
        "intent_llm",
        "dialogue",
        "tools",
        "retrieval",
        "respond",
        "llm_first_token",
        "llm",
        "store",
        "total",
    }
)
# Channels kefu's adapters use; a client-chosen "channel" outside them counts as "other".
CHANNELS = frozenset(
    {"web", "app", "widget", "ws", "wechat", "phone", "sms", "email", "webhook", "kafka", "openai", "cli", "api"}
)
TURN_OUTCOMES = frozenset({"bot", "closed", "agent", "handoff", "replayed"})
GUARD_DIRECTIONS = frozenset({"in", "out"})
GUARD_ACTIONS = frozenset({"allow", "flag", "block", "handoff"})
PII_TYPES = frozenset({"PHONE", "EMAIL", "ID_CARD", "BANK_CARD", "IP", "ADDRESS", "NAME"})
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
VARIANTS = frozenset({"stable", "canary", "local", "none"})
ABSTENTION_SOURCES = frozenset({"flow", "llm"})
# Handover reasons the code itself gives; a pack's flows add their own (bounded by the pack, see below).
HANDOFF_REASONS = frozenset({"customer_request", "internal_error", "llm_no_answer", "guard", "injection"})
MAX_PACK_HANDOFF_REASONS = 64


def bounded(value: str, known: frozenset[str]) -> str:
    return value if value in known else OTHER


def handoff_reason(reason: str | None, pack_reasons: frozenset[str]) -> str:
    """``reason`` of a handover as a label: the code's own reasons and the pack's declared ones are kept;
    the composite ones name their kind ("moderation:self_harm" -> "moderation", "orders:ask" -> "flow_step")."""
    if not reason:
        return OTHER
    if reason in HANDOFF_REASONS or reason in pack_reasons:
        return reason
    if reason.startswith("moderation:"):
        return "moderation"
    if reason.endswith("_not_given"):
        return "slot_not_filled"
    if ":" in reason:
        return "flow_step"
    return OTHER
