"""Intent recognition benchmark: trains and scores kefu's intent model on public sets, from paths you give.

Each set is trained with ``kefu intent train`` and scored with ``kefu intent eval --json`` in child
processes (training time and peak memory are the child's), then prediction latency is measured one
message at a time on one thread, encoders included, as the server does it.

    python bench/intent.py \\
        --banking77-train ../shared/data/banking77/train.jsonl [--banking77-test TEST.jsonl] \\
        --clinc-train ../shared/data/clinc150/train.jsonl --clinc-validation ../shared/data/clinc150/validation.jsonl \\
        [--clinc-test TEST.jsonl] \\
        --bitext-train ../shared/data/bitext_customer_support/train.jsonl \\
        --bitext-validation ../shared/data/bitext_customer_support/validation.jsonl [--bitext-test TEST.jsonl] \\
        --crosswoz ../shared/data/crosswoz/validation.jsonl --demo \\
        --out bench/results/intent.json

Without a test file a set is scored on a held-apart part of the data it was given (stratified, seed 1):
useful for development, and labelled as such in the results. ``--only NAME`` runs one set.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kefu.nlu.dataset import read_examples, stratified_split  # noqa: E402

KEFU = [sys.executable, "-m", "kefu.cli.main"]
LATENCY_MESSAGES = 500


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def _split(source: Path, work: Path, name: str, fraction: float = 0.15) -> tuple[Path, Path]:
    examples = read_examples(source)
    keep, held = stratified_split([e.label for e in examples], fraction, seed=1)
    rows = [{"text": e.text, "label": e.label} for e in examples]
    return (
        _write(work / f"{name}-train.jsonl", [rows[i] for i in keep]),
        _write(work / f"{name}-heldapart.jsonl", [rows[i] for i in held]),
    )


def _run(args: list[str]) -> tuple[str, float, float]:
    """Run a kefu command; (stdout, seconds, peak RSS MiB of the child)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(args, stdout=out, stderr=err, text=True, cwd=ROOT)
        _pid, status, usage = os.wait4(process.pid, 0)  # reaps the child and gives its own peak memory
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        raise SystemExit(f"command failed ({process.returncode}): {' '.join(args)}\n{stderr[-3000:]}")
    return stdout, seconds, usage.ru_maxrss / 1024


def _last_json(stdout: str) -> Any:
    return json.loads(stdout.strip().splitlines()[-1])


def run_set(
    name: str,
    train: list[Path],
    test: Path,
    work: Path,
    *,
    validation: Path | None = None,
    test_kind: str,
    extra: list[str] | None = None,
) -> dict[str, Any]:
    model = work / f"{name}-model"
    command = [*KEFU, "intent", "train", "--out", str(model), "--json", *(extra or [])]
    for path in train:
        command += ["--data", str(path)]
    if validation is not None:
        command += ["--validation", str(validation)]
    print(f"[{name}] training ...", flush=True)
    out, train_seconds, train_peak = _run(command)
    trained = _last_json(out)
    print(f"[{name}] scoring on {test} ...", flush=True)
    out, _seconds, _peak = _run(
        [
            *KEFU,
            "intent",
            "eval",
            "--model",
            str(model),
            "--data",
            str(test),
            "--json",
            "--allow-unknown",
            "--report",
            str(work / f"{name}-report"),
        ]
    )
    scores = _last_json(out)
    out, _seconds, _peak = _run([sys.executable, __file__, "latency", "--model", str(model), "--data", str(test)])
    latency = _last_json(out)
    result = {
        "set": name,
        "scored_on": test_kind,
        "test_file": str(test),
        **scores,
        "train_examples": trained["examples"],
        "labels": trained["labels"],
        "encoders": trained["encoders"],
        "finetuned": trained["finetuned"],
        "training_seconds": round(train_seconds, 1),
        "training_peak_mib": round(train_peak),
        "predict_p50_ms": latency["p50_ms"],
        "predict_p99_ms": latency["p99_ms"],
        "serving_rss_mib": latency["rss_mib"],
    }
    print(f"[{name}] {json.dumps(result)}", flush=True)
    return result


def latency_main(model_dir: Path, data: Path, threads: int = 1) -> None:
    """One message at a time, encoders included: what a server turn pays (``threads`` for the fine-tuned
    encoder, as KEFU_NLU_THREADS)."""
    import numpy as np

    from kefu.nlu.encoder import make_encoder
    from kefu.nlu.model_store import load_model

    model = load_model(model_dir, threads)
    encoders = {name: make_encoder(name, 1) for name in model.encoders}
    texts = [e.text for e in read_examples(data)]
    random.Random(0).shuffle(texts)
    texts = texts[:LATENCY_MESSAGES]
    times = []
    for i, text in enumerate(texts):
        started = time.perf_counter()
        vectors = {name: encoder.encode([text])[0] for name, encoder in encoders.items()}
        model.decide(model.predict(text, vectors))
        if i >= 10:  # warm-up excluded
            times.append((time.perf_counter() - started) * 1000)
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    p50, p99 = (float(np.percentile(times, q)) for q in (50, 99))
    print(json.dumps({"p50_ms": round(p50, 2), "p99_ms": round(p99, 2), "rss_mib": round(rss), "threads": threads}))


