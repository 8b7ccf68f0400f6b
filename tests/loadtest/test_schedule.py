"""The schedule of an open-loop test: Poisson or fixed-interval send times, fixed by rate, duration and seed."""

from __future__ import annotations

import itertools
import statistics

import pytest

from kefu.loadtest.schedule import MAX_REQUESTS, arrival_offsets


def test_poisson_arrivals_have_the_asked_rate_and_exponential_gaps() -> None:
    offsets = arrival_offsets(200, 60, "poisson", seed=3)
    assert offsets == sorted(offsets) and offsets[0] >= 0 and offsets[-1] < 60
    assert abs(len(offsets) - 12_000) < 4 * 12_000**0.5  # Poisson count: within 4 standard deviations
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    assert statistics.mean(gaps) == pytest.approx(1 / 200, rel=0.05)
    # An exponential distribution's standard deviation equals its mean (a fixed interval's is 0).
    assert statistics.stdev(gaps) == pytest.approx(1 / 200, rel=0.1)


def test_the_same_seed_gives_the_same_schedule_and_another_seed_another() -> None:
    assert arrival_offsets(50, 10, seed=1) == arrival_offsets(50, 10, seed=1)
    assert arrival_offsets(50, 10, seed=1) != arrival_offsets(50, 10, seed=2)


def test_fixed_arrivals_are_evenly_spaced() -> None:
    offsets = arrival_offsets(4, 2.0, "fixed")
    assert offsets == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
    assert len(arrival_offsets(300, 60, "fixed")) == 18_000


@pytest.mark.parametrize(
    ("rps", "duration", "arrival", "message"),
    [
        (0, 10, "poisson", "positive"),
        (10, -1, "fixed", "positive"),
        (10, 10, "bursty", "unknown arrival process 'bursty'"),
        (MAX_REQUESTS, 2, "poisson", "exceeds"),
    ],
)
def test_bad_schedules_are_refused(rps: float, duration: float, arrival: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        arrival_offsets(rps, duration, arrival)
