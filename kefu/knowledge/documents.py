"""Knowledge documents (Markdown with YAML front matter) and their chunks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from kefu.core.types import Locale

_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


class DocumentError(ValueError):
    """A knowledge file cannot be used; the message names the file."""


@dataclass(frozen=True, slots=True)
class FaqEntry:
    question: str
    answer: str


@dataclass(frozen=True, slots=True)
class Document:
    """One knowledge document. ``body`` is Markdown-style text ('#' headings, paragraphs separated by blank
    lines) whatever the file's format; an FAQ table has ``kind`` "faq" and its rows in ``faq``."""

    id: str
    language: Locale
    title: str
    body: str
    source: str
    tags: tuple[str, ...] = ()
    kind: str = "article"  # "article" or "faq"
    faq: tuple[FaqEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class Chunk:
    doc_id: str
    language: Locale
    title: str  # the document's title
    path: tuple[str, ...]  # headings above this chunk
    text: str
    tags: tuple[str, ...] = ()  # the document's tags: words customers use that the prose may not
    position: int = 0  # the chunk's place in its document

    @property
    def heading_text(self) -> str:
        return " / ".join((self.title, *self.path[1:])) if self.path else self.title


def load_markdown(path: Path, language: Locale) -> Document:
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"{path}: not UTF-8 text") from exc
    return parse_markdown(raw, str(path), language, path.stem)


def parse_markdown(text: str, source: str, language: Locale, default_id: str) -> Document:
    """Markdown with optional YAML front matter (``id``, ``title``, ``tags``); ``default_id`` when it has no id."""
    meta: dict[str, object] = {}
    match = _FRONT_MATTER.match(text)
    if match:
        try:
            loaded = yaml.safe_load(match.group(1)) or {}
        except yaml.YAMLError as exc:
            raise DocumentError(f"{source}: bad front matter: {exc}") from exc
        if not isinstance(loaded, dict):
            raise DocumentError(f"{source}: front matter must be a mapping")
        meta = loaded
        text = text[match.end() :]
    body = text.strip()
    if not body:
        raise DocumentError(f"{source}: empty document")
    title = str(meta.get("title") or _first_heading(body) or default_id)
    tags = meta.get("tags") or []
    return Document(
        id=str(meta.get("id") or default_id),
        language=language,
        title=title,
        body=body,
        source=source,
        tags=tuple(str(t) for t in tags) if isinstance(tags, list) else (),
    )


def _first_heading(body: str) -> str | None:
    for line in body.splitlines():
        m = _HEADING.match(line)
        if m:
            return m.group(2)
    return None


def load_folder(folder: Path, language: Locale) -> list[Document]:
    docs = [load_markdown(p, language) for p in sorted(folder.glob("*.md"))]
    ids = [d.id for d in docs]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise DocumentError(f"{folder}: duplicate document id(s) {', '.join(dupes)}")
    return docs
