"""A circuit breaker per model server: after repeated failures stop asking it for a while, so a dead
backend costs one fast refusal per turn instead of a timeout, then let one probe through to see if it is back."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half_open"]
STATE_VALUES: dict[State, int] = {"closed": 0, "half_open": 1, "open": 2}  # for the metric gauge


class CircuitBreaker:
    def __init__(
        self,
        *,
        failures_to_open: int = 3,
        cooldown_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures_to_open < 1:
            raise ValueError("failures_to_open must be at least 1")
        self.failures_to_open = failures_to_open
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.cooldown_s:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """May a call go out now? In half-open state only one probe at a time."""
        state = self.state
        if state == "closed":
            return True
        if state == "open" or self._probing:
            return False
        self._probing = True
        return True

    def release(self) -> None:
        """A granted call that never went out (no time left): let the next one probe."""
        self._probing = False

    def succeeded(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._probing = False

    def failed(self) -> None:
        self._probing = False
        self._failures += 1
        if self._opened_at is not None or self._failures >= self.failures_to_open:
            self._opened_at = self._clock()  # a failed probe opens it for another cool-down
