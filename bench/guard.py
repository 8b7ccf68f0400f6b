"""The guard, measured on the labelled sets in ``tests/data/guard`` (zh + en; dev and test splits).

* PII: recall and precision per type, and the share of non-PII numbers (orders, prices, dates, tracking
  numbers, model numbers) left intact.
* Prompt injection: share of attacks flagged (TPR) and of benign look-alike messages flagged (FPR), for the
  rules + n-gram model alone and with the semantic check (what the server runs).
* Moderation: recall and precision per category (lexicons only), and clean messages flagged.
* Latency: what the whole inbound guard (PII + moderation lexicons + injection) adds to a message, over every
  message of every set, one thread; the sentence embedding the semantic check reads is the NLU's own (one per
  message either way), so it is timed apart.

Usage::

    python bench/guard.py [--data tests/data/guard] [--out bench/results/guard.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kefu.guard.evaluation import read_jsonl, score_binary, score_categories, score_pii  # noqa: E402
from kefu.guard.injection import InjectionDetector  # noqa: E402
from kefu.guard.injection_semantic import SemanticInjection  # noqa: E402
from kefu.guard.moderation import LexiconModerator  # noqa: E402
from kefu.guard.pii import find_pii  # noqa: E402
from kefu.guard.safety import SafetyGuard  # noqa: E402
from kefu.nlu.encoder import RecentVectors, UseEncoder  # noqa: E402


def _split(data: Path, name: str, split: str) -> list[dict[str, Any]]:
    return read_jsonl(data / f"{name}_{split}.jsonl")


def _by_language(rows: list[dict[str, Any]], lang: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["lang"] == lang]


def measure(data: Path) -> dict[str, Any]:
    injection = InjectionDetector()
    encoder = RecentVectors(UseEncoder(), size=100_000)
    full = SafetyGuard(injection=injection, semantic=(SemanticInjection.load(), encoder))
    lexicon = LexiconModerator()
    results: dict[str, Any] = {}
    for split in ("dev", "test"):
        pii_rows = _split(data, "pii", split)
        inj_rows = _split(data, "injection", split)
        mod_rows = _split(data, "moderation", split)
        pii = score_pii(pii_rows, find_pii)
        inj = {
            lang: score_binary(_by_language(inj_rows, lang), lambda t: full.check_injection(t).flagged)
            for lang in ("zh", "en")
        }
        inj["all"] = score_binary(inj_rows, lambda t: full.check_injection(t).flagged)
        inj["rules_only"] = score_binary(inj_rows, lambda t: injection.check(t).flagged)
        mod = score_categories(mod_rows, lambda t: lexicon.check(t).categories)
        results[split] = {
            "pii": {k: v for k, v in pii.items() if k not in ("misses", "false_alarms")},
            "pii_misses": pii["misses"][:20],
            "pii_false_alarms": pii["false_alarms"][:20],
            "injection": {k: {m: n for m, n in v.items() if m != "errors"} for k, v in inj.items()},
            "injection_errors": inj["all"]["errors"][:30],
            "moderation": {k: v for k, v in mod.items() if k != "errors"},
            "moderation_errors": mod["errors"][:30],
        }
    texts = [
        r["text"]
        for split in ("dev", "test")
        for n in ("pii", "injection", "moderation")
        for r in _split(data, n, split)
    ]
    results["latency"] = asyncio.run(_latency(texts, full))
    encode = []
    fresh = UseEncoder()
    for text in texts[:500]:
        started = time.perf_counter()
        fresh.encode([text])
        encode.append((time.perf_counter() - started) * 1000)
    results["latency"]["embedding_shared_with_nlu_p50_ms"] = round(statistics.median(encode), 3)
    return results


async def _latency(texts: list[str], guard: SafetyGuard) -> dict[str, Any]:
    """The guard with every message's embedding already made (the NLU makes it in any case)."""
    if guard.semantic is not None:
        for text in texts:  # the NLU's embedding of each message, made before the guard reads it
            guard.semantic[1].encode([text])
    for text in texts[:50]:  # warm the regex caches
        await guard.inbound(text)
    times = []
    for text in texts:
        started = time.perf_counter()
        await guard.inbound(text)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "messages": len(times),
        "p50_ms": round(statistics.median(times), 3),
        "p99_ms": round(times[int(len(times) * 0.99) - 1], 3),
        "max_ms": round(times[-1], 3),
        "mean_chars": round(statistics.mean(len(t) for t in texts), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / "tests" / "data" / "guard")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "guard.json")
    args = parser.parse_args()
    results = measure(args.data)
    results["machine"] = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()}
    results["command"] = "python bench/guard.py"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    for split in ("dev", "test"):
        r = results[split]
        pii = ", ".join(f"{t} {v['recall']}/{v['precision']}" for t, v in r["pii"]["per_type"].items())
        print(f"[{split}] PII recall/precision: {pii}; non-PII intact {r['pii']['keep_intact']}")
        for lang in ("zh", "en", "all", "rules_only"):
            i = r["injection"][lang]
            print(f"[{split}] injection {lang}: TPR {i['tpr']} ({i['attacks']}), FPR {i['fpr']} ({i['benign']})")
        m = r["moderation"]
        print(f"[{split}] moderation: flagged recall {m['flagged_recall']}, clean flagged {m['clean_flagged']}")
    print(f"latency: {results['latency']}")


if __name__ == "__main__":
    main()
