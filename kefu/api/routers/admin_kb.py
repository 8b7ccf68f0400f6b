"""Operator endpoints for the knowledge base: list, upload, remove and search documents. They share the
library and the ranking with `kefu kb`, and the chat sees a change as soon as the call returns."""

from __future__ import annotations

import base64
import binascii
import tempfile
from pathlib import Path, PurePath
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field, model_validator

from kefu.api.deps import RuntimeDep, require_admin
from kefu.api.errors import ApiError
from kefu.knowledge.base import owner_of
from kefu.knowledge.ingest import FileResult, ingest, read_files
from kefu.knowledge.readers import SUPPORTED_SUFFIXES
from kefu.nlu.language import reply_locale

router = APIRouter(prefix="/admin/kb", tags=["knowledge"], dependencies=[Depends(require_admin)])


class UploadedDocument(BaseModel):
    filename: str = Field(min_length=1, max_length=200, description="Name with its type: returns.md, faq.csv…")
    content: str | None = Field(None, description="The file's text (UTF-8).")
    content_base64: str | None = Field(None, description="The file's bytes, base64 (PDFs, other encodings).")
    id: str | None = Field(None, min_length=1, max_length=200, description="Document id (default: file stem).")
    language: Literal["zh", "en"] | None = None

    @model_validator(mode="after")
    def _one_content(self) -> UploadedDocument:
        if (self.content is None) == (self.content_base64 is None):
            raise ValueError("give exactly one of 'content' and 'content_base64'")
        name = PurePath(self.filename).name
        if name != self.filename or name.startswith("."):
            raise ValueError("'filename' must be a plain file name, without folders")
        if PurePath(name).suffix.lower() not in SUPPORTED_SUFFIXES:
            raise ValueError(f"'filename' must end in one of {', '.join(sorted(SUPPORTED_SUFFIXES))}")
        return self

    def data(self) -> bytes:
        if self.content is not None:
            return self.content.encode("utf-8")
        try:
            return base64.b64decode(self.content_base64 or "", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ApiError(422, "invalid_base64", f"{self.filename}: content_base64 is not valid base64") from exc


class Upload(BaseModel):
    documents: list[UploadedDocument] = Field(min_length=1, max_length=100)


@router.get("/documents")
async def list_documents(runtime: RuntimeDep) -> dict[str, object]:
    docs = await runtime.knowledge.documents()
    return {"documents": [d.as_dict() for d in docs], "revision": runtime.knowledge.revision}


@router.post("/documents")
async def upload_documents(body: Upload, runtime: RuntimeDep) -> dict[str, object]:
    """Add or update documents; unchanged ones are skipped. Each refused file is reported on its own and
    the others still go in; 422 only when every file was refused."""
    names = [d.filename for d in body.documents]
    if len(set(names)) != len(names):
        raise ApiError(422, "duplicate_filename", "each uploaded document needs its own filename")
    kb = runtime.knowledge
    if kb.library is None:
        raise ApiError(409, "no_library", "this server has no knowledge library")
    results: list[FileResult] = []
    with tempfile.TemporaryDirectory(prefix="kefu-kb-") as folder:
        read = []
        for doc in body.documents:
            path = Path(folder) / doc.filename
            path.write_bytes(doc.data())
            ok, refused = read_files(
                [path],
                language=doc.language,
                max_bytes=int(runtime.settings.kb_max_file_mb * 1024 * 1024),
                doc_id=doc.id,
                reserved=kb.reserved_ids(),
            )
            read.extend(ok)
            results.extend(_named(r, doc.filename, folder) for r in refused)
        keys = [(d.id, d.language) for d, _ in read]
        duplicates = {k for k in keys if keys.count(k) > 1}
        if duplicates:
            listed = ", ".join(f"{i} ({lang})" for i, lang in sorted(duplicates))
            raise ApiError(422, "duplicate_document_id", f"two uploads would both be document {listed}")
        saved = await ingest(kb.library, read, kb.encoders_for)
        results.extend(_named(r, PurePath(r.path).name, folder) for r in saved)
    await kb.refresh()
    counts = {s: sum(r.status == s for r in results) for s in ("added", "updated", "unchanged", "error")}
    payload: dict[str, object] = {**counts, "files": [r.as_dict() for r in results], "revision": kb.revision}
    if counts["error"] == len(results):
        raise ApiError(422, "documents_refused", "; ".join(r.error or "" for r in results))
    return payload


def _named(result: FileResult, filename: str, folder: str) -> FileResult:
    """Results name the uploaded file, never the server's temporary folder."""
    error = result.error.replace(f"{folder}/", "") if result.error else None
    return FileResult(filename, result.status, result.id, result.language, result.version, result.chunks, error)


@router.delete("/documents/{doc_id}")
async def remove_document(
    doc_id: str, runtime: RuntimeDep, language: Annotated[Literal["zh", "en"] | None, Query()] = None
) -> dict[str, object]:
    kb = runtime.knowledge
    removed = await kb.library.remove(doc_id, language) if kb.library is not None else []
    if not removed:
        owner = owner_of(kb.reserved_ids(), doc_id, language)
        if owner:
            raise ApiError(409, "pack_document", f"{doc_id!r} belongs to {owner}; edit the pack to change it")
        raise ApiError(404, "document_not_found", f"no document {doc_id!r}" + (f" in {language}" if language else ""))
    await kb.refresh()
    return {"removed": [d.as_dict() for d in removed], "revision": kb.revision}


@router.get("/search")
async def search(
    runtime: RuntimeDep,
    q: Annotated[str, Query(min_length=1, max_length=4000)],
    lang: Annotated[Literal["zh", "en"] | None, Query()] = None,
    k: Annotated[int, Query(ge=1, le=50)] = 5,
) -> dict[str, object]:
    """The ranking the chat uses, with each hit's confidence and whether it clears the answer threshold."""
    if not q.strip():
        raise ApiError(422, "empty_query", "q is blank")
    language = lang or reply_locale(q, runtime.settings.default_locale)
    hits = await runtime.knowledge.search_async(q, language, k)
    threshold = runtime.settings.knowledge_min_score
    return {
        "query": q,
        "language": language,
        "threshold": threshold,
        "hits": [
            {
                "id": h.chunk.doc_id,
                "title": h.chunk.title,
                "section": h.chunk.heading_text,
                "score": round(h.score, 4),
                "answers": h.score >= threshold,
                "text": h.chunk.text,
            }
            for h in hits
        ],
    }
