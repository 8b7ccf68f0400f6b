"""Looking up dotted paths, substituting ``$path`` arguments and evaluating branch conditions. Pure."""

from __future__ import annotations

from typing import Any

_MISSING = object()


def lookup(path: str, context: dict[str, Any]) -> Any:
    """``order.status`` -> ``context["order"]["status"]``; a missing part gives ``None``."""
    value: Any = context
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def substitute(args: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """Replace string values that start with ``$`` by the value at that path."""
    out: dict[str, Any] = {}
    for key, value in args.items():
        if isinstance(value, str) and value.startswith("$"):
            out[key] = lookup(value[1:], context)
        elif isinstance(value, dict):
            out[key] = substitute(value, context)
        else:
            out[key] = value
    return out


def _compare(actual: Any, expected: Any) -> bool:
    if isinstance(expected, list):
        return actual in expected
    if isinstance(expected, dict):
        return all(_operator(op, actual, operand) for op, operand in expected.items())
    return bool(actual == expected)


def _operator(op: str, actual: Any, operand: Any) -> bool:
    if op == "exists":
        return (actual is not None) == bool(operand)
    if op == "in":
        return actual in operand
    if op == "not":
        return not _compare(actual, operand)
    if actual is None:
        return False
    try:
        if op == "lt":
            return bool(actual < operand)
        if op == "lte":
            return bool(actual <= operand)
        if op == "gt":
            return bool(actual > operand)
        if op == "gte":
            return bool(actual >= operand)
    except TypeError:
        return False
    raise ValueError(f"unknown condition operator {op!r}")


def evaluate(condition: dict[str, Any], context: dict[str, Any]) -> bool:
    """All ``path: expected`` pairs must hold. ``expected`` is a value, a list (membership) or operators."""
    return all(_compare(lookup(path, context), expected) for path, expected in condition.items())
