"""Entity extraction speed on the hot path: the demo pack's own zh/en messages, one at a time.

python bench/entities.py [--out bench/results/entities.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from kefu.nlu.entities import build_extractor  # noqa: E402
from kefu.packs.loader import load_pack  # noqa: E402

TODAY = date(2026, 11, 25)
EXTRA = [
    "我上周五买的无线降噪耳机，订单100001，花了¥1299，24小时内能退吗？手机13812345678",
    "I paid $25.50 for 2 pcs of the wireles earbuds last Friday, order 100002, email me at a@b.com",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/entities.json")
    parser.add_argument("--rounds", type=int, default=5, help="best of this many runs per message")
    args = parser.parse_args()
    pack = load_pack("ecommerce")
    extractor = build_extractor(pack.entities, pack.product_names())
    texts = [t for by_intent in pack.intent_examples.values() for examples in by_intent.values() for t in examples]
    texts = texts + EXTRA * 50
    found = 0
    times = []
    for text in texts:
        best = float("inf")
        for _ in range(args.rounds):
            started = time.perf_counter()
            entities = extractor.extract(text, today=TODAY)
            best = min(best, time.perf_counter() - started)
        found += len(entities)
        times.append(best * 1000)
    result = {
        "benchmark": "entities",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join(sys.argv),
        "messages": len(texts),
        "entities_found": found,
        "mean_ms": round(float(np.mean(times)), 3),
        "p50_ms": round(float(np.percentile(times, 50)), 3),
        "p99_ms": round(float(np.percentile(times, 99)), 3),
        "max_ms": round(float(np.max(times)), 3),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
