"""The nearest-example member: each label's mean of its closest examples, computed in bounded chunks."""

from __future__ import annotations

import numpy as np
import pytest

from kefu.nlu import neighbours
from kefu.nlu.neighbours import NeighbourMember, normalise


def reference(query: np.ndarray, memory: np.ndarray, targets: np.ndarray, labels: int) -> np.ndarray:
    """Straight from the definition, one message and one label at a time."""
    sims = normalise(query) @ normalise(memory).T
    out = np.zeros((len(query), labels))
    for row in range(len(query)):
        for label in range(labels):
            mine = np.sort(sims[row, targets == label])[::-1][: neighbours.NEIGHBOURS]
            out[row, label] = mine.mean()
    return out


@pytest.mark.parametrize("budget", [neighbours.SLOT_BUDGET, 50, 1])
def test_similarities_match_the_definition_in_any_chunking(monkeypatch: pytest.MonkeyPatch, budget: int) -> None:
    rng = np.random.default_rng(0)
    targets = np.array([0] * 40 + [1] * 7 + [2] * 2 + [3] * 1, dtype=np.int64)  # uneven, two below k
    memory = rng.normal(size=(len(targets), 16)).astype(np.float32)
    query = rng.normal(size=(23, 16)).astype(np.float32)
    monkeypatch.setattr(neighbours, "SLOT_BUDGET", budget)
    member = NeighbourMember({"e": memory}, targets, 4)
    got = member.similarities({"e": query})
    assert got.shape == (23, 4)
    assert np.allclose(got, reference(query, memory, targets, 4), atol=1e-5)
