"""Ingest files into the knowledge library: read, skip what has not changed, encode the rest in batches,
and save each document in its own transaction. A bad file gets its own error; the others still go in."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kefu.core.types import Locale
from kefu.knowledge.chunking import chunk_document
from kefu.knowledge.documents import Document, DocumentError
from kefu.knowledge.encoding import encode_documents
from kefu.knowledge.library import KnowledgeLibrary
from kefu.knowledge.readers import SUPPORTED_SUFFIXES, read_document
from kefu.nlu.encoder import SentenceEncoder

_SAVE_EVERY = 32


@dataclass(frozen=True, slots=True)
class FileResult:
    path: str
    status: str  # "added", "updated", "unchanged" or "error"
    id: str | None = None
    language: str | None = None
    version: int | None = None
    chunks: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__slots__}


def expand(paths: Iterable[Path]) -> tuple[list[Path], list[FileResult]]:
    """Files named, and supported files under folders named (recursively, hidden ones skipped)."""
    files: list[Path] = []
    errors: list[FileResult] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file()
                    and p.suffix.lower() in SUPPORTED_SUFFIXES
                    and not any(part.startswith(".") for part in p.relative_to(path).parts)
                )
            )
        elif path.is_file():
            files.append(path)
        else:
            errors.append(FileResult(str(path), "error", error=f"{path}: no such file or folder"))
    return files, errors


def read_files(
    files: Sequence[Path],
    *,
    language: Locale | None,
    max_bytes: int,
    doc_id: str | None = None,
    reserved: Mapping[tuple[str, str], str] | None = None,
) -> tuple[list[tuple[Document, str]], list[FileResult]]:
    """Read and check every file; returns (document, sha256) pairs and per-file errors. ``reserved`` maps
    (id, language) to the owner of ids that may not be used (the pack's own articles)."""
    read: list[tuple[Document, str]] = []
    errors: list[FileResult] = []
    seen: dict[tuple[str, str], Path] = {}
    for path in files:
        try:
            doc = read_document(path, language=language, max_bytes=max_bytes, doc_id=doc_id)
            if not chunk_document(doc):
                raise DocumentError(f"{path}: no text under its headings")
        except DocumentError as exc:
            errors.append(FileResult(str(path), "error", error=str(exc)))
            continue
        except OSError as exc:
            errors.append(FileResult(str(path), "error", error=f"{path}: cannot read: {exc.strerror or exc}"))
            continue
        key = (doc.id, doc.language)
        if key in seen:
            message = f"{path}: duplicate document id {doc.id!r} ({doc.language}), also used by {seen[key]}"
            errors.append(FileResult(str(path), "error", doc.id, doc.language, error=message))
            continue
        if reserved and key in reserved:
            message = f"{path}: document id {doc.id!r} ({doc.language}) belongs to {reserved[key]}; choose another id"
            errors.append(FileResult(str(path), "error", doc.id, doc.language, error=message))
            continue
        seen[key] = path
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        read.append((doc, sha))
    return read, errors


async def ingest(
    library: KnowledgeLibrary,
    documents: Sequence[tuple[Document, str]],
    encoders_for: Callable[[str], Mapping[str, SentenceEncoder]],
    progress: Callable[[int], None] | None = None,
) -> list[FileResult]:
    """Save the documents whose content changed (by sha256) and report every one."""
    known = await library.fingerprints()
    results: list[FileResult] = []
    changed: list[tuple[Document, str]] = []
    for doc, sha in documents:
        if known.get((doc.id, doc.language)) == sha:
            results.append(FileResult(doc.source, "unchanged", doc.id, doc.language))
        else:
            changed.append((doc, sha))
    for language in sorted({d.language for d, _ in changed}):
        batch = [(d, s) for d, s in changed if d.language == language]
        encoders = encoders_for(language)
        for start in range(0, len(batch), _SAVE_EVERY):  # an interrupted ingest keeps what it finished
            part = batch[start : start + _SAVE_EVERY]
            # In a worker thread: a server keeps answering customers while it encodes an upload.
            encoded = await asyncio.to_thread(encode_documents, [d for d, _ in part], encoders, progress)
            for (doc, sha), enc in zip(part, encoded, strict=True):
                info = await library.save(enc, sha, list(encoders))
                status = "added" if info.version == 1 else "updated"
                results.append(FileResult(doc.source, status, doc.id, doc.language, info.version, info.chunks))
    return results
