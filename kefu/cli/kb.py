"""``kefu kb add | list | remove | search | eval``: the knowledge base from the command line.

The library lives in the database the server uses (KEFU_DATABASE_URL), so a running server picks up a
change within KEFU_KB_RELOAD_S seconds; ``search`` ranks exactly as the chat does."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kefu.cli.common import cli_settings, console, fail
from kefu.config import Settings
from kefu.core.types import Locale

app = typer.Typer(help="Knowledge base: add, list, remove, search and evaluate documents.", no_args_is_help=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="End with one JSON line of results.")]
LangOption = Annotated[str | None, typer.Option("--lang", help="zh or en (default: detected).")]


def _quiet_libraries() -> None:
    # pypdf logs each oddity of a bad PDF; the refusal printed for that file already says what is wrong.
    logging.getLogger("pypdf").setLevel(logging.ERROR)


def _language(value: str | None) -> Locale | None:
    if value not in (None, "zh", "en"):
        raise fail("--lang must be zh or en")
    return cast(Locale | None, value)


@contextmanager
def _progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    columns = (TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)
        progress.update(task, completed=total)


def _encoders(settings: Settings) -> dict[str, Any]:
    """The encoders, created on first use: a Chinese-only ingest never loads torch for the MiniLM."""
    from kefu.knowledge.base import MINILM, PASSAGE_TOKENS
    from kefu.nlu.encoder import MiniLmEncoder, UseEncoder

    threads = max(1, os.cpu_count() or 1)
    cache: dict[str, Any] = {}

    class Lazy(dict[str, Any]):
        def __missing__(self, name: str) -> Any:
            if name not in cache:
                cache[name] = MiniLmEncoder(threads, PASSAGE_TOKENS) if name == MINILM else UseEncoder(threads)
            return cache[name]

    return Lazy()


def _print(results: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(results, ensure_ascii=False))


@app.command()
def add(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (.md .txt .html .pdf .csv .jsonl).")],
    lang: LangOption = None,
    doc_id: Annotated[str | None, typer.Option("--id", help="Document id (one file only; default: stem).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Add or update documents; unchanged files are skipped. Exit 1 when a file was refused (the rest
    still go in)."""
    language = _language(lang)
    settings = cli_settings()
    _quiet_libraries()
    if doc_id is not None and (len(paths) != 1 or paths[0].is_dir()):
        raise fail("--id names one document: give exactly one file")
    asyncio.run(_add(settings, paths, language, doc_id, as_json))


async def _add(
    settings: Settings, paths: list[Path], language: Locale | None, doc_id: str | None, as_json: bool
) -> None:
    from kefu.knowledge.base import encoder_names
    from kefu.knowledge.chunking import chunk_document
    from kefu.knowledge.ingest import expand, ingest, read_files
    from kefu.knowledge.tokens import warm_up

    engine, library, pack = await _open(settings)
    reserved = _reserved(pack)
    try:
        files, errors = expand(paths)
        docs, refused = read_files(
            files,
            language=language,
            max_bytes=int(settings.kb_max_file_mb * 1024 * 1024),
            doc_id=doc_id,
            reserved=reserved,
        )
        encoders = _encoders(settings)

        def encoders_for(language: str) -> dict[str, Any]:
            return {n: encoders[n] for n in encoder_names(language, settings.kb_minilm)}

        for language in {d.language for d, _ in docs}:  # load models before the clock starts
            encoders_for(language)
            if language == "zh":
                warm_up()
        started = time.perf_counter()
        with _progress("encoding", sum(len(chunk_document(d)) for d, _ in docs)) as advance:
            results = await ingest(library, docs, encoders_for, advance)
        seconds = time.perf_counter() - started
    finally:
        await engine.dispose()
    everything = [*errors, *refused, *results]
    table = Table("status", "id", "lang", "version", "chunks", "file / error")
    for r in everything:
        colour = {"error": "red", "unchanged": "dim"}.get(r.status, "green")
        table.add_row(
            f"[{colour}]{r.status}[/]",
            r.id or "",
            r.language or "",
            str(r.version or ""),
            str(r.chunks or ""),
            "(below)" if r.error else r.path,
        )
    console.print(table)
    for r in everything:  # in full: a table column may be cut to the terminal's width
        if r.error:
            console.print(f"[red]refused:[/] {r.error}")
    counts = {s: sum(r.status == s for r in everything) for s in ("added", "updated", "unchanged", "error")}
    encoded = sum(r.chunks for r in results)
    console.print(
        f"{counts['added']} added, {counts['updated']} updated, {counts['unchanged']} unchanged, "
        f"{counts['error']} refused; {encoded} chunks in {seconds:.1f} s"
    )
    _print(
        {**counts, "chunks": encoded, "seconds": round(seconds, 3), "files": [r.as_dict() for r in everything]}, as_json
    )
    if counts["error"]:
        raise typer.Exit(1)


