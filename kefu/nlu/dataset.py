"""Labelled texts for intent training and evaluation: JSONL ``{"text", "label"}``, checked line by line.

Every problem names the file and the line, so an operator can fix the data instead of guessing.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

OOS_LABEL = "oos"  # the label that means "none of the intents" (CLINC150's convention)


class DatasetError(ValueError):
    """A training or evaluation file cannot be used; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    label: str
    source: str  # "file:line", for error messages


def read_examples(path: Path, *, max_text_chars: int = 4000) -> list[Example]:
    """Read one JSONL file; blank lines are skipped, anything else that is not a labelled text is an error."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read ({exc.strerror})") from exc
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DatasetError(f"{path}:{line}: not UTF-8 text") from exc
    examples: list[Example] = []
    for number, row_text in enumerate(content.splitlines(), start=1):
        if not row_text.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(row_text)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{where}: not JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise DatasetError(f"{where}: expected an object with 'text' and 'label'")
        text, label = row.get("text"), row.get("label")
        if not isinstance(text, str) or not text.strip():
            raise DatasetError(f"{where}: 'text' must be a non-empty string")
        if not isinstance(label, str) or not label.strip():
            raise DatasetError(f"{where}: 'label' must be a non-empty string")
        if len(text) > max_text_chars:
            raise DatasetError(f"{where}: text has {len(text)} characters (limit {max_text_chars})")
        examples.append(Example(text.strip(), label.strip(), where))
    if not examples:
        raise DatasetError(f"{path}: no examples (the file is empty)")
    return examples


def read_many(paths: Iterable[Path], *, max_text_chars: int = 4000) -> list[Example]:
    examples: list[Example] = []
    for path in paths:
        examples.extend(read_examples(path, max_text_chars=max_text_chars))
    return examples


def check_training_set(examples: Sequence[Example], *, min_examples: int = 2) -> None:
    """A label needs ``min_examples`` examples (one cannot be both learnt and checked); two labels at least."""
    counts = Counter(e.label for e in examples)
    in_scope = [label for label in counts if label != OOS_LABEL]
    if len(in_scope) < 2:
        raise DatasetError(f"training needs at least two labels besides {OOS_LABEL!r}; found {sorted(counts)}")
    rare = sorted(label for label, n in counts.items() if n < min_examples)
    if rare:
        first = {e.label: e.source for e in reversed(examples)}
        shown = ", ".join(f"{label!r} ({counts[label]}, {first[label]})" for label in rare[:5])
        more = f" and {len(rare) - 5} more" if len(rare) > 5 else ""
        raise DatasetError(
            f"{len(rare)} label(s) with fewer than {min_examples} examples: {shown}{more}; "
            "add examples or lower --min-examples"
        )


def check_known_labels(examples: Sequence[Example], known: Iterable[str]) -> None:
    """Evaluation data may only use labels the model knows (``oos`` is always allowed)."""
    known_set = {*known, OOS_LABEL}
    unknown = [e for e in examples if e.label not in known_set]
    if unknown:
        labels = sorted({e.label for e in unknown})
        raise DatasetError(
            f"{unknown[0].source}: label {unknown[0].label!r} is not one the model knows "
            f"({len(unknown)} row(s), {len(labels)} label(s): {', '.join(labels[:5])}); "
            "use --allow-unknown to count them as errors"
        )


def stratified_split(
    labels: Sequence[str], fraction: float, seed: int = 0
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Indices (train, held) with about ``fraction`` of every label held out, at least one kept for training."""
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    train: list[int] = []
    held: list[int] = []
    for indices in by_label.values():
        order = rng.permutation(indices)
        n_held = min(round(len(order) * fraction), len(order) - 1)
        held.extend(int(i) for i in order[:n_held])
        train.extend(int(i) for i in order[n_held:])
    return np.array(sorted(train), dtype=np.int64), np.array(sorted(held), dtype=np.int64)
