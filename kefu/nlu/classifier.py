"""A text classifier: sentence embeddings plus character n-grams into one linear (logistic) head.

Used for intents and for dialogue acts. Saved as a folder (``meta.json`` + ``model.joblib``) written
atomically, so a crash never leaves a half-written model behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import numpy.typing as npt
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from kefu import __version__
from kefu.nlu.encoder import SentenceEncoder, Vectors

FORMAT_VERSION = 1
_EMBEDDING_WEIGHT = 2.0  # embeddings carry meaning across paraphrases; n-grams carry exact wording


class ModelFormatError(ValueError):
    """A model folder is missing, damaged, or was written by an incompatible version."""


@dataclass(frozen=True, slots=True)
class Prediction:
    labels: tuple[str, ...]  # best first
    scores: tuple[float, ...]


class TextClassifier:
    def __init__(self, encoder_name: str, vectorizer: TfidfVectorizer, head: LogisticRegression) -> None:
        self.encoder_name = encoder_name
        self.vectorizer = vectorizer
        self.head = head
        self.labels: tuple[str, ...] = tuple(str(c) for c in head.classes_)
        # Inference by hand: sklearn's input validation costs more than the arithmetic on one message.
        weights = np.ascontiguousarray(head.coef_.T)
        dims = weights.shape[0] - len(vectorizer.vocabulary_)
        self._embedding_weights = weights[:dims] * _EMBEDDING_WEIGHT
        self._gram_weights = weights[dims:]
        self._bias = head.intercept_.copy()
        self._analyze = vectorizer.build_analyzer()
        self._vocabulary: dict[str, int] = vectorizer.vocabulary_
        self._idf = vectorizer.idf_

    # ---------------------------------------------------------------- training
    @classmethod
    def train(
        cls,
        texts: Sequence[str],
        labels: Sequence[str],
        encoder: SentenceEncoder,
        *,
        embeddings: Vectors | None = None,
        c: float = 10.0,
    ) -> TextClassifier:
        if len(texts) != len(labels) or not texts:
            raise ValueError("training needs the same, non-zero number of texts and labels")
        counts = Counter(labels)
        if len(counts) < 2:
            raise ValueError("training needs at least two labels")
        vectorizer = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(1, 3), lowercase=True, sublinear_tf=True, min_df=1
        )
        grams = vectorizer.fit_transform(texts)
        vectors = encoder.encode(texts) if embeddings is None else embeddings
        head = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
        head.fit(_features(vectors, grams), list(labels))
        return cls(encoder.name, vectorizer, head)

    # ---------------------------------------------------------------- prediction
    def _gram_scores(self, text: str) -> npt.NDArray[np.float64]:
        """TF-IDF (sublinear tf, L2 norm) of one text times the n-gram weights, without building a sparse
        matrix: the same numbers as ``vectorizer.transform`` at a tenth of the cost."""
        counts = Counter(g for g in self._analyze(text) if g in self._vocabulary)
        if not counts:
            return np.zeros(self._gram_weights.shape[1])
        rows = np.fromiter((self._vocabulary[g] for g in counts), dtype=np.int64, count=len(counts))
        values = (1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))) * self._idf[rows]
        values /= np.sqrt(values @ values)
        scores: npt.NDArray[np.float64] = values @ self._gram_weights[rows]
        return scores

    def predict_proba(self, texts: Sequence[str], embeddings: Vectors) -> npt.NDArray[np.float64]:
        grams = np.vstack([self._gram_scores(t) for t in texts])
        scores = embeddings @ self._embedding_weights + grams + self._bias
        if scores.shape[1] == 1:  # two classes: one logistic output for the second
            positive = 1.0 / (1.0 + np.exp(-scores[:, 0]))
            return np.column_stack([1.0 - positive, positive])
        scores -= scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        proba: npt.NDArray[np.float64] = exp / exp.sum(axis=1, keepdims=True)
        return proba

    def predict(self, text: str, embedding: Vectors) -> Prediction:
        proba = self.predict_proba([text], embedding.reshape(1, -1))[0]
        order = np.argsort(-proba)
        return Prediction(tuple(self.labels[i] for i in order), tuple(float(proba[i]) for i in order))

    # ---------------------------------------------------------------- persistence
    def save(self, folder: Path, extra: dict[str, Any] | None = None) -> None:
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            joblib.dump({"vectorizer": self.vectorizer, "head": self.head}, staging / "model.joblib")
            meta = {
                "format": FORMAT_VERSION,
                "kefu_version": __version__,
                "encoder": self.encoder_name,
                "labels": list(self.labels),
                **(extra or {}),
            }
            (staging / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
            if folder.exists():
                backup = folder.with_name(folder.name + ".old")
                shutil.rmtree(backup, ignore_errors=True)
                os.replace(folder, backup)
                os.replace(staging, folder)
                shutil.rmtree(backup, ignore_errors=True)
            else:
                os.replace(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path, encoder: SentenceEncoder) -> TextClassifier:
        meta = read_meta(folder)
        if meta.get("encoder") != encoder.name:
            raise ModelFormatError(f"{folder}: trained with encoder {meta.get('encoder')!r}, not {encoder.name!r}")
        try:
            parts = joblib.load(Path(folder) / "model.joblib")
        except Exception as exc:  # a damaged pickle can raise almost anything
            raise ModelFormatError(f"{folder}/model.joblib: cannot be read ({exc})") from exc
        return cls(encoder.name, parts["vectorizer"], parts["head"])


def read_meta(folder: Path) -> dict[str, Any]:
    path = Path(folder) / "meta.json"
    if not path.is_file():
        raise ModelFormatError(f"{folder}: not a kefu model folder (no meta.json)")
    try:
        meta: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{path}: unreadable ({exc})") from exc
    if meta.get("format") != FORMAT_VERSION:
        raise ModelFormatError(
            f"{folder}: model format {meta.get('format')!r} (kefu {meta.get('kefu_version')}); "
            f"this kefu reads format {FORMAT_VERSION}: train the model again"
        )
    return meta


def _features(vectors: Vectors, grams: Any) -> sparse.csr_matrix:
    return sparse.hstack([sparse.csr_matrix(vectors * _EMBEDDING_WEIGHT), grams], format="csr")
