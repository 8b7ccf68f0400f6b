"""Canned replies for the agent console: pack data (``<pack>/canned.yaml``), a title and a text per language.

    order_checking:
      title: {en: "Checking the order", zh: "正在查询订单"}
      text: {en: "Let me check that order for you.", zh: "我来帮您查一下这个订单。"}

A pack without the file has none. A malformed file is refused at start-up with the entry named.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kefu.core.types import Locale

FILENAME = "canned.yaml"


class CannedError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class CannedReply:
    id: str
    title: dict[str, str]
    text: dict[str, str]

    def for_locale(self, locale: Locale) -> dict[str, str] | None:
        if locale not in self.text:
            return None
        return {"id": self.id, "title": self.title.get(locale) or self.id, "text": self.text[locale]}


def _texts(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not value or not all(isinstance(v, str) and v.strip() for v in value.values()):
        raise CannedError(f"{where}: must map languages (zh, en) to non-empty text")
    return {str(k): v.strip() for k, v in value.items()}


def load_canned(pack_root: Path) -> tuple[CannedReply, ...]:
    path = pack_root / FILENAME
    if not path.is_file():
        return ()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise CannedError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise CannedError(f"{path}: must map reply ids to {{title, text}}")
    replies = []
    for key, entry in data.items():
        where = f"{path}: {key}"
        if not isinstance(entry, dict):
            raise CannedError(f"{where}: must have title and text")
        text = _texts(entry.get("text"), f"{where}: text")
        title = _texts(entry.get("title") or {k: str(key) for k in text}, f"{where}: title")
        replies.append(CannedReply(str(key), title, text))
    return tuple(replies)


def canned_for(replies: tuple[CannedReply, ...], locale: Locale) -> list[dict[str, str]]:
    return [shown for reply in replies if (shown := reply.for_locale(locale)) is not None]
