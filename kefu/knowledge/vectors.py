"""The in-memory dense backend: each encoder's vector matrices (chunks, titles, openings) in float32 for
exact similarities, and an int8 copy of each that finds candidates quickly.

At 10,000 chunks the float32 matrices are 55 MB, and one query's matrix-vector products over all of
them stream every byte from memory: 2 ms at p50 and 6 ms at p90 on the two shared cores we measure on.
The int8 copies (a quarter of the bytes, fbgemm's int8 kernels) take 0.25 ms for the same products, with
similarities off by under 0.01; only the candidate documents' rows are then read in float32.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from kefu.nlu.encoder import Vectors

log = logging.getLogger(__name__)
Floats = npt.NDArray[np.float64]
Rows = npt.NDArray[np.int64]


class Int8Matrix:
    """Approximate ``matrix @ query`` with the rows quantised to int8 (one scale per row)."""

    def __init__(self, matrix: Vectors) -> None:
        import torch

        weights = torch.from_numpy(np.ascontiguousarray(matrix, dtype=np.float32))
        scales = torch.from_numpy(np.maximum(np.abs(matrix).max(axis=1), 1e-12) / 127.0).double()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch marks its quantized tensor API as moving to torchao
            quantized = torch.quantize_per_channel(
                weights, scales, torch.zeros(len(matrix), dtype=torch.long), 0, torch.qint8
            )
            self._packed: Any = torch.ops.quantized.linear_prepack(quantized, None)
        self.nbytes = int(matrix.shape[0] * matrix.shape[1] + matrix.shape[0] * 8)

    def scores(self, query: Vectors) -> npt.NDArray[np.float32]:
        import torch

        with torch.inference_mode():
            out = torch.ops.quantized.linear_dynamic(torch.from_numpy(query.reshape(1, -1)), self._packed)
        scores: npt.NDArray[np.float32] = out[0].numpy()
        return scores


def int8_or_none(matrix: Vectors) -> Int8Matrix | None:
    """The int8 copy, or None where this torch build has no int8 kernels (then float32 finds candidates)."""
    try:
        coarse = Int8Matrix(matrix)
        coarse.scores(np.ascontiguousarray(matrix[:1], dtype=np.float32)[0])
    except (RuntimeError, AttributeError, ImportError) as exc:
        log.warning("int8 candidate search unavailable (%s); using float32", exc)
        return None
    return coarse


def top_rows(scores: npt.NDArray[Any], count: int) -> Rows:
    """The ``count`` largest entries' positions, in no particular order."""
    if count >= len(scores):
        return np.arange(len(scores), dtype=np.int64)
    return np.argpartition(-scores, count)[:count].astype(np.int64)


class Matrices:
    """Exact float32 matrices per (encoder, kind), with their int8 copies when ``coarse``."""

    def __init__(self, matrices: Mapping[tuple[str, str], Vectors], coarse: bool) -> None:
        self.exact = {key: np.ascontiguousarray(m, dtype=np.float32) for key, m in matrices.items()}
        self.coarse: dict[tuple[str, str], Int8Matrix | None] = {
            key: int8_or_none(m) if coarse else None for key, m in self.exact.items()
        }

    def all(self, key: tuple[str, str], query: Vectors) -> Floats:
        return (self.exact[key] @ query).astype(np.float64)

    def rows(self, key: tuple[str, str], rows: Rows, query: Vectors) -> Floats:
        return (self.exact[key][rows] @ query).astype(np.float64)

    def nearest(self, key: tuple[str, str], query: Vectors, count: int) -> Rows:
        """Roughly the ``count`` most similar rows (int8 where available)."""
        coarse = self.coarse[key]
        scores = coarse.scores(query) if coarse is not None else self.exact[key] @ query
        return top_rows(scores, count)

    @property
    def nbytes(self) -> int:
        total = sum(m.nbytes for m in self.exact.values())
        return total + sum(c.nbytes for c in self.coarse.values() if c is not None)
