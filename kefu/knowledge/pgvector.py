"""The pgvector dense store (``KEFU_KB_INDEX=pgvector``): every chunk, title and opening vector in the
PostgreSQL database, searched through HNSW indexes (cosine), for knowledge bases too large to keep in
each server process.

The tables are a copy derived from the pack's articles and the library (whose encoded documents stay the
source of truth): ``sync`` makes them match a snapshot, in one transaction under an advisory lock, so
any number of processes can call it and searches see either the old or the new state. Per language and
encoder, one table of chunk vectors and one of document vectors (title, opening), each column with its
HNSW index; ``kb_pgv_docs`` records which version (a fingerprint of its vectors) of each document is in.

A search is one round trip: the nearest chunks, titles and openings of each encoder, plus the documents
BM25 found, then the exact similarity of every vector of those documents (``index.search_with`` fuses
them exactly as the in-memory index does).
"""

from __future__ import annotations

import hashlib
import logging
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np

from kefu.knowledge.encoding import EncodedDocument
from kefu.knowledge.fusion import KINDS
from kefu.knowledge.index import DenseHits, Key
from kefu.nlu.encoder import Vectors

log = logging.getLogger(__name__)
_LOCK = 0x6B65_6675_6B62  # advisory lock key: "kefukb"
_REBUILD_ROWS = 2000  # loading more rows than this into an empty table: build its HNSW index afterwards


class PgVectorError(RuntimeError):
    """The database cannot serve as a pgvector store; the message says what to do."""


def asyncpg_dsn(database_url: str) -> str:
    return re.sub(r"^postgresql\+asyncpg://", "postgresql://", database_url)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:24]


def _encode_vector(value: Any) -> bytes:
    array = np.asarray(value, dtype=">f4").ravel()
    return struct.pack(">HH", len(array), 0) + array.tobytes()


def _decode_vector(data: bytes) -> Vectors:
    (dim,) = struct.unpack_from(">H", data)
    return np.frombuffer(data, dtype=">f4", count=dim, offset=4).astype(np.float32)


def fingerprint(doc: EncodedDocument) -> str:
    """Changes whenever anything stored for the document changes (its chunks or any of its vectors)."""
    digest = hashlib.sha256(f"{doc.doc_id}\0{doc.language}\0{len(doc.chunks)}".encode())
    for name in sorted(doc.vectors):
        digest.update(name.encode())
        for array in (doc.vectors[name], doc.title_vectors[name], doc.lead_vectors[name]):
            digest.update(np.ascontiguousarray(array, dtype=np.float32).tobytes())
    return digest.hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Tables:
    chunk: str
    doc: str
    dimension: int

    @classmethod
    def of(cls, language: str, encoder: str, dimension: int) -> Tables:
        suffix = f"{_slug(language)}_{_slug(encoder)}_{dimension}"
        return cls(f"kb_pgv_chunk_{suffix}", f"kb_pgv_doc_{suffix}", dimension)


@dataclass(frozen=True, slots=True)
class SyncReport:
    added: int  # documents written (new or changed)
    removed: int  # documents deleted (gone or changed)
    rows: int  # vectors written


