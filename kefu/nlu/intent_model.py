"""An intent model: an ensemble of members, calibrated on held-out data, with an out-of-scope detector.

Members (each gives log-probabilities over the labels):
- ``linear``: embeddings from the frozen encoders plus n-grams into a logistic head (always present);
- ``neighbours``: similarity to each label's closest training examples;
- ``finetuned``: the English MiniLM fine-tuned end to end (optional, English data);
- ``finetuned_neighbours``: nearest training examples in the fine-tuned embedding space (same pass).

The ensemble adds the members' log-probabilities with weights, then divides by a temperature; weights and
temperature are chosen on held-out data so that the confidences are calibrated. When the training data has
``oos`` rows, a small logistic detector over confidence signals (top probability, margin, entropy, the
``oos`` probability, closeness to the nearest training example) decides out-of-scope with a threshold
chosen on held-out data: it separates far better than a threshold on one model's top probability.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from kefu.nlu.dataset import OOS_LABEL
from kefu.nlu.finetuned import FinetunedMember
from kefu.nlu.linear import LinearMember, log_softmax
from kefu.nlu.neighbours import NeighbourMember

Floats = npt.NDArray[np.float64]
Vectors = npt.NDArray[np.float32]
FINETUNED_SPACE = "finetuned"  # the memory key of embeddings from the fine-tuned encoder
NEIGHBOUR_TEMPERATURE = 0.05  # cosine similarities live in a narrow band: sharpen before the softmax
BATCH = 256


@dataclass(frozen=True, slots=True)
class Prediction:
    labels: tuple[str, ...]  # best first
    scores: tuple[float, ...]  # calibrated probabilities
    out_of_scope: bool = False
    oos_score: float = 0.0  # the detector's probability that the message is out of scope


@dataclass(frozen=True)
class OosDetector:
    weights: Floats
    bias: float
    threshold: float

    def probability(self, signals: Floats) -> Floats:
        result: Floats = 1.0 / (1.0 + np.exp(-(signals @ self.weights + self.bias)))
        return result


@dataclass
class Calibration:
    weights: dict[str, float] = field(default_factory=lambda: {"linear": 1.0})
    temperature: float = 1.0


class IntentModel:
    def __init__(
        self,
        labels: Sequence[str],
        linear: LinearMember,
        neighbours: NeighbourMember | None = None,
        finetuned: FinetunedMember | None = None,
        calibration: Calibration | None = None,
        oos: OosDetector | None = None,
        info: dict[str, Any] | None = None,
        finetuned_neighbours: NeighbourMember | None = None,
    ) -> None:
        self.labels = tuple(labels)
        self.linear = linear
        self.neighbours = neighbours
        self.finetuned = finetuned
        self.finetuned_neighbours = finetuned_neighbours
        self.calibration = calibration or Calibration()
        self.oos = oos
        self.info = info or {}
        self._oos_index = self.labels.index(OOS_LABEL) if OOS_LABEL in self.labels else None

    @property
    def encoders(self) -> tuple[str, ...]:
        names = set(self.linear.encoders)
        if self.neighbours is not None:
            names.update(self.neighbours.encoders)
        return tuple(sorted(names))

    # ---------------------------------------------------------------- scoring
    def member_scores(
        self, texts: Sequence[str], vectors: Mapping[str, Vectors], *, every: bool = True
    ) -> dict[str, Floats]:
        """The members' log-probabilities, plus ``similarity`` (closeness to the nearest example).
        Without ``every``, members the calibration gives no weight are skipped (time on the hot path)."""

        def needed(name: str) -> bool:
            return every or bool(self.calibration.weights.get(name))

        scores = {"linear": self.linear.log_proba(texts, vectors)}
        if self.neighbours is not None and (needed("neighbours") or self.oos is not None):
            sims = self.neighbours.similarities(vectors)
            scores["neighbours"] = log_softmax(sims / NEIGHBOUR_TEMPERATURE)
            in_scope = sims if self._oos_index is None else np.delete(sims, self._oos_index, axis=1)
            scores["similarity"] = in_scope.max(axis=1, keepdims=True)
        wants_finetuned = needed("finetuned") or needed("finetuned_neighbours") or self.oos is not None
        if self.finetuned is not None and wants_finetuned:  # the detector's signals include it
            scores["finetuned"], embeddings = self.finetuned.forward(texts)
            if self.finetuned_neighbours is not None and needed("finetuned_neighbours"):
                sims = self.finetuned_neighbours.similarities({FINETUNED_SPACE: embeddings})
                scores["finetuned_neighbours"] = log_softmax(sims / NEIGHBOUR_TEMPERATURE)
        return scores

    def combine(self, scores: Mapping[str, Floats], calibration: Calibration | None = None) -> Floats:
        cal = calibration or self.calibration
        total = sum(weight * scores[name] for name, weight in cal.weights.items() if weight and name in scores)
        return log_softmax(np.asarray(total) / cal.temperature)

    def oos_signals(self, scores: Mapping[str, Floats], log_proba: Floats) -> Floats:
        proba = np.exp(log_proba)
        ranked = np.sort(proba, axis=1)
        columns = [
            ranked[:, -1],
            ranked[:, -1] - ranked[:, -2],
            -(proba * log_proba).sum(axis=1) / np.log(proba.shape[1]),
            proba[:, self._oos_index] if self._oos_index is not None else np.zeros(len(proba)),
            scores["similarity"][:, 0] if "similarity" in scores else np.zeros(len(proba)),
        ]
        if "finetuned" in scores:
            columns.append(np.exp(scores["finetuned"]).max(axis=1))
        return np.column_stack(columns)

    # ---------------------------------------------------------------- prediction
    def predict_batch(self, texts: Sequence[str], vectors: Mapping[str, Vectors], top: int = 5) -> list[Prediction]:
        results: list[Prediction] = []
        for start in range(0, len(texts), BATCH):
            part = {name: v[start : start + BATCH] for name, v in vectors.items()}
            results.extend(self._predict(texts[start : start + BATCH], part, top))
        return results

    def predict(self, text: str, vectors: Mapping[str, Vectors], top: int = 5) -> Prediction:
        """One message; ``vectors`` holds its embedding per encoder (1-D or one row)."""
        rows = {name: np.asarray(v, dtype=np.float32).reshape(1, -1) for name, v in vectors.items()}
        return self._predict([text], rows, top)[0]

    def _predict(self, texts: Sequence[str], vectors: Mapping[str, Vectors], top: int) -> list[Prediction]:
        scores = self.member_scores(texts, vectors, every=False)
        log_proba = self.combine(scores)
        oos_scores = self.oos.probability(self.oos_signals(scores, log_proba)) if self.oos is not None else None
        proba = np.exp(log_proba)
        order = np.argsort(-proba, axis=1)[:, :top]
        results = []
        for row in range(len(texts)):
            ranked = order[row]
            labels = tuple(self.labels[i] for i in ranked)
            oos_score = float(oos_scores[row]) if oos_scores is not None else 0.0
            out = labels[0] == OOS_LABEL or (self.oos is not None and oos_score >= self.oos.threshold)
            results.append(Prediction(labels, tuple(float(proba[row, i]) for i in ranked), out, oos_score))
        return results

    def decide(self, prediction: Prediction) -> str:
        """The label a caller should act on: ``oos`` when the detector says so."""
        return OOS_LABEL if prediction.out_of_scope and self._oos_index is not None else prediction.labels[0]

    # ---------------------------------------------------------------- persistence (kefu.nlu.model_store)
    def state(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "linear": self.linear.state(),
            "neighbours": self.neighbours.state() if self.neighbours is not None else None,
            "finetuned_neighbours": (
                self.finetuned_neighbours.state() if self.finetuned_neighbours is not None else None
            ),
            "calibration": {"weights": self.calibration.weights, "temperature": self.calibration.temperature},
            "oos": (
                {"weights": self.oos.weights, "bias": self.oos.bias, "threshold": self.oos.threshold}
                if self.oos is not None
                else None
            ),
            "info": self.info,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], finetuned_folder: Path | None = None, threads: int = 1) -> IntentModel:
        labels = state["labels"]
        oos = state.get("oos")
        return cls(
            labels,
            LinearMember.from_state(state["linear"]),
            NeighbourMember.from_state(state["neighbours"]) if state.get("neighbours") else None,
            FinetunedMember.load(finetuned_folder, len(labels), threads) if finetuned_folder is not None else None,
            Calibration(dict(state["calibration"]["weights"]), float(state["calibration"]["temperature"])),
            OosDetector(np.asarray(oos["weights"]), float(oos["bias"]), float(oos["threshold"])) if oos else None,
            dict(state.get("info") or {}),
            NeighbourMember.from_state(state["finetuned_neighbours"]) if state.get("finetuned_neighbours") else None,
        )
