"""Reply templates per language with ``{path.to.value}`` placeholders. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from kefu.core.types import Locale
from kefu.dialogue.values import lookup

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][\w.]*)\}")


class TemplateError(ValueError):
    pass


def load_templates(folder: Path, languages: list[str]) -> dict[str, dict[str, str]]:
    """``folder/<lang>.yaml`` for each language: a mapping of template keys to text."""
    out: dict[str, dict[str, str]] = {}
    for language in languages:
        path = folder / f"{language}.yaml"
        if not path.is_file():
            raise TemplateError(f"{path}: missing (every pack language needs its templates)")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise TemplateError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise TemplateError(f"{path}: must map template keys to strings")
        out[language] = {str(k): v.rstrip("\n") for k, v in data.items()}
    return out


def _display(value: Any, locale: Locale) -> str:
    if value is None:
        return ""
    if isinstance(value, Mapping):
        if locale in value:
            return _display(value[locale], locale)
        return ", ".join(f"{k}: {_display(v, locale)}" for k, v in value.items())
    if isinstance(value, list):
        return ("、" if locale == "zh" else ", ").join(_display(v, locale) for v in value)
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))
    if isinstance(value, bool):
        return ("是" if value else "否") if locale == "zh" else ("yes" if value else "no")
    return str(value)


def fill(template: str, values: Mapping[str, Any], locale: Locale) -> str:
    """Replace each ``{a.b}`` by the value at that path, in the locale's language when it has one."""
    return _PLACEHOLDER.sub(lambda m: _display(lookup(m.group(1), dict(values)), locale), template)
