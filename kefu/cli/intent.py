"""``kefu intent train | eval | predict``: intent models from JSONL files ``{"text", "label"}``."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from kefu.cli.common import console, fail
from kefu.nlu.dataset import OOS_LABEL, DatasetError, check_known_labels, read_many
from kefu.nlu.encoder import SentenceEncoder, Vectors, make_encoder
from kefu.nlu.model_store import ModelFormatError, load_model, read_meta, save_model

app = typer.Typer(help="Intent models: train, evaluate, predict.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="End with one JSON line of results.")]


def _encoders(names: Sequence[str]) -> dict[str, SentenceEncoder]:
    threads = max(1, os.cpu_count() or 1)
    return {name: make_encoder(name, threads) for name in names}


@contextmanager
def _progress() -> Iterator[Progress]:
    columns = (TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        yield progress


@app.command()
def train(
    data: Annotated[list[Path], typer.Option("--data", help="Training JSONL (repeatable).")],
    out: Annotated[Path, typer.Option("--out", help="Model folder to write.")],
    validation: Annotated[
        list[Path] | None, typer.Option("--validation", help="Held-out JSONL for calibration (repeatable).")
    ] = None,
    encoders: Annotated[
        str, typer.Option(help="Sentence encoders: auto, or a comma list of use-multilingual-v3, all-minilm-l6-v2.")
    ] = "auto",
    finetune: Annotated[str, typer.Option(help="Fine-tune MiniLM: auto (English data), yes or no.")] = "auto",
    min_examples: Annotated[int, typer.Option(min=1, help="Fewest examples a label may have.")] = 2,
    as_json: JsonFlag = False,
) -> None:
    """Train an intent model (label `oos` = out of scope) and save it to OUT."""
    from kefu.nlu.trainer import TrainOptions, required_encoders, train_intent_model

    if finetune not in ("auto", "yes", "no"):
        raise fail("--finetune must be auto, yes or no")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "meta.json").is_file())):
        raise fail(f"{out}: exists and is not a kefu model folder; choose another --out")
    options = TrainOptions(
        encoders=None if encoders == "auto" else tuple(e.strip() for e in encoders.split(",") if e.strip()),
        finetune=None if finetune == "auto" else finetune == "yes",
        min_examples=min_examples,
    )
    try:
        examples = read_many(data)
        held = read_many(validation) if validation else []
        names = required_encoders(examples, options)
        models = _encoders(names)
    except (DatasetError, ValueError) as exc:
        raise fail(str(exc)) from exc
    started = time.perf_counter()
    with _progress() as progress:
        tasks: dict[str, TaskID] = {}

        def show(stage: str, done: int, total: int) -> None:
            if stage not in tasks:  # a new stage: the earlier ones are finished
                for task in tasks.values():
                    progress.update(
                        task, completed=progress.tasks[task].total or 1, total=progress.tasks[task].total or 1
                    )
                tasks[stage] = progress.add_task(stage, total=total if total > 1 else None)
            if total > 1:
                progress.update(tasks[stage], completed=done)

        try:
            model = train_intent_model(examples, models, validation=held, options=options, progress=show)
        except (DatasetError, ValueError) as exc:
            raise fail(str(exc)) from exc
        show(f"saving to {out.name}", 1, 1)
        save_model(model, out, {"trained_from": [str(p) for p in data]})
        show("done", 1, 1)
    result = {
        "model": str(out),
        "examples": len(examples) + len(held),
        "labels": len(model.labels),
        "encoders": list(model.encoders),
        "finetuned": model.finetuned is not None,
        "out_of_scope_detector": model.oos is not None,
        "held_out_accuracy": model.info.get("held_out_accuracy"),
        "training_seconds": round(time.perf_counter() - started, 1),
    }
    print(
        f"trained {result['labels']} labels on {result['examples']} examples in {result['training_seconds']} s "
        f"(held-out accuracy {result['held_out_accuracy']:.1%}) -> {out}"
    )
    if as_json:
        print(json.dumps(result))


def _load(model_dir: Path) -> tuple[object, dict[str, SentenceEncoder]]:
    try:
        model = load_model(model_dir)
    except ModelFormatError as exc:
        raise fail(str(exc)) from exc
    return model, _encoders(model.encoders)


def _embed(encoders: dict[str, SentenceEncoder], texts: Sequence[str]) -> dict[str, Vectors]:
    return {name: encoder.encode(texts) for name, encoder in encoders.items()}


@app.command("eval")
def evaluate(
    model_dir: Annotated[Path, typer.Option("--model", help="A folder written by `kefu intent train`.")],
    data: Annotated[list[Path], typer.Option("--data", help="Labelled JSONL to score (repeatable).")],
    report: Annotated[Path | None, typer.Option(help="Write scores, tables and a confusion PNG here.")] = None,
    allow_unknown: Annotated[
        bool, typer.Option(help="Count rows with labels the model does not know as errors.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Accuracy, macro-F1, per-label scores; in-scope accuracy and OOS recall/precision when `oos` rows exist."""
    from kefu.nlu.intent_model import IntentModel
    from kefu.nlu.metrics import score
    from kefu.nlu.report import write_report

    try:
        examples = read_many(data)
        read_meta(model_dir)
    except (DatasetError, ModelFormatError) as exc:
        raise fail(str(exc)) from exc
    model, encoders = _load(model_dir)
    assert isinstance(model, IntentModel)
    if not allow_unknown:
        try:
            check_known_labels(examples, model.labels)
        except DatasetError as exc:
            raise fail(str(exc)) from exc
    texts = [e.text for e in examples]
    with _progress() as progress:
        task = progress.add_task("predicting", total=len(texts))
        predicted: list[str] = []
        for start in range(0, len(texts), 256):
            part = texts[start : start + 256]
            predicted.extend(model.decide(p) for p in model.predict_batch(part, _embed(encoders, part)))
            progress.update(task, completed=len(predicted))
    gold = [e.label for e in examples]
    scores = score(gold, predicted)
    _print_scores(scores)
    summary = scores.summary()
    if report is not None:
        written = write_report(report, scores, texts, gold, predicted)
        summary["report"] = str(report)
        console.print("report: " + ", ".join(str(p) for p in written))
    if as_json:
        print(json.dumps(summary))


