"""Reading and checking labelled JSONL: every problem names the file and the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kefu.nlu.dataset import (
    DatasetError,
    Example,
    check_known_labels,
    check_training_set,
    read_examples,
    read_many,
    stratified_split,
)


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def row(text: str, label: str) -> str:
    return json.dumps({"text": text, "label": label}, ensure_ascii=False)


def test_reads_rows_skips_blank_lines_and_keeps_the_source(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", [row("hello", "greet"), "", row("  退款  ", "refund")])
    examples = read_examples(path)
    assert [(e.text, e.label) for e in examples] == [("hello", "greet"), ("退款", "refund")]
    assert examples[1].source == f"{path}:3"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("{not json", "not JSON"),
        ('["text", "label"]', "expected an object"),
        ('{"text": "hi"}', "'label' must be a non-empty string"),
        ('{"text": "", "label": "x"}', "'text' must be a non-empty string"),
        ('{"text": 5, "label": "x"}', "'text' must be a non-empty string"),
        ('{"text": "hi", "label": ""}', "'label' must be a non-empty string"),
    ],
)
def test_a_bad_line_is_named_with_its_number(tmp_path: Path, line: str, expected: str) -> None:
    path = write(tmp_path / "bad.jsonl", [row("fine", "a"), line])
    with pytest.raises(DatasetError, match=rf"bad\.jsonl:2: {expected}"):
        read_examples(path)


def test_empty_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no examples"):
        read_examples(write(tmp_path / "empty.jsonl", [""]))
    with pytest.raises(DatasetError, match="no such file"):
        read_examples(tmp_path / "absent.jsonl")
    binary = tmp_path / "blob.jsonl"
    binary.write_bytes(row("ok", "a").encode() + b"\n\xff\xfe\x00garbage\n")
    with pytest.raises(DatasetError, match=r"blob\.jsonl:2: not UTF-8"):
        read_examples(binary)


def test_overlong_text_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="limit 10"):
        read_examples(write(tmp_path / "long.jsonl", [row("x" * 11, "a")]), max_text_chars=10)


def test_read_many_concatenates_in_order(tmp_path: Path) -> None:
    a = write(tmp_path / "a.jsonl", [row("one", "x")])
    b = write(tmp_path / "b.jsonl", [row("two", "y")])
    assert [e.text for e in read_many([a, b])] == ["one", "two"]


def test_training_set_checks() -> None:
    def ex(label: str, n: int) -> list[Example]:
        return [Example(f"{label} {i}", label, f"f:{i}") for i in range(n)]

    check_training_set(ex("a", 2) + ex("b", 2))
    with pytest.raises(DatasetError, match=r"fewer than 2 examples: 'b' \(1, f:0\)"):
        check_training_set(ex("a", 3) + ex("b", 1))
    check_training_set(ex("a", 3) + ex("b", 1), min_examples=1)
    with pytest.raises(DatasetError, match="at least two labels"):
        check_training_set(ex("a", 5) + ex("oos", 5))


def test_unknown_labels_at_evaluation_are_named() -> None:
    rows = [Example("x", "a", "t:1"), Example("y", "oos", "t:2"), Example("z", "zzz", "t:3")]
    check_known_labels(rows[:2], ["a"])
    with pytest.raises(DatasetError, match=r"t:3: label 'zzz' is not one the model knows"):
        check_known_labels(rows, ["a"])


def test_stratified_split_holds_out_each_label_and_keeps_one() -> None:
    labels = ["a"] * 20 + ["b"] * 10 + ["c"] * 1
    train, held = stratified_split(labels, 0.2, seed=3)
    assert sorted([*train, *held]) == list(range(len(labels)))
    held_labels = [labels[i] for i in held]
    assert held_labels.count("a") == 4 and held_labels.count("b") == 2 and "c" not in held_labels
    assert list(stratified_split(labels, 0.2, seed=3)[1]) == list(held)  # seeded: repeatable
