"""`kefu intent train | eval | predict` as an operator runs them, including bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kefu.packs.loader import load_pack
from tests.cli.test_cli import kefu

FAST = ("--encoders", "use-multilingual-v3", "--finetune", "no")


def write(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"text": t, "label": lab}, ensure_ascii=False) + "\n" for t, lab in rows))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Five demo intents (zh + en) plus out-of-scope rows as ``oos``; every fifth example held apart."""
    folder = tmp_path_factory.mktemp("intent-cli")
    pack = load_pack("ecommerce")
    keep = {
        "order_status": "order_status",
        "cancel_order": "cancel_order",
        "invoice": "invoice",
        "greeting": "greeting",
        "return_refund": "return_refund",
        "out_of_scope": "oos",
    }
    train, test = [], []
    for examples in pack.intent_examples.values():
        for intent, texts in examples.items():
            if intent in keep:
                for i, text in enumerate(texts[:40]):
                    (test if i % 5 == 0 else train).append((text, keep[intent]))
    return {"train": write(folder / "train.jsonl", train), "test": write(folder / "test.jsonl", test), "folder": folder}


@pytest.fixture(scope="module")
def model(data: dict[str, Path]) -> Path:
    out = data["folder"] / "model"
    done = kefu("intent", "train", "--data", str(data["train"]), "--out", str(out), "--json", *FAST)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["labels"] == 6 and result["out_of_scope_detector"] is True and result["finetuned"] is False
    assert "fine-tuning" not in done.stderr and "linear head" in done.stderr  # the progress display
    return out


def test_eval_scores_with_out_of_scope_measures_and_a_report(model: Path, data: dict[str, Path]) -> None:
    report = data["folder"] / "report"
    done = kefu("intent", "eval", "--model", str(model), "--data", str(data["test"]), "--json", "--report", str(report))
    assert done.returncode == 0, done.stderr
    scores = json.loads(done.stdout.strip().splitlines()[-1])
    assert scores["accuracy"] >= 0.85 and scores["macro_f1"] >= 0.8
    assert scores["in_scope_accuracy"] >= 0.85 and "oos_recall" in scores
    assert (report / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    per_label = (report / "per_label.csv").read_text().splitlines()
    assert per_label[0] == "label,precision,recall,f1,support" and len(per_label) == 7


def test_predict_ranks_intents_with_confidences(model: Path) -> None:
    done = kefu(
        "intent", "predict", "--model", str(model), "--json", "我的订单100001到哪了", "what's the weather on Mars"
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert results[0]["intent"] == "order_status" and results[1]["intent"] == "oos"
    confidences = [r["confidence"] for r in results[0]["ranked"]]
    assert confidences == sorted(confidences, reverse=True) and 0 < confidences[0] <= 1


def test_bad_training_input_names_the_file_and_line_and_writes_nothing(data: dict[str, Path]) -> None:
    folder = data["folder"]
    bad = folder / "bad.jsonl"
    bad.write_text(data["train"].read_text() + "{oops\n")
    out = folder / "never"
    done = kefu("intent", "train", "--data", str(bad), "--out", str(out), *FAST)
    lines = len(data["train"].read_text().splitlines()) + 1
    assert done.returncode == 2 and f"bad.jsonl:{lines}: not JSON" in done.stderr
    assert not out.exists()
    empty = write(folder / "empty.jsonl", [])
    done = kefu("intent", "train", "--data", str(empty), "--out", str(out), *FAST)
    assert done.returncode == 2 and "no examples" in done.stderr
    single = write(folder / "single.jsonl", [("hi", "greet"), ("hello", "greet"), ("bye", "leave")])
    done = kefu("intent", "train", "--data", str(single), "--out", str(out), *FAST)
    assert done.returncode == 2 and "'leave' (1, " in done.stderr and "--min-examples" in done.stderr
    assert not out.exists()
    (folder / "notes").mkdir()
    (folder / "notes" / "keep.txt").write_text("mine")
    done = kefu("intent", "train", "--data", str(data["train"]), "--out", str(folder / "notes"), *FAST)
    assert done.returncode == 2 and "not a kefu model folder" in done.stderr
    assert (folder / "notes" / "keep.txt").read_text() == "mine"


def test_eval_refuses_unknown_labels_unless_allowed(model: Path, data: dict[str, Path]) -> None:
    odd = write(data["folder"] / "odd.jsonl", [("where is my order", "order_status"), ("pay my tax", "taxes")])
    done = kefu("intent", "eval", "--model", str(model), "--data", str(odd))
    assert done.returncode == 2 and "odd.jsonl:2: label 'taxes' is not one the model knows" in done.stderr
    done = kefu("intent", "eval", "--model", str(model), "--data", str(odd), "--allow-unknown", "--json")
    assert done.returncode == 0 and json.loads(done.stdout.strip().splitlines()[-1])["accuracy"] <= 0.5


def test_a_model_from_another_version_is_refused(model: Path, data: dict[str, Path]) -> None:
    old = data["folder"] / "old-model"
    shutil.copytree(model, old)
    meta = json.loads((old / "meta.json").read_text())
    (old / "meta.json").write_text(json.dumps({**meta, "format": 1, "kefu_version": "0.0.1"}))
    done = kefu("intent", "predict", "--model", str(old), "hello")
    assert done.returncode == 2 and "train the model again" in done.stderr
    done = kefu("intent", "eval", "--model", str(data["folder"]), "--data", str(data["test"]))
    assert done.returncode == 2 and "no meta.json" in done.stderr
