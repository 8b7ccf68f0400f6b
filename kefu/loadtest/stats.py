"""Samples of a load test and their summary: latency percentiles, throughput, errors by kind, a per-second
timeline. Latency is measured from the time a request was *scheduled*, not from when it was sent, so a
generator or server that falls behind shows up in the numbers (no coordinated omission)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

PERCENTILES = (50, 90, 99)


@dataclass(frozen=True, slots=True)
class Sample:
    """One request: when it was due (seconds after the run's start), how long until its answer (from the
    due time), how late the generator sent it, and what came back (``error`` None for a 2xx)."""

    scheduled_s: float
    latency_s: float
    send_lag_s: float
    status: int
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


def latency_summary(seconds: Iterable[float]) -> dict[str, Any]:
    """n, mean, p50, p90, p99 and max in milliseconds (None when there are no values)."""
    values = np.fromiter(seconds, dtype=np.float64) * 1000.0
    if values.size == 0:
        return {"n": 0, "mean_ms": None, **{f"p{q}_ms": None for q in PERCENTILES}, "max_ms": None}
    picked = np.percentile(values, PERCENTILES)
    return {
        "n": int(values.size),
        "mean_ms": round(float(values.mean()), 2),
        **{f"p{q}_ms": round(float(v), 2) for q, v in zip(PERCENTILES, picked, strict=True)},
        "max_ms": round(float(values.max()), 2),
    }


def error_kind(status: int) -> str | None:
    """None for a 2xx status, else ``http_<status>``."""
    return None if 200 <= status < 300 else f"http_{status}"


def timeline(samples: Sequence[Sample], duration_s: float) -> list[dict[str, Any]]:
    """One row per second of the schedule: requests due, answered ok, errors, latency p50/p99/max."""
    seconds = max(1, math.ceil(duration_s))
    buckets: list[list[Sample]] = [[] for _ in range(seconds)]
    for sample in samples:
        buckets[min(seconds - 1, max(0, int(sample.scheduled_s)))].append(sample)
    rows = []
    for second, bucket in enumerate(buckets):
        ok = [s.latency_s for s in bucket if s.ok]
        summary = latency_summary(ok)
        rows.append(
            {
                "second": second,
                "sent": len(bucket),
                "ok": len(ok),
                "errors": len(bucket) - len(ok),
                "p50_ms": summary["p50_ms"],
                "p99_ms": summary["p99_ms"],
                "max_ms": summary["max_ms"],
            }
        )
    return rows


def summarize(samples: Sequence[Sample], *, rps: float, duration_s: float, elapsed_s: float) -> dict[str, Any]:
    """The run's result. ``elapsed_s``: from the first due time to the last answer (or give-up), the window
    over which achieved throughput is counted; percentiles are over the requests answered with a 2xx."""
    ok = [s.latency_s for s in samples if s.ok]
    errors = Counter(s.error for s in samples if s.error is not None)
    window = max(elapsed_s, duration_s, 1e-9)
    return {
        "target_rps": rps,
        "duration_s": duration_s,
        "elapsed_s": round(elapsed_s, 3),
        "requests": len(samples),
        "ok": len(ok),
        "errors": sum(errors.values()),
        "errors_by_kind": dict(sorted(errors.items())),
        "offered_rps": round(len(samples) / duration_s, 2) if duration_s > 0 else None,
        "throughput_rps": round(len(ok) / window, 2),
        "latency": latency_summary(ok),
        "send_lag": latency_summary(s.send_lag_s for s in samples),
        "timeline": timeline(samples, duration_s),
    }
