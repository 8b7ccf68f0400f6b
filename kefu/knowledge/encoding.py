"""Everything the index needs from one document, computed once at ingest and stored with it:
chunks, BM25 tokens, dense vectors per encoder, and the sentences for extractive answers (their vectors
are computed when the document first answers: a fifth of the ingest time for one small encode later)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from kefu.knowledge.answer import split_sentences
from kefu.knowledge.chunking import chunk_document
from kefu.knowledge.documents import Chunk, Document
from kefu.knowledge.tokens import tokenize
from kefu.nlu.encoder import SentenceEncoder, Vectors

# The encoder that also scores confidence and picks answer sentences: it embeds every message anyway.
PRIMARY_ENCODER = "use-multilingual-v3"
_LEAD_CHARS = 700


@dataclass(frozen=True, slots=True)
class EncodedDocument:
    doc_id: str
    language: str
    title: str
    source: str
    kind: str
    chunks: tuple[Chunk, ...]
    tokens: tuple[tuple[str, ...], ...]  # BM25 tokens per chunk
    vectors: Mapping[str, Vectors]  # encoder name -> one row per chunk
    title_vectors: Mapping[str, Vectors]  # encoder name -> the title (with tags) as one vector
    lead_vectors: Mapping[str, Vectors]  # encoder name -> the document's opening (as far as the encoder reads)
    sentences: tuple[tuple[str, int], ...]  # (sentence, chunk position) for extractive answers

    def to_bytes(self) -> bytes:
        meta = {
            "doc_id": self.doc_id,
            "language": self.language,
            "title": self.title,
            "source": self.source,
            "kind": self.kind,
            "chunks": [[c.title, list(c.path), c.text, list(c.tags), c.position] for c in self.chunks],
            "tokens": [list(t) for t in self.tokens],
            "sentences": [list(s) for s in self.sentences],
        }
        arrays = {f"v:{k}": v for k, v in self.vectors.items()}
        arrays |= {f"t:{k}": v for k, v in self.title_vectors.items()}
        arrays |= {f"l:{k}": v for k, v in self.lead_vectors.items()}
        buffer = io.BytesIO()
        np.savez(
            buffer,
            meta=np.frombuffer(json.dumps(meta, ensure_ascii=False).encode(), dtype=np.uint8),
            **arrays,  # type: ignore[arg-type]
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> EncodedDocument:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            meta = json.loads(arrays["meta"].tobytes().decode())
            vectors = {k[2:]: arrays[k] for k in arrays.files if k.startswith("v:")}
            titles = {k[2:]: arrays[k] for k in arrays.files if k.startswith("t:")}
            leads = {k[2:]: arrays[k] for k in arrays.files if k.startswith("l:")}
        chunks = tuple(
            Chunk(meta["doc_id"], meta["language"], title, tuple(path), text, tuple(tags), position)
            for title, path, text, tags, position in meta["chunks"]
        )
        return cls(
            meta["doc_id"],
            meta["language"],
            meta["title"],
            meta["source"],
            meta["kind"],
            chunks,
            tuple(tuple(t) for t in meta["tokens"]),
            vectors,
            titles,
            leads,
            tuple((str(s), int(p)) for s, p in meta["sentences"]),
        )


def chunk_text(chunk: Chunk) -> str:
    """What the encoders and BM25 read: the heading path first, so a short section keeps its topic."""
    return f"{chunk.heading_text}\n{chunk.text}"


def title_text(doc: Document) -> str:
    return f"{doc.title} {' '.join(doc.tags)}".strip()


def encode_documents(
    docs: Sequence[Document],
    encoders: Mapping[str, SentenceEncoder],
    progress: Callable[[int], None] | None = None,
) -> list[EncodedDocument]:
    """Encode in batches across documents (the encoders are much faster on batches); ``encoders`` must
    include PRIMARY_ENCODER. ``progress`` is told how many chunks each batch finished."""
    out: list[EncodedDocument] = []
    batch: list[Document] = []
    size = 0
    for doc in docs:
        batch.append(doc)
        size += max(1, len(doc.body) // 500)
        if size >= 64:
            out.extend(_encode_batch(batch, encoders, progress))
            batch, size = [], 0
    if batch:
        out.extend(_encode_batch(batch, encoders, progress))
    return out


def _encode_batch(
    docs: Sequence[Document],
    encoders: Mapping[str, SentenceEncoder],
    progress: Callable[[int], None] | None,
) -> list[EncodedDocument]:
    chunked = [chunk_document(d) for d in docs]
    sentences = [
        tuple((s, c.position) for c in chunks for s in split_sentences(c.text) or [c.text]) for chunks in chunked
    ]
    flat_chunks = [chunk_text(c) for chunks in chunked for c in chunks]
    chunk_vectors = {name: enc.encode(flat_chunks) for name, enc in encoders.items()}
    titles = {name: enc.encode([title_text(d) for d in docs]) for name, enc in encoders.items()}
    # The opening as far as a passage encoder reads (about 128 tokens); USE would read all of it, slowly.
    leads = {name: enc.encode([f"{d.title}\n{d.body[:_LEAD_CHARS]}" for d in docs]) for name, enc in encoders.items()}
    out: list[EncodedDocument] = []
    chunk_start = 0
    for i, (doc, chunks) in enumerate(zip(docs, chunked, strict=True)):
        n = len(chunks)
        out.append(
            EncodedDocument(
                doc.id,
                doc.language,
                doc.title,
                doc.source,
                doc.kind,
                tuple(chunks),
                tuple(tuple(tokenize(f"{chunk_text(c)} {' '.join(c.tags)}", doc.language)) for c in chunks),
                {name: v[chunk_start : chunk_start + n] for name, v in chunk_vectors.items()},
                {name: v[i] for name, v in titles.items()},
                {name: v[i] for name, v in leads.items()},
                sentences[i],
            )
        )
        chunk_start += n
    if progress is not None:
        progress(chunk_start)
    return out
