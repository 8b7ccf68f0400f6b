"""The responder that needs no LLM: pack templates, filled with flow values, with knowledge citations."""

from __future__ import annotations

from typing import Any

from kefu.core.types import Citation, Decision, Locale, Parse, Reply
from kefu.respond.templates import fill


class TemplateResponder:
    """Implements ``Responder``."""

    def __init__(self, templates: dict[str, dict[str, str]], default_locale: Locale = "zh") -> None:
        self.templates = templates
        self.default_locale = default_locale

    def text(self, key: str, locale: Locale, values: dict[str, Any] | None = None) -> str:
        table = self.templates.get(locale) or self.templates[self.default_locale]
        template = table.get(key)
        if template is None:
            raise KeyError(f"no template {key!r} for locale {locale!r}")
        return fill(template, values or {}, locale)

    def render(self, decision: Decision, parse: Parse, locale: Locale) -> Reply:
        parts: list[str] = []
        citations: list[Citation] = []
        for utterance in decision.utterances:
            parts.append(self.text(utterance.template, locale, utterance.values))
            cited = utterance.values.get("_cite")
            if isinstance(cited, dict) and cited.get("id"):
                citation = Citation(str(cited["id"]), str(cited.get("title") or cited["id"]))
                if citation not in citations:
                    citations.append(citation)
        quick = tuple(self.text(key, locale) for key in decision.quick_replies)
        return Reply(text="\n".join(p for p in parts if p), citations=tuple(citations), quick_replies=quick)
