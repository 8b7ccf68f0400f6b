"""The LLM second opinion for unsure intents, measured separately (it is off by default).

Scores a trained intent model on a labelled file twice: the classifier alone, and with every message whose
top confidence is below ``--below`` sent to an OpenAI-compatible LLM to choose among the top candidates.

    python bench/intent_llm.py --model DIR --data TEST.jsonl --llm-url http://127.0.0.1:8080/v1 \\
        --llm-model NAME [--below 0.6] [--limit 300] [--out bench/results/intent_llm.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from kefu.core.types import IntentScore  # noqa: E402
from kefu.nlu.arbiter import LlmIntentArbiter  # noqa: E402
from kefu.nlu.dataset import OOS_LABEL, read_examples  # noqa: E402
from kefu.nlu.encoder import make_encoder  # noqa: E402
from kefu.nlu.model_store import load_model  # noqa: E402


async def run(args: argparse.Namespace) -> dict[str, object]:
    model = load_model(args.model)
    examples = read_examples(args.data)[: args.limit]
    texts = [e.text for e in examples]
    encoders = {name: make_encoder(name, 2) for name in model.encoders}
    vectors = {name: encoder.encode(texts) for name, encoder in encoders.items()}
    predictions = model.predict_batch(texts, vectors)
    arbiter = LlmIntentArbiter(
        args.llm_url,
        args.llm_model,
        below=args.below,
        top_k=args.top_k,
        timeout_s=30.0,
        fallback_intent=args.fallback_intent,
    )
    before, after, latencies, unanswered = [], [], [], 0
    sent_rows = []
    for example, prediction in zip(examples, predictions, strict=True):
        decided = model.decide(prediction)
        before.append(decided == example.label)
        final = decided
        if prediction.scores[0] < args.below:
            ranking = [IntentScore(n, s) for n, s in zip(prediction.labels, prediction.scores, strict=True)]
            started = time.perf_counter()
            chosen = await arbiter.choose(example.text, ranking)
            latencies.append((time.perf_counter() - started) * 1000)
            if chosen is None:
                unanswered += 1
            else:
                final = chosen.name
            sent_rows.append(len(after))
        after.append(final == example.label)
    await arbiter.close()
    sent = np.array(sent_rows, dtype=np.int64)
    return {
        "benchmark": "intent_llm",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join(sys.argv),
        "llm": args.llm_model,
        "rows": len(examples),
        "below": args.below,
        "sent_to_llm": len(sent_rows),
        "llm_unanswered": unanswered,
        "accuracy_classifier": round(float(np.mean(before)), 4),
        "accuracy_with_llm": round(float(np.mean(after)), 4),
        "sent_accuracy_classifier": round(float(np.mean(np.array(before)[sent])), 4) if len(sent) else None,
        "sent_accuracy_with_llm": round(float(np.mean(np.array(after)[sent])), 4) if len(sent) else None,
        "llm_p50_ms": round(float(np.percentile(latencies, 50)), 1) if latencies else None,
        "llm_p99_ms": round(float(np.percentile(latencies, 99)), 1) if latencies else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--llm-url", required=True)
    parser.add_argument("--llm-model", required=True)
    parser.add_argument("--below", type=float, default=0.6)
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--limit", type=int, default=100000)
    parser.add_argument(
        "--fallback-intent", default=OOS_LABEL, help="the label for 'none of these' (a pack's out_of_scope)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/intent_llm.json")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