def _print_scores(scores: object) -> None:
    from kefu.nlu.metrics import Scores

    assert isinstance(scores, Scores)
    table = Table(title="per label (weakest first)")
    for column in ("label", "precision", "recall", "F1", "n"):
        table.add_column(column, justify="left" if column == "label" else "right")
    for row in sorted(scores.per_label, key=lambda r: (r.f1, r.label))[:25]:
        table.add_row(row.label, f"{row.precision:.3f}", f"{row.recall:.3f}", f"{row.f1:.3f}", str(row.support))
    console.print(table)
    line = f"accuracy {scores.accuracy:.2%}  macro-F1 {scores.macro_f1:.4f}  ({scores.examples} examples)"
    if scores.in_scope_accuracy is not None:
        line += (
            f"  in-scope accuracy {scores.in_scope_accuracy:.2%}  OOS recall {scores.oos_recall:.2%}"
            f"  OOS precision {scores.oos_precision:.2%}"
        )
    print(line)


@app.command()
def predict(
    model_dir: Annotated[Path, typer.Option("--model", help="A folder written by `kefu intent train`.")],
    texts: Annotated[list[str], typer.Argument(help="Messages to classify.")],
    top: Annotated[int, typer.Option(min=1, max=50, help="How many intents to show per message.")] = 3,
    as_json: JsonFlag = False,
) -> None:
    """Ranked intents with calibrated confidences for each TEXT."""
    from kefu.nlu.intent_model import IntentModel

    if not any(t.strip() for t in texts):
        raise fail("give at least one non-empty TEXT")
    model, encoders = _load(model_dir)
    assert isinstance(model, IntentModel)
    clean = [t.strip() for t in texts if t.strip()]
    results = []
    for text, prediction in zip(clean, model.predict_batch(clean, _embed(encoders, clean), top=top), strict=True):
        decided = model.decide(prediction)
        ranked = [
            {"label": label, "confidence": round(score, 4)}
            for label, score in zip(prediction.labels, prediction.scores, strict=True)
        ]
        results.append({"text": text, "intent": decided, "out_of_scope": decided == OOS_LABEL, "ranked": ranked})
        print(
            f"{text}\n  -> {decided}"
            + (f" (out of scope, score {prediction.oos_score:.2f})" if decided == OOS_LABEL else "")
        )
        for item in ranked:
            print(f"     {item['confidence']:.3f}  {item['label']}")
    if as_json:
        print(json.dumps(results, ensure_ascii=False))
