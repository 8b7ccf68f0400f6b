"""The nearest-example member: how close a message comes to each label's closest training examples.

It errs differently from the linear head (it remembers rare phrasings the head averages away), and the
closeness to *any* training example is the strongest single sign that a message is out of scope.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
NEIGHBOURS = 3  # the mean of a label's best three similarities: one lucky match is not enough
SLOT_BUDGET = 4_000_000  # similarities held at once while ranking each label's examples (16 MB in float32)


def normalise(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    result: npt.NDArray[np.float32] = (vectors / np.maximum(norms, 1e-9)).astype(np.float32)
    return result


class NeighbourMember:
    def __init__(
        self, memory: Mapping[str, npt.NDArray[np.float32]], targets: npt.NDArray[np.int64], n_labels: int
    ) -> None:
        self.encoders = tuple(sorted(memory))
        # One matrix of all encoders side by side, each part unit length: the dot product is the mean cosine.
        self.memory = np.hstack([normalise(memory[name]) for name in self.encoders]) / np.sqrt(len(self.encoders))
        self.targets = targets
        self.n_labels = n_labels
        self._slots = _label_slots(targets, n_labels)

    def _query(self, vectors: Mapping[str, npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]:
        parts = [normalise(np.asarray(vectors[name], dtype=np.float32)) for name in self.encoders]
        return np.hstack(parts) / np.float32(np.sqrt(len(self.encoders)))

    def similarities(self, vectors: Mapping[str, npt.NDArray[np.float32]]) -> Floats:
        """(messages, labels): each label's mean similarity over its ``NEIGHBOURS`` closest examples."""
        query = self._query(vectors)
        k = min(NEIGHBOURS, self._slots.shape[1])
        counts = np.clip((self._slots < len(self.targets)).sum(axis=1), 1, k)
        result: Floats = np.zeros((len(query), self.n_labels))
        # Messages in chunks: the (messages, labels, slots) block below was 0.5 GB for CLINC150's 775
        # held-out rows (151 labels padded to the largest label's count), the training's peak.
        chunk = max(1, SLOT_BUDGET // max(1, self._slots.size))
        for start in range(0, len(query), chunk):
            sims = query[start : start + chunk] @ self.memory.T
            # (messages, labels, slots): each label's examples side by side, padding at -1 (below any cosine).
            padded = np.concatenate([sims, np.full((len(sims), 1), -1.0, dtype=sims.dtype)], axis=1)[:, self._slots]
            best = np.partition(padded, padded.shape[2] - k, axis=2)[:, :, -k:]
            # A label with fewer than k examples averages what it has (the padding is not counted).
            result[start : start + chunk] = np.where(best > -1.0, best, 0.0).sum(axis=2) / counts
        return result

    def state(self) -> dict[str, Any]:
        return {
            "encoders": list(self.encoders),
            "memory": self.memory.astype(np.float16),
            "targets": self.targets,
            "n_labels": self.n_labels,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> NeighbourMember:
        member = cls.__new__(cls)
        member.encoders = tuple(state["encoders"])
        member.memory = np.asarray(state["memory"], dtype=np.float32)
        member.targets = np.asarray(state["targets"], dtype=np.int64)
        member.n_labels = int(state["n_labels"])
        member._slots = _label_slots(member.targets, member.n_labels)
        return member


def _label_slots(targets: npt.NDArray[np.int64], n_labels: int) -> npt.NDArray[np.int64]:
    """(labels, most examples of a label): the rows of each label's examples; ``len(targets)`` pads."""
    counts = np.bincount(targets, minlength=n_labels)
    slots = np.full((n_labels, max(1, int(counts.max()))), len(targets), dtype=np.int64)
    for label in range(n_labels):
        rows = np.flatnonzero(targets == label)
        slots[label, : len(rows)] = rows
    return slots
