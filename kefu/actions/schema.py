"""Checks tool arguments against the JSON-schema subset tools declare (object, required, types, enum,
pattern, length and range). Small on purpose: the LLM gateway validates model-written calls with it too."""

from __future__ import annotations

import re
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


class ArgumentError(ValueError):
    """Tool arguments do not match the tool's schema; the message names the argument."""


def validate(args: Any, schema: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(args, dict):
        raise ArgumentError("arguments must be an object")
    properties: dict[str, Any] = schema.get("properties", {})
    for name in schema.get("required", []):
        if args.get(name) in (None, ""):
            raise ArgumentError(f"missing required argument {name!r}")
    if schema.get("additionalProperties") is False:
        extra = sorted(set(args) - set(properties))
        if extra:
            raise ArgumentError(f"unknown argument(s) {', '.join(extra)}")
    for name, value in args.items():
        spec = properties.get(name)
        if spec is None or value is None:
            continue
        _check(name, value, spec)
    return args


def _check(name: str, value: Any, spec: dict[str, Any]) -> None:
    expected = spec.get("type")
    if expected:
        allowed = _TYPES[expected]
        if isinstance(value, bool) and expected in ("integer", "number"):
            raise ArgumentError(f"argument {name!r} must be {expected}, not boolean")
        if not isinstance(value, allowed):
            raise ArgumentError(f"argument {name!r} must be {expected}, got {type(value).__name__}")
    if "enum" in spec and value not in spec["enum"]:
        raise ArgumentError(f"argument {name!r} must be one of {spec['enum']}")
    if isinstance(value, str):
        if "pattern" in spec and not re.fullmatch(spec["pattern"], value):
            raise ArgumentError(f"argument {name!r} does not match {spec['pattern']}")
        if len(value) > spec.get("maxLength", 10_000):
            raise ArgumentError(f"argument {name!r} is longer than {spec['maxLength']} characters")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in spec and value < spec["minimum"]:
            raise ArgumentError(f"argument {name!r} must be >= {spec['minimum']}")
        if "maximum" in spec and value > spec["maximum"]:
            raise ArgumentError(f"argument {name!r} must be <= {spec['maximum']}")
