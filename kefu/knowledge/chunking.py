"""Chunking: sections under headings, packed paragraph by paragraph, long paragraphs cut at sentences.

Every chunk carries its title path, so a chunk that says "7 days." still reads as "Returns / Window".
FAQ entries stay whole: one chunk each, the question as its heading.
"""

from __future__ import annotations

import re

from kefu.core.types import Locale
from kefu.knowledge.answer import split_sentences
from kefu.knowledge.documents import Chunk, Document

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
# Characters per chunk: about 120-150 tokens for English, the length the dense encoders read best;
# Chinese carries about twice the meaning per character.
MAX_CHARS: dict[Locale, int] = {"en": 600, "zh": 300}


def chunk_document(doc: Document, max_chars: int | None = None) -> list[Chunk]:
    limit = max_chars or MAX_CHARS[doc.language]
    if doc.kind == "faq":
        return [
            Chunk(doc.id, doc.language, doc.title, (doc.title, entry.question), entry.answer, doc.tags, i)
            for i, entry in enumerate(doc.faq)
        ]
    chunks: list[Chunk] = []
    for path, text in _sections(doc):
        for piece in _pack(_PARAGRAPH_BREAK.split(text), limit, doc.language):
            chunks.append(Chunk(doc.id, doc.language, doc.title, path, piece, doc.tags, len(chunks)))
    return chunks


def _sections(doc: Document) -> list[tuple[tuple[str, ...], str]]:
    """(heading path, text) per section; text before any heading belongs to the title."""
    sections: list[tuple[tuple[str, ...], str]] = []
    path: list[str] = []
    lines: list[str] = []

    def flush() -> None:
        text = "\n".join(lines).strip()
        if text:
            sections.append((tuple(path), text))
        lines.clear()

    for line in doc.body.splitlines():
        match = _HEADING.match(line)
        if match:
            flush()
            level = len(match.group(1))
            del path[level - 1 :]
            path.extend([""] * (level - 1 - len(path)))
            path.append(match.group(2))
        else:
            lines.append(line)
    flush()
    return sections


def _pack(paragraphs: list[str], limit: int, language: Locale) -> list[str]:
    """Whole paragraphs while they fit; a paragraph over the limit is cut between sentences, and a
    sentence over the limit (a flattened table, a run-on list) at the limit itself."""
    joiner = "" if language == "zh" else " "
    pieces: list[str] = []
    current = ""
    for paragraph in (p.strip() for p in paragraphs):
        if not paragraph:
            continue
        units = [paragraph] if len(paragraph) <= limit else _sentences_within(paragraph, limit)
        for unit in units:
            separator = "\n\n" if unit is paragraph else joiner
            if current and len(current) + len(separator) + len(unit) > limit:
                pieces.append(current)
                current = ""
            current = f"{current}{separator}{unit}" if current else unit
        if units and units[-1] is not paragraph:
            pieces.append(current)  # a cut paragraph ends its chunk: the next paragraph starts fresh
            current = ""
    if current:
        pieces.append(current)
    return pieces


def _sentences_within(paragraph: str, limit: int) -> list[str]:
    out: list[str] = []
    for sentence in split_sentences(paragraph):
        while len(sentence) > limit:
            out.append(sentence[:limit])
            sentence = sentence[limit:]
        if sentence:
            out.append(sentence)
    return out