async def _open(settings: Settings) -> tuple[Any, Any, Any]:
    """The pack (read once), and the migrated database with its knowledge library."""
    from kefu.knowledge.library import KnowledgeLibrary
    from kefu.packs.loader import PackError, load_pack
    from kefu.store.database import create_engine, migrate

    try:
        pack = load_pack(settings.pack, settings.resolved_training_data_dir)
    except PackError as exc:
        raise fail(str(exc)) from exc
    engine = create_engine(settings.resolved_database_url)
    try:
        await migrate(engine)
    except Exception as exc:  # an unreachable or read-only database: say which, then stop
        await engine.dispose()
        raise fail(f"database {settings.resolved_database_url}: {exc}") from exc
    return engine, KnowledgeLibrary(engine), pack


def _reserved(pack: Any) -> dict[tuple[str, str], str]:
    from kefu.knowledge.base import reserved_ids

    return reserved_ids(pack.name, ((d.id, d.language, d.source) for d in pack.documents))


@app.command("list")
def list_documents(as_json: JsonFlag = False) -> None:
    """Every document: the pack's own articles and the library's."""
    asyncio.run(_list(cli_settings(), as_json))


async def _list(settings: Settings, as_json: bool) -> None:
    from kefu.knowledge.base import pack_document_info
    from kefu.knowledge.chunking import chunk_document

    engine, library, pack = await _open(settings)
    try:
        own = await library.documents()
    finally:
        await engine.dispose()
    bundled = [
        pack_document_info(d.id, d.language, d.title, d.source, d.kind, len(chunk_document(d))) for d in pack.documents
    ]
    docs = sorted([*bundled, *own], key=lambda d: (d.id, d.language))
    table = Table("id", "lang", "title", "kind", "version", "chunks", "origin", "updated")
    for d in docs:
        table.add_row(d.id, d.language, d.title, d.kind, str(d.version), str(d.chunks), d.origin, d.updated_at[:19])
    console.print(table)
    console.print(f"{len(docs)} documents ({len(own)} in the library, {len(bundled)} from pack {pack.name})")
    _print({"documents": [d.as_dict() for d in docs]}, as_json)