class PgVectorStore:
    def __init__(self, pool: Any, candidates: int, ef_search: int) -> None:
        self._pool = pool
        self.candidates = candidates
        self.ef_search = ef_search
        self._tables: dict[str, dict[str, Tables]] = {}  # language -> encoder -> tables
        self._sql: dict[tuple[str, tuple[str, ...]], tuple[str, str]] = {}

    @classmethod
    async def open(
        cls, database_url: str, *, candidates: int = 32, ef_search: int | None = None, max_connections: int = 4
    ) -> PgVectorStore:
        """Connects, creates the extension (needs a superuser the first time) and the bookkeeping table.
        ``candidates``: documents taken from each title and opening index per encoder (twice as many
        chunks); 32 gave the in-memory ranking's top 10 on every WixQA question at 10,000 chunks."""
        # HNSW returns at most ef_search rows per scan, and finds the true nearest more often the larger it is.
        ef_search = max(ef_search or 0, 2 * candidates)
        dsn = asyncpg_dsn(database_url)
        try:
            conn = await asyncpg.connect(dsn)
        except (OSError, asyncpg.PostgresError) as exc:
            raise PgVectorError(f"KEFU_KB_INDEX=pgvector: cannot connect to the database: {exc}") from exc
        try:
            try:
                await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            except asyncpg.PostgresError as exc:
                raise PgVectorError(
                    "KEFU_KB_INDEX=pgvector: the database has no usable pgvector extension "
                    f"({exc}). Install it on the server (Debian: postgresql-<major>-pgvector, `make pgvector` "
                    "here) and run CREATE EXTENSION vector as a superuser, or use KEFU_KB_INDEX=numpy."
                ) from exc
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS kb_pgv_docs (language text NOT NULL, doc_id text NOT NULL,"
                " fingerprint text NOT NULL, PRIMARY KEY (language, doc_id))"
            )
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS kb_pgv_tables (language text NOT NULL, encoder text NOT NULL,"
                " dimension int NOT NULL, PRIMARY KEY (language, encoder, dimension))"
            )
            schema = await conn.fetchval(
                "SELECT n.nspname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
                " WHERE t.typname = 'vector'"
            )
        finally:
            await conn.close()

        async def setup(connection: Any) -> None:
            await connection.set_type_codec(
                "vector", schema=schema, encoder=_encode_vector, decoder=_decode_vector, format="binary"
            )
            await connection.execute(f"SET hnsw.ef_search = {int(ef_search)}")
            # This pool only runs index lookups: parallel workers cost 5-7 ms to start, and on a few
            # thousand titles the planner prefers a scan (2-6 ms) to the HNSW index (under 1 ms).
            await connection.execute("SET max_parallel_workers_per_gather = 0")
            await connection.execute("SET enable_seqscan = off")

        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=max_connections, init=setup)
        return cls(pool, candidates, ef_search)

    async def close(self) -> None:
        await self._pool.close()

    async def sync(self, docs: Sequence[EncodedDocument]) -> SyncReport:
        """Make the tables hold exactly ``docs`` (the snapshot an index is built from)."""
        wanted = {(d.language, d.doc_id): d for d in docs if d.chunks}
        prints = {key: fingerprint(d) for key, d in wanted.items()}
        layout: dict[str, dict[str, Tables]] = {}
        for doc in wanted.values():
            for name, vectors in doc.vectors.items():
                layout.setdefault(doc.language, {})[name] = Tables.of(doc.language, name, int(vectors.shape[1]))
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
            await conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
            existing = {
                (r["language"], r["encoder"], r["dimension"]) for r in await conn.fetch("SELECT * FROM kb_pgv_tables")
            }
            for language, by_encoder in layout.items():
                for name, tables in by_encoder.items():
                    if (language, name, tables.dimension) not in existing:
                        await self._create(conn, tables)
                        await conn.execute(
                            "INSERT INTO kb_pgv_tables VALUES ($1, $2, $3)", language, name, tables.dimension
                        )
                        existing.add((language, name, tables.dimension))
            stored = {
                (r["language"], r["doc_id"]): r["fingerprint"] for r in await conn.fetch("SELECT * FROM kb_pgv_docs")
            }
            stale = [key for key, value in stored.items() if prints.get(key) != value]
            fresh = [key for key in wanted if stored.get(key) != prints[key]]
            all_tables = [(lg, Tables.of(lg, enc, dim)) for lg, enc, dim in existing]
            for language in {lg for lg, _ in stale}:
                ids = [i for lg, i in stale if lg == language]
                for _, tables in (t for t in all_tables if t[0] == language):
                    await conn.execute(f"DELETE FROM {tables.chunk} WHERE doc_id = ANY($1::text[])", ids)
                    await conn.execute(f"DELETE FROM {tables.doc} WHERE doc_id = ANY($1::text[])", ids)
                await conn.execute(
                    "DELETE FROM kb_pgv_docs WHERE language = $1 AND doc_id = ANY($2::text[])", language, ids
                )
            rows = 0
            for language, by_encoder in layout.items():
                adding = [wanted[key] for key in fresh if key[0] == language]
                if adding:
                    rows += await self._load(conn, by_encoder, adding)
            await conn.executemany(
                "INSERT INTO kb_pgv_docs VALUES ($1, $2, $3)", [(lg, i, prints[(lg, i)]) for lg, i in fresh]
            )
        self._tables = layout
        self._sql.clear()
        return SyncReport(len(fresh), len(stale), rows)

    @staticmethod
    async def _create(conn: Any, tables: Tables) -> None:
        d = tables.dimension
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {tables.chunk} (doc_id text NOT NULL, ordinal int NOT NULL,"
            f" embedding vector({d}) NOT NULL, PRIMARY KEY (doc_id, ordinal))"
        )
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {tables.doc} (doc_id text PRIMARY KEY,"
            f" title vector({d}) NOT NULL, lead vector({d}) NOT NULL)"
        )
        # In the row, not TOASTed: a 512-float vector (2 kB) is past TOAST's threshold, and reading
        # vectors out of line made a scan of 2,500 titles take 5 ms instead of 1.
        await conn.execute(f"ALTER TABLE {tables.chunk} ALTER COLUMN embedding SET STORAGE PLAIN")
        await conn.execute(f"ALTER TABLE {tables.doc} ALTER COLUMN title SET STORAGE PLAIN")
        await conn.execute(f"ALTER TABLE {tables.doc} ALTER COLUMN lead SET STORAGE PLAIN")

    @staticmethod
    def _indexes(tables: Tables) -> list[tuple[str, str, str]]:
        return [
            (f"{tables.chunk}_hnsw", tables.chunk, "embedding"),
            (f"{tables.doc}_title_hnsw", tables.doc, "title"),
            (f"{tables.doc}_lead_hnsw", tables.doc, "lead"),
        ]

    async def _load(self, conn: Any, by_encoder: Mapping[str, Tables], docs: Sequence[EncodedDocument]) -> int:
        rows = 0
        for name, tables in by_encoder.items():
            present = await conn.fetchval(f"SELECT count(*) FROM {tables.doc}")
            chunk_rows = [(d.doc_id, ordinal, vector) for d in docs for ordinal, vector in enumerate(d.vectors[name])]
            # An empty table loaded with many rows gets its indexes built afterwards: far faster than
            # inserting into the graph row by row.
            rebuild = present == 0 and len(chunk_rows) > _REBUILD_ROWS
            if rebuild:
                for index, _, _ in self._indexes(tables):
                    await conn.execute(f"DROP INDEX IF EXISTS {index}")
            await conn.copy_records_to_table(
                tables.chunk, records=chunk_rows, columns=["doc_id", "ordinal", "embedding"]
            )
            await conn.copy_records_to_table(
                tables.doc,
                records=[(d.doc_id, d.title_vectors[name], d.lead_vectors[name]) for d in docs],
                columns=["doc_id", "title", "lead"],
            )
            for index, table, column in self._indexes(tables):
                await conn.execute(
                    f"CREATE INDEX IF NOT EXISTS {index} ON {table} USING hnsw ({column} vector_cosine_ops)"
                )
            # Fresh statistics, or the planner takes a candidate lookup for a scan of the whole table.
            await conn.execute(f"ANALYZE {tables.chunk}")
            await conn.execute(f"ANALYZE {tables.doc}")
            rows += len(chunk_rows) + 2 * len(docs)
        return rows

    def _queries(self, language: str, names: tuple[str, ...]) -> tuple[str, str]:
        """Two statements: the candidate documents (the nearest chunks, titles and openings of each
        encoder, from the HNSW indexes), then every vector of those documents with its exact similarity
        (inner product: the vectors are unit length), read through the primary keys. As one statement
        the planner joined the candidates by scanning whole tables."""
        cached = self._sql.get((language, names))
        if cached is not None:
            return cached
        tables = self._tables[language]
        found = []
        scored = []
        for i, name in enumerate(names):
            t, q = tables[name], f"${i + 2}"
            found += [
                f"(SELECT doc_id FROM {t.chunk} ORDER BY embedding <=> {q} LIMIT 2 * $1::int)",
                f"(SELECT doc_id FROM {t.doc} ORDER BY title <=> {q} LIMIT $1::int)",
                f"(SELECT doc_id FROM {t.doc} ORDER BY lead <=> {q} LIMIT $1::int)",
            ]
            among = "WHERE doc_id = ANY($1::text[])"
            scored += [
                f"SELECT {3 * i} AS part, doc_id, ordinal, -(embedding <#> {q}) AS sim FROM {t.chunk} {among}",
                f"SELECT {3 * i + 1}, doc_id, 0, -(title <#> {q}) FROM {t.doc} {among}",
                f"SELECT {3 * i + 2}, doc_id, 0, -(lead <#> {q}) FROM {t.doc} {among}",
            ]
        pair = (" UNION ".join(found), " UNION ALL ".join(scored))
        self._sql[(language, names)] = pair
        return pair

    async def nearest(
        self, language: str, queries: Mapping[str, Vectors], lexical_docs: Sequence[str], limit: int
    ) -> DenseHits:
        names = tuple(sorted(queries))
        tables = self._tables.get(language, {})
        if any(name not in tables for name in names):
            return DenseHits({}, {}, {})
        if limit > self.ef_search // 2:
            raise ValueError(f"limit {limit} needs hnsw.ef_search of at least {2 * limit} (have {self.ef_search})")
        find, score = self._queries(language, names)
        vectors = [queries[n] for n in names]
        async with self._pool.acquire() as conn:
            nearest = await conn.fetch(find, limit, *vectors)
            docs = sorted({r[0] for r in nearest} | set(lexical_docs))
            records = await conn.fetch(score, docs, *vectors)
        parts: dict[int, list[Any]] = {}
        for record in records:
            parts.setdefault(record[0], []).append(record)
        doc_ids: dict[Key, list[str]] = {}
        ordinals: dict[Key, Any] = {}
        sims: dict[Key, Any] = {}
        for i, name in enumerate(names):
            for j, kind in enumerate(KINDS):
                part = parts.get(3 * i + j, [])
                doc_ids[(name, kind)] = [r[1] for r in part]
                ordinals[(name, kind)] = np.array([r[2] for r in part], dtype=np.int64)
                sims[(name, kind)] = np.array([r[3] for r in part], dtype=np.float64)
        return DenseHits(doc_ids, ordinals, sims)

    async def stored(self) -> dict[tuple[str, str], str]:
        """(language, document id) -> fingerprint of what the tables hold."""
        async with self._pool.acquire() as conn:
            return {
                (r["language"], r["doc_id"]): r["fingerprint"] for r in await conn.fetch("SELECT * FROM kb_pgv_docs")
            }
