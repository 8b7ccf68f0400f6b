"""Timing helpers for the guard's speed tests: CPU time of this thread, so neighbours on a shared machine
do not count."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any


def p99_thread_seconds(check: Callable[[str], Any], texts: Sequence[str], *, rounds: int) -> float:
    """The 99th percentile of ``check``'s CPU time over ``texts``, each run ``rounds`` times after a warm-up."""
    for text in texts[:10]:
        check(text)
    costs = []
    for text in list(texts) * rounds:
        started = time.thread_time()
        check(text)
        costs.append(time.thread_time() - started)
    costs.sort()
    return costs[int(len(costs) * 0.99)]