@app.command()
def remove(
    doc_id: Annotated[str, typer.Argument(help="Document id.")],
    lang: LangOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Remove a library document (in both languages unless --lang is given)."""
    language = _language(lang)
    asyncio.run(_remove(cli_settings(), doc_id, language, as_json))


async def _remove(settings: Settings, doc_id: str, language: Locale | None, as_json: bool) -> None:
    from kefu.knowledge.base import owner_of

    engine, library, pack = await _open(settings)
    try:
        removed = await library.remove(doc_id, language)
    finally:
        await engine.dispose()
    if not removed:
        owner = owner_of(_reserved(pack), doc_id, language)
        if owner:
            raise fail(f"{doc_id!r} belongs to {owner}; edit the pack to change it", 1)
        raise fail(f"no document {doc_id!r}" + (f" in {language}" if language else ""), 1)
    for d in removed:
        console.print(f"removed {d.id} ({d.language}, version {d.version}, {d.chunks} chunks)")
    _print({"removed": [d.as_dict() for d in removed]}, as_json)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="The question.")],
    lang: LangOption = None,
    k: Annotated[int, typer.Option("-k", min=1, max=50, help="How many documents.")] = 5,
    as_json: JsonFlag = False,
) -> None:
    """Rank documents for QUERY exactly as the chat does (pack articles and library)."""
    language = _language(lang)
    if not query.strip():
        raise fail("the query is empty")
    asyncio.run(_search(cli_settings(), query, language, k, as_json))


async def _search(settings: Settings, query: str, language: Locale | None, k: int, as_json: bool) -> None:
    from kefu.nlu.encoder import UseEncoder
    from kefu.nlu.language import reply_locale
    from kefu.runtime import build_knowledge

    engine, library, pack = await _open(settings)
    try:
        kb = await build_knowledge(pack, settings, UseEncoder(), library)
    finally:
        await engine.dispose()
    lang: Locale = language or reply_locale(query, settings.default_locale)
    try:
        hits = await kb.search_async(query, lang, k)
    finally:
        await kb.close()
    table = Table("#", "id", "title", "section", "score", "text")
    for rank, hit in enumerate(hits, 1):
        answer = "" if hit.score < settings.knowledge_min_score else " (answers)"
        table.add_row(
            str(rank),
            hit.chunk.doc_id,
            hit.chunk.title,
            " / ".join(p for p in hit.chunk.path[1:] if p),
            f"{hit.score:.3f}{answer}",
            hit.chunk.text[:120].replace("\n", " "),
        )
    console.print(table)
    _print(
        {
            "query": query,
            "language": lang,
            "threshold": settings.knowledge_min_score,
            "hits": [
                {
                    "id": h.chunk.doc_id,
                    "title": h.chunk.title,
                    "section": h.chunk.heading_text,
                    "score": round(h.score, 4),
                    "text": h.chunk.text,
                }
                for h in hits
            ],
        },
        as_json,
    )


@app.command("eval")
def evaluate(
    docs: Annotated[Path, typer.Option("--docs", help="Folder of documents (document id = file stem).")],
    data: Annotated[Path, typer.Option("--data", help="JSONL questions: question, article_ids (WixQA format).")],
    lang: LangOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Build a fresh index from every file in DOCS and score the questions: hit@1, hit@5, MRR@10."""
    from kefu.knowledge.base import encoder_names, ranking_for
    from kefu.knowledge.chunking import chunk_document
    from kefu.knowledge.documents import DocumentError
    from kefu.knowledge.encoding import encode_documents
    from kefu.knowledge.evaluation import evaluate as score
    from kefu.knowledge.evaluation import read_questions
    from kefu.knowledge.index import KnowledgeIndex
    from kefu.knowledge.ingest import expand, read_files

    language = _language(lang)
    settings = cli_settings()
    if not docs.is_dir():
        raise fail(f"--docs {docs}: not a folder")
    try:
        questions = read_questions(data)
    except DocumentError as exc:
        raise fail(str(exc)) from exc
    _quiet_libraries()
    files, _ = expand([docs])
    read, refused = read_files(files, language=language, max_bytes=int(settings.kb_max_file_mb * 1024 * 1024))
    for r in refused:
        console.print(f"[yellow]skipped:[/] {r.error}")
    if not read:
        raise fail(f"--docs {docs}: no readable documents")
    encoders = _encoders(settings)
    for lg in {d.language for d, _ in read}:  # load models before the clock starts
        [encoders[n] for n in encoder_names(lg, settings.kb_minilm)]
    started = time.perf_counter()
    encoded = []
    for lg in sorted({d.language for d, _ in read}):
        batch = [d for d, _ in read if d.language == lg]
        with _progress(f"encoding ({lg})", sum(len(chunk_document(d)) for d in batch)) as advance:
            names = encoder_names(lg, settings.kb_minilm)
            encoded.extend(encode_documents(batch, {n: encoders[n] for n in names}, advance))
    seconds = time.perf_counter() - started
    languages = sorted({d.language for d in encoded})
    used = {n: encoders[n] for lg in languages for n in encoder_names(lg, settings.kb_minilm)}
    index = KnowledgeIndex(encoded, used, {lg: ranking_for(lg, settings.kb_minilm) for lg in languages})
    try:
        result = score(
            questions,
            lambda text, lg, n: index.search(text, lg, n),
            languages,
            settings.knowledge_min_score,
            known_ids={d.doc_id for d in encoded},
        )
    except DocumentError as exc:
        raise fail(str(exc)) from exc
    result = {"documents": len(encoded), "chunks": index.size, "index_seconds": round(seconds, 2), **result}
    misses = cast(list[dict[str, object]], result.pop("misses"))
    table = Table("measure", "value")
    for key in (
        "documents",
        "chunks",
        "questions",
        "hit@1",
        "hit@5",
        "mrr@10",
        "abstention_rate",
        "unanswerable_abstained",
    ):
        if key in result:
            table.add_row(key, str(result[key]))
    console.print(table)
    for miss in misses[:5]:
        console.print(f"[dim]miss:[/] {str(miss['question'])[:90]} → {miss['got'][:1]} (gold {miss['gold']})")  # type: ignore[index]
    _print(result, as_json)
