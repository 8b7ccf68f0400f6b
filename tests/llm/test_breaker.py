"""The circuit breaker: opens after repeated failures, lets one probe through after the cool-down."""

from __future__ import annotations

import pytest

from kefu.llm.breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_and_refuses_at_once() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures_to_open=3, cooldown_s=10, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.failed()
    assert breaker.state == "closed"
    assert breaker.allow()
    breaker.failed()
    assert breaker.state == "open"
    assert not breaker.allow()


def test_a_success_resets_the_count() -> None:
    breaker = CircuitBreaker(failures_to_open=2, clock=Clock())
    breaker.failed()
    breaker.succeeded()
    breaker.failed()
    assert breaker.state == "closed"


def test_half_open_lets_exactly_one_probe_through() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures_to_open=1, cooldown_s=10, clock=clock)
    breaker.failed()
    clock.now += 9.9
    assert not breaker.allow()
    clock.now += 0.2
    assert breaker.state == "half_open"
    assert breaker.allow()
    assert not breaker.allow()  # a second caller waits for the probe's verdict
    breaker.succeeded()
    assert breaker.state == "closed"
    assert breaker.allow()


def test_a_failed_probe_opens_it_for_another_cool_down() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures_to_open=1, cooldown_s=10, clock=clock)
    breaker.failed()
    clock.now += 11
    assert breaker.allow()
    breaker.failed()
    assert breaker.state == "open"
    clock.now += 5
    assert not breaker.allow()


def test_a_released_probe_lets_the_next_caller_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures_to_open=1, cooldown_s=1, clock=clock)
    breaker.failed()
    clock.now += 2
    assert breaker.allow()
    breaker.release()
    assert breaker.allow()


def test_refuses_a_threshold_below_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        CircuitBreaker(failures_to_open=0)
