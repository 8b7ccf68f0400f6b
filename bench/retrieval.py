"""Knowledge-base retrieval: quality (WixQA, the demo pack), search latency at 1k / 10k / 100k chunks with
index memory, and ingest speed.

python bench/retrieval.py --wixqa ../shared/data/wixqa_expertwritten_sample/dev.jsonl \
    [--distractors bench/data/wixqa_distractors.jsonl] [--only quality,latency,ingest] \
    [--pgvector postgresql+asyncpg://postgres@127.0.0.1:5432/test] [--out bench/results/retrieval.json]

- quality: `kefu kb eval --json` (a child process, as an operator runs it) on the WixQA dev questions over
  their own 75 gold articles, and over those plus our 100 distractor articles (closer to the 173-article
  scoring pool); the demo pack's right-article-first on its tuning, unseen and blind questions.
- latency: the WixQA articles' real chunks, repeated with perturbed vectors and shuffled words until the
  index holds N chunks (latency depends on sizes, not on what the chunks say); real WixQA questions, one
  at a time on one thread, query encoding included; index memory as the process's RSS growth. With
  --pgvector, the same corpus in pgvector (HNSW): sync time, latency, the process's own index size, and
  how many questions get the in-memory index's top 5.
- ingest: `kefu kb add` of the 175 WixQA articles into a fresh SQLite library (read, chunk, BM25 tokens,
  USE + MiniLM vectors, sentence vectors, save), and of the demo pack's Chinese articles (USE only).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from kefu.knowledge.base import encoder_names, ranking_for  # noqa: E402
from kefu.knowledge.documents import Chunk  # noqa: E402
from kefu.knowledge.encoding import EncodedDocument  # noqa: E402

KEFU = [sys.executable, "-m", "kefu.cli.main"]


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _write_articles(folder: Path, wixqa: Path, distractors: Path | None) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    for line in wixqa.read_text(encoding="utf-8").splitlines():
        for context in json.loads(line)["contexts"]:
            if context["id"] not in seen:
                seen.add(context["id"])
                (folder / f"{context['id']}.txt").write_text(context["text"], encoding="utf-8")
    if distractors is not None:
        for line in distractors.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            seen.add(row["id"])
            (folder / f"{row['id']}.txt").write_text(row["text"], encoding="utf-8")
    return len(seen)


def _kefu_json(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = subprocess.run(
        [*KEFU, *args, "--json"], cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    if not done.stdout.strip():
        raise RuntimeError(f"kefu {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def quality(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    pools = {"wixqa_dev_gold_pool": None, "wixqa_dev_with_distractors": args.distractors}
    for name, distractors in pools.items():
        folder = work / name
        articles = _write_articles(folder, args.wixqa, distractors)
        result = _kefu_json("kb", "eval", "--docs", str(folder), "--data", str(args.wixqa))
        out[name] = {"articles": articles, **result}
        print(name, {k: result[k] for k in ("hit@1", "hit@5", "mrr@10", "abstention_rate")}, flush=True)
    out["demo_pack"] = asyncio.run(_demo_quality())
    print("demo_pack", out["demo_pack"], flush=True)
    return out


async def _demo_quality() -> dict[str, Any]:
    from kefu.config import load_settings
    from kefu.knowledge.evaluation import Question, evaluate
    from kefu.nlu.encoder import UseEncoder
    from kefu.packs.loader import load_pack
    from kefu.runtime import build_knowledge

    settings = load_settings(model_cache_dir=ROOT / "data" / "models")
    kb = await build_knowledge(load_pack(settings.pack), settings, UseEncoder(), None)
    result: dict[str, Any] = {}
    for name in ("ecommerce_kb_questions", "ecommerce_kb_questions_unseen", "ecommerce_kb_questions_blind"):
        rows = [json.loads(line) for line in (ROOT / "tests" / "data" / f"{name}.jsonl").read_text().splitlines()]
        for lang in ("en", "zh"):
            questions = [
                Question(r["question"], frozenset([r["article_id"]] if r["article_id"] else []), lang)
                for r in rows
                if r["lang"] == lang
            ]
            scored = evaluate(
                questions, lambda text, lg, n: kb.search(text, lg, n), [lang], settings.knowledge_min_score
            )
            scored.pop("misses")
            result[f"{name.removeprefix('ecommerce_kb_')}_{lang}"] = scored
    return result


def _scaled(docs: list[EncodedDocument], target: int, seed: int = 7) -> list[EncodedDocument]:
    """Copies of the real documents until ``target`` chunks: vectors perturbed and renormalised, each
    chunk's words shuffled with words of other chunks, so no two copies score alike."""
    rng = np.random.default_rng(seed)
    vocabulary = np.array(
        [w for d in docs for t in d.tokens for w in t]
    )  # converted once: choice() on a list copies it
    out: list[EncodedDocument] = []
    total = 0
    copy = 0
    while total < target:
        for doc in docs:
            if total >= target:
                break
            n = len(doc.chunks)

            def jitter(v: Any) -> Any:
                noisy = v + rng.normal(0, 0.02, v.shape).astype(np.float32)
                return (noisy / np.linalg.norm(noisy, axis=-1, keepdims=True)).astype(np.float32)

            tokens = tuple(
                tuple(rng.choice(vocabulary, size=max(3, len(t) // 2)).tolist()) + t[: len(t) // 2] for t in doc.tokens
            )
            doc_id = f"{doc.doc_id}-{copy}"
            out.append(
                EncodedDocument(
                    doc_id,
                    doc.language,
                    doc.title,
                    doc.source,
                    doc.kind,
                    tuple(Chunk(doc_id, c.language, c.title, c.path, c.text, c.tags, c.position) for c in doc.chunks),
                    tokens,
                    {k: jitter(v) for k, v in doc.vectors.items()},
                    {k: jitter(v) for k, v in doc.title_vectors.items()},
                    {k: jitter(v) for k, v in doc.lead_vectors.items()},
                    doc.sentences,
                )
            )
            total += n
        copy += 1
    return out


def latency(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from kefu.knowledge.base import MINILM, PASSAGE_TOKENS
    from kefu.knowledge.encoding import encode_documents
    from kefu.knowledge.index import KnowledgeIndex
    from kefu.knowledge.ingest import expand, read_files
    from kefu.nlu.encoder import MiniLmEncoder, UseEncoder

    folder = work / "latency_articles"
    _write_articles(folder, args.wixqa, args.distractors)
    files, _ = expand([folder])
    read, _ = read_files(files, language="en", max_bytes=10 * 1024 * 1024)
    encoders = {"use-multilingual-v3": UseEncoder(1), MINILM: MiniLmEncoder(1, PASSAGE_TOKENS)}
    names = encoder_names("en", True)
    base = encode_documents([d for d, _ in read], {n: encoders[n] for n in names})
    questions = [json.loads(line)["question"] for line in args.wixqa.read_text(encoding="utf-8").splitlines()]
    results: dict[str, Any] = {}
    for size in args.sizes:
        docs = _scaled(base, size)
        gc.collect()
        before = _rss_mb()
        started = time.perf_counter()
        index = KnowledgeIndex(docs, encoders, {"en": ranking_for("en", True)})
        build_s = time.perf_counter() - started
        gc.collect()
        memory = _rss_mb() - before
        for q in questions[:5]:  # warm-up
            index.search(q, "en", 5)
        timings = []
        for _ in range(args.rounds):
            for q in questions:
                started = time.perf_counter()
                index.search(q, "en", 5)
                timings.append((time.perf_counter() - started) * 1000)
        ms = np.array(timings)
        results[str(size)] = {
            "chunks": index.size,
            "documents": len(docs),
            "queries": len(timings),
            "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p90_ms": round(float(np.percentile(ms, 90)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "mean_ms": round(float(ms.mean()), 2),
            "index_build_s": round(build_s, 2),
            "index_arrays_mb": round(index.nbytes() / 2**20, 1),
            "documents_vectors_mb": round(
                sum(v.nbytes for d in docs for m in (d.vectors, d.title_vectors, d.lead_vectors) for v in m.values())
                / 2**20,
                1,
            ),
            "rss_growth_mb": round(memory, 1),
        }
        print(size, results[str(size)], flush=True)
        if args.pgvector:
            expected = [[h.chunk.doc_id for h in index.search(q, "en", 5)] for q in questions]
            results[str(size)]["pgvector"] = asyncio.run(_pgvector_latency(args, docs, encoders, questions, expected))
            print(size, "pgvector", results[str(size)]["pgvector"], flush=True)
        del index, docs
    return results


async def _pgvector_latency(
    args: argparse.Namespace,
    docs: list[EncodedDocument],
    encoders: dict[str, Any],
    questions: list[str],
    expected: list[list[str]],
) -> dict[str, Any]:
    from kefu.knowledge.index import KnowledgeIndex
    from kefu.knowledge.pgvector import PgVectorStore

    store = await PgVectorStore.open(args.pgvector)
    try:
        await store.sync([])  # empty tables: the load builds each HNSW index once, after the rows
        started = time.perf_counter()
        report = await store.sync(docs)
        sync_s = time.perf_counter() - started
        index = KnowledgeIndex(docs, encoders, {"en": ranking_for("en", True)}, keep_vectors=False)
        same = 0
        for q, top in zip(questions, expected, strict=True):
            same += [h.chunk.doc_id for h in await index.search_with(store, q, "en", 5)] == top
        timings = []
        for _ in range(args.rounds):
            for q in questions:
                started = time.perf_counter()
                await index.search_with(store, q, "en", 5)
                timings.append((time.perf_counter() - started) * 1000)
        ms = np.array(timings)
        return {
            "candidates": store.candidates,
            "sync_s": round(sync_s, 1),
            "rows": report.rows,
            "same_top5_as_numpy": f"{same}/{len(questions)}",
            "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p90_ms": round(float(np.percentile(ms, 90)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "mean_ms": round(float(ms.mean()), 2),
            "index_arrays_mb": round(index.nbytes() / 2**20, 1),
        }
    finally:
        await store.sync([])
        await store.close()


def ingest(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    english = work / "ingest_en"
    _write_articles(english, args.wixqa, args.distractors)
    chinese = ROOT / "kefu" / "packs" / "ecommerce" / "knowledge" / "zh"
    for name, folder, extra in (("en_use_minilm", english, {}), ("zh_use", chinese, {"--lang": "zh"})):
        data = Path(tempfile.mkdtemp(dir=work))
        env = {"KEFU_DATA_DIR": str(data), "KEFU_MODEL_CACHE_DIR": str(ROOT / "data" / "models")}
        # The pack's ids are reserved; the Chinese articles go in under a prefix via a copy.
        if name == "zh_use":
            copy = work / "ingest_zh"
            copy.mkdir(exist_ok=True)
            for path in folder.glob("*.md"):
                (copy / f"lib-{path.name}").write_text(
                    path.read_text(encoding="utf-8").replace("\nid:", "\nx-id:"), encoding="utf-8"
                )
            folder = copy
        result = _kefu_json("kb", "add", str(folder), *[x for kv in extra.items() for x in kv], env=env)
        out[name] = {
            "documents": result["added"],
            "chunks": result["chunks"],
            "seconds": result["seconds"],
            "chunks_per_s": round(result["chunks"] / result["seconds"], 1),
        }
        print(name, out[name], flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wixqa", type=Path, required=True, help="WixQA dev.jsonl (questions with contexts)")
    parser.add_argument("--distractors", type=Path, default=ROOT / "bench" / "data" / "wixqa_distractors.jsonl")
    parser.add_argument("--only", default="quality,latency,ingest")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1000, 10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=3, help="passes over the questions per size")
    parser.add_argument("--pgvector", default="", help="a PostgreSQL URL: also time KEFU_KB_INDEX=pgvector")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "retrieval.json")
    args = parser.parse_args()
    if not args.wixqa.is_file():
        parser.error(f"--wixqa {args.wixqa}: no such file")
    result: dict[str, Any] = json.loads(args.out.read_text()) if args.out.is_file() else {}
    result |= {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "command": "python " + " ".join(sys.argv),
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    steps = {"quality": quality, "latency": latency, "ingest": ingest}
    with tempfile.TemporaryDirectory(prefix="kefu-bench-") as tmp:
        for name in args.only.split(","):
            started = datetime.now(UTC).isoformat(timespec="seconds")
            result[name] = {"command": result["command"], "timestamp": started, **steps[name](args, Path(tmp))}
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
