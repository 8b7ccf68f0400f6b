"""Scores the guard on labelled JSONL sets (the format of ``tests/data/guard``): PII precision and recall
per type, non-PII numbers left intact, injection detection rates, moderation per category."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kefu.core.types import Span

Detector = Callable[[str], Sequence[Span]]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def score_pii(rows: Iterable[Mapping[str, Any]], detect: Detector) -> dict[str, Any]:
    """A gold span counts as found when a predicted span of the same type overlaps it and every letter or
    digit of the gold span is inside some predicted span (nothing of the value is left readable). A
    predicted span is right when it overlaps a gold span of its type."""
    found: Counter[str] = Counter()
    gold: Counter[str] = Counter()
    predicted: Counter[str] = Counter()
    right: Counter[str] = Counter()
    keep_total = keep_intact = 0
    misses: list[dict[str, Any]] = []
    false_alarms: list[dict[str, Any]] = []
    for row in rows:
        text = row["text"]
        spans = list(detect(text))
        covered = [False] * len(text)
        for s in spans:
            covered[s.start : s.end] = [True] * (s.end - s.start)
        for g in row["pii"]:
            gold[g["type"]] += 1
            same = [s for s in spans if s.type == g["type"] and _overlaps((s.start, s.end), (g["start"], g["end"]))]
            readable = any(text[i].isalnum() and not covered[i] for i in range(g["start"], g["end"]))
            if same and not readable:
                found[g["type"]] += 1
            else:
                misses.append({"type": g["type"], "value": text[g["start"] : g["end"]], "text": text})
        for s in spans:
            predicted[s.type] += 1
            if any(g["type"] == s.type and _overlaps((s.start, s.end), (g["start"], g["end"])) for g in row["pii"]):
                right[s.type] += 1
            elif not any(_overlaps((s.start, s.end), (g["start"], g["end"])) for g in row["pii"]):
                false_alarms.append({"type": s.type, "value": s.text, "text": text})
        for k in row.get("keep", []):
            keep_total += 1
            if not any(_overlaps((s.start, s.end), (k["start"], k["end"])) for s in spans):
                keep_intact += 1
    types = sorted(set(gold) | set(predicted))
    per_type = {
        t: {
            "gold": gold[t],
            "recall": _ratio(found[t], gold[t]),
            "precision": _ratio(right[t], predicted[t]),
        }
        for t in types
    }
    return {
        "per_type": per_type,
        "keep_total": keep_total,
        "keep_intact": _ratio(keep_intact, keep_total),
        "misses": misses,
        "false_alarms": false_alarms,
    }


def score_binary(rows: Iterable[Mapping[str, Any]], flagged: Callable[[str], bool]) -> dict[str, Any]:
    """Injection sets: ``label`` attack/benign, ``category`` per row."""
    by_category: dict[str, list[int]] = {}
    errors: list[dict[str, Any]] = []
    attacks = hits = benign = alarms = 0
    for row in rows:
        is_attack = row["label"] == "attack"
        result = flagged(row["text"])
        counts = by_category.setdefault(row["category"], [0, 0])
        counts[0] += 1
        counts[1] += int(result)
        if is_attack:
            attacks += 1
            hits += int(result)
        else:
            benign += 1
            alarms += int(result)
        if result != is_attack:
            errors.append({"label": row["label"], "category": row["category"], "text": row["text"]})
    return {
        "tpr": _ratio(hits, attacks),
        "fpr": _ratio(alarms, benign),
        "attacks": attacks,
        "benign": benign,
        "flagged_share_by_category": {c: _ratio(n, total) for c, (total, n) in sorted(by_category.items())},
        "errors": errors,
    }


def score_categories(rows: Iterable[Mapping[str, Any]], categorise: Callable[[str], Sequence[str]]) -> dict[str, Any]:
    """Moderation sets: ``categories`` per row ([] is clean)."""
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    clean = clean_flagged = flagged_rows = unclean = 0
    errors: list[dict[str, Any]] = []
    for row in rows:
        gold = set(row["categories"])
        got = set(categorise(row["text"]))
        for c in got & gold:
            tp[c] += 1
        for c in got - gold:
            fp[c] += 1
        for c in gold - got:
            fn[c] += 1
        if gold:
            unclean += 1
            flagged_rows += int(bool(got))
        else:
            clean += 1
            clean_flagged += int(bool(got))
        if got != gold:
            errors.append({"gold": sorted(gold), "got": sorted(got), "text": row["text"]})
    categories = sorted(set(tp) | set(fp) | set(fn))
    return {
        "per_category": {
            c: {"precision": _ratio(tp[c], tp[c] + fp[c]), "recall": _ratio(tp[c], tp[c] + fn[c])} for c in categories
        },
        "flagged_recall": _ratio(flagged_rows, unclean),
        "clean_flagged": _ratio(clean_flagged, clean),
        "errors": errors,
    }


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
