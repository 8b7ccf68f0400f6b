"""The knowledge library: operator-added documents, stored encoded in the database (SQLite or PostgreSQL),
so that a server start, another server process and the command line all see the same documents without
encoding them again. Every change bumps one revision number, which the servers poll."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kefu.knowledge.encoding import EncodedDocument
from kefu.store.models import KnowledgeDocumentRow, KnowledgeRevisionRow


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    id: str
    language: str
    title: str
    source: str
    kind: str
    version: int
    sha256: str
    chunks: int
    updated_at: str
    origin: str = "library"  # or "pack": bundled with the pack, changed by editing the pack

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "language": self.language,
            "title": self.title,
            "source": self.source,
            "kind": self.kind,
            "version": self.version,
            "sha256": self.sha256,
            "chunks": self.chunks,
            "updated_at": self.updated_at,
            "origin": self.origin,
        }


_INFO_COLUMNS = [c for c in KnowledgeDocumentRow.__table__.columns if c.name != "data"]


def _info(r: Any) -> DocumentInfo:
    return DocumentInfo(
        r.id, r.language, r.title, r.source, r.kind, r.version, r.sha256, r.chunk_count, r.updated_at.isoformat()
    )


class KnowledgeLibrary:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def revision(self) -> int:
        async with self.engine.connect() as conn:
            value = await conn.scalar(select(KnowledgeRevisionRow.revision).where(KnowledgeRevisionRow.id == 1))
        return int(value or 0)

    async def documents(self) -> list[DocumentInfo]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(*_INFO_COLUMNS).order_by(KnowledgeDocumentRow.id, KnowledgeDocumentRow.language)
                )
            ).all()
        return [_info(r) for r in rows]

    async def encoded(self) -> tuple[int, list[EncodedDocument]]:
        """The revision and every document, read in one transaction so the two agree."""
        async with self.engine.begin() as conn:
            revision = await conn.scalar(select(KnowledgeRevisionRow.revision).where(KnowledgeRevisionRow.id == 1))
            blobs = (await conn.scalars(select(KnowledgeDocumentRow.data))).all()
        return int(revision or 0), [EncodedDocument.from_bytes(b) for b in blobs]

    async def save(self, doc: EncodedDocument, sha256: str, encoders: list[str]) -> DocumentInfo:
        """Add a document or replace it with a new version (one transaction, with the revision bump)."""
        now = datetime.now(UTC)
        data = doc.to_bytes()
        async with self.engine.begin() as conn:
            current = (
                await conn.execute(
                    select(KnowledgeDocumentRow.version, KnowledgeDocumentRow.created_at).where(
                        KnowledgeDocumentRow.id == doc.doc_id, KnowledgeDocumentRow.language == doc.language
                    )
                )
            ).first()
            values = {
                "title": doc.title[:500],
                "source": doc.source[:1000],
                "kind": doc.kind,
                "sha256": sha256,
                "chunk_count": len(doc.chunks),
                "encoders": ",".join(sorted(encoders)),
                "data": data,
                "updated_at": now,
            }
            if current is None:
                version = 1
                await conn.execute(
                    insert(KnowledgeDocumentRow).values(
                        id=doc.doc_id, language=doc.language, version=version, created_at=now, **values
                    )
                )
            else:
                version = int(current.version) + 1
                await conn.execute(
                    update(KnowledgeDocumentRow)
                    .where(KnowledgeDocumentRow.id == doc.doc_id, KnowledgeDocumentRow.language == doc.language)
                    .values(version=version, **values)
                )
            await self._bump(conn)
        return DocumentInfo(
            doc.doc_id, doc.language, doc.title, doc.source, doc.kind, version, sha256, len(doc.chunks), now.isoformat()
        )

    async def remove(self, doc_id: str, language: str | None = None) -> list[DocumentInfo]:
        """Remove a document (in every language unless one is named); returns what was removed."""
        condition = KnowledgeDocumentRow.id == doc_id
        if language is not None:
            condition = condition & (KnowledgeDocumentRow.language == language)
        async with self.engine.begin() as conn:
            removed = [_info(r) for r in (await conn.execute(select(*_INFO_COLUMNS).where(condition))).all()]
            if removed:
                await conn.execute(delete(KnowledgeDocumentRow).where(condition))
                await self._bump(conn)
        return removed

    async def fingerprints(self) -> dict[tuple[str, str], str]:
        """(id, language) -> sha256 of what was ingested, to skip unchanged files."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(KnowledgeDocumentRow.id, KnowledgeDocumentRow.language, KnowledgeDocumentRow.sha256)
            )
            return {(r.id, r.language): r.sha256 for r in rows}

    @staticmethod
    async def _bump(conn: AsyncConnection) -> None:
        await conn.execute(
            update(KnowledgeRevisionRow)
            .where(KnowledgeRevisionRow.id == 1)
            .values(revision=KnowledgeRevisionRow.revision + 1)
        )