def crosswoz_split(source: Path, work: Path) -> tuple[Path, Path]:
    """CrossWOZ user turns: the label is the set of dialogue-act types ("Inform-酒店|Request-酒店"); whole
    dialogues are held apart (a fifth, seeded) so no dialogue is on both sides."""
    rows = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    dialogues = sorted({str(r["dialogue_id"]) for r in rows})
    random.Random(1).shuffle(dialogues)
    held = set(dialogues[: len(dialogues) // 5])
    # A user turn without dialogue acts gets the label "none".
    labelled = [(str(r["dialogue_id"]), {"text": r["text"], "label": r["label"] or "none"}) for r in rows]
    train = [row for dialogue, row in labelled if dialogue not in held]
    test = [row for dialogue, row in labelled if dialogue in held]
    return _write(work / "crosswoz-train.jsonl", train), _write(work / "crosswoz-heldapart.jsonl", test)


def demo_files(work: Path) -> tuple[Path, dict[str, Path]]:
    """The ecommerce demo pack's own examples for training; the held-out phrasing in tests/data per language."""
    from kefu.packs.loader import load_pack

    pack = load_pack("ecommerce")
    texts, labels = pack.intent_training_set()
    train = _write(work / "demo-train.jsonl", [{"text": t, "label": lab} for t, lab in zip(texts, labels, strict=True)])
    rows = [json.loads(line) for line in (ROOT / "tests/data/ecommerce_intents_heldout.jsonl").read_text().splitlines()]
    tests = {
        lang: _write(work / f"demo-heldout-{lang}.jsonl", [r for r in rows if r["lang"] == lang])
        for lang in ("en", "zh")
    }
    return train, tests


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "latency":
        parser = argparse.ArgumentParser()
        parser.add_argument("command")
        parser.add_argument("--model", type=Path, required=True)
        parser.add_argument("--data", type=Path, required=True)
        parser.add_argument("--threads", type=int, default=1)
        args = parser.parse_args()
        latency_main(args.model, args.data, args.threads)
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("banking77-train", "banking77-test", "clinc-train", "clinc-validation", "clinc-test"):
        parser.add_argument(f"--{name}", type=Path)
    for name in ("bitext-train", "bitext-validation", "bitext-test", "crosswoz"):
        parser.add_argument(f"--{name}", type=Path)
    parser.add_argument("--demo", action="store_true", help="the demo pack on its held-out phrasing")
    parser.add_argument("--only", help="run just this set (banking77, clinc150, bitext, crosswoz, demo)")
    parser.add_argument("--work", type=Path, help="keep models and reports here (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/intent.json")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="kefu-intent-bench-"))
    work.mkdir(parents=True, exist_ok=True)

    def wanted(name: str) -> bool:
        return args.only in (None, name)

    results: list[dict[str, Any]] = []
    previous = json.loads(args.out.read_text()) if args.out.is_file() and args.only else {}

    def record(result: dict[str, Any]) -> None:
        """Saved after every set, so a failure later keeps what was measured; --only keeps the other sets."""
        results.append(result)
        kept = [r for r in previous.get("results", []) if r["set"] not in {x["set"] for x in results}]
        report = {
            "benchmark": "intent",
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
            "when": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(sys.argv),
            "results": kept + results,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")

    if args.banking77_train and wanted("banking77"):
        if args.banking77_test:
            record(run_set("banking77", [args.banking77_train], args.banking77_test, work, test_kind="official test"))
        else:
            train, held = _split(args.banking77_train, work, "banking77")
            record(run_set("banking77", [train], held, work, test_kind="held-apart 15% of train"))
    if args.clinc_train and wanted("clinc150"):
        if args.clinc_test:
            record(
                run_set(
                    "clinc150",
                    [args.clinc_train],
                    args.clinc_test,
                    work,
                    validation=args.clinc_validation,
                    test_kind="official test",
                )
            )
        else:
            calib, held = _split(args.clinc_validation, work, "clinc150-validation", fraction=0.5)
            record(
                run_set(
                    "clinc150",
                    [args.clinc_train],
                    held,
                    work,
                    validation=calib,
                    test_kind="held-apart half of validation",
                )
            )
    if args.bitext_train and wanted("bitext"):
        if args.bitext_test:
            record(
                run_set(
                    "bitext",
                    [args.bitext_train],
                    args.bitext_test,
                    work,
                    validation=args.bitext_validation,
                    test_kind="official test",
                )
            )
        else:
            record(
                run_set("bitext", [args.bitext_train], args.bitext_validation, work, test_kind="official validation")
            )
    if args.crosswoz and wanted("crosswoz"):
        train, held = crosswoz_split(args.crosswoz, work)
        record(
            run_set(
                "crosswoz",
                [train],
                held,
                work,
                test_kind="held-apart fifth of dialogues",
                extra=["--min-examples", "1"],
            )
        )
    if args.demo and wanted("demo"):
        train, tests = demo_files(work)
        for lang, test in tests.items():
            record(run_set(f"demo-{lang}", [train], test, work, test_kind="held-out phrasing (tests/data)"))
    if not results:
        raise SystemExit("nothing to run: give at least one data set (see --help)")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
