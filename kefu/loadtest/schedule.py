"""When an open-loop load test sends each request: a Poisson process (independent customers) or a fixed
interval, fixed in advance from the rate, the duration and a seed. The same schedules feed the vLLM
simulator's capacity plans in virtual time (``bench/capacity.py``)."""

from __future__ import annotations

import random
from typing import Literal

Arrival = Literal["poisson", "fixed"]
ARRIVALS: tuple[str, ...] = ("poisson", "fixed")
MAX_REQUESTS = 2_000_000  # one schedule's bound: a typo in --rps must not exhaust memory


def arrival_offsets(rps: float, duration_s: float, arrival: str = "poisson", seed: int = 0) -> list[float]:
    """Send times in seconds from the start, ascending, all before ``duration_s``. ``poisson``: gaps drawn
    from an exponential distribution of mean 1/rps; ``fixed``: exactly 1/rps apart, starting at 0."""
    if rps <= 0 or duration_s <= 0:
        raise ValueError("rps and duration must be positive")
    if rps * duration_s > MAX_REQUESTS:
        raise ValueError(f"{rps:g} requests/s for {duration_s:g} s exceeds {MAX_REQUESTS:,} requests")
    if arrival == "fixed":
        count = int(rps * duration_s - 1e-9) + 1
        return [i / rps for i in range(count) if i / rps < duration_s]
    if arrival != "poisson":
        raise ValueError(f"unknown arrival process {arrival!r}; expected one of: {', '.join(ARRIVALS)}")
    rng = random.Random(seed)
    offsets: list[float] = []
    t = rng.expovariate(rps)
    while t < duration_s:
        offsets.append(t)
        t += rng.expovariate(rps)
    return offsets
