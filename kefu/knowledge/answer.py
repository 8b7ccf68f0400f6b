"""Extractive answers: the lead sentence of the best document, then its sentences that match the question."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from kefu.core.types import Locale
from kefu.knowledge.tokens import tokenize
from kefu.nlu.encoder import Vectors

# Also "done.Next": text flattened from web pages glues sentences (and headings) together.
_SENTENCE_END = re.compile(r"(?<=[。！？；!?])|(?<=\.)\s+|(?<=[a-z)][.:])(?=[A-Z])|\n+")
_BUDGET = {"en": 360, "zh": 180}  # characters: about two or three sentences
_OVERLAP_WEIGHT = 0.04
_PREFERRED_BONUS = 0.05  # sentences of the section retrieval ranked first get a small head start


@lru_cache(maxsize=16384)
def _words(sentence: str, language: Locale) -> frozenset[str]:
    # Passages' sentences recur from question to question: segment each once (jieba is the costly part).
    return frozenset(tokenize(sentence, language))


def split_sentences(text: str) -> list[str]:
    parts = [p.strip(" \t-*") for p in _SENTENCE_END.split(text)]
    return [p for p in parts if p and p.strip()]


def pick_sentences(
    question: str,
    query_vector: Vectors | None,
    sentences: Sequence[str],
    sentence_vectors: Vectors | None,
    preferred: Sequence[bool],
    language: Locale,
) -> str:
    """Help articles open with their main statement: the lead sentence comes first, then the sentences
    that best match the question by meaning and shared words, in document order, within a short budget."""
    if not sentences:
        return ""
    wanted = set(tokenize(question, language))
    scores = np.array([_OVERLAP_WEIGHT * len(wanted & _words(s, language)) for s in sentences])
    scores += np.where(np.asarray(preferred, dtype=bool), _PREFERRED_BONUS, 0.0)
    if query_vector is not None and sentence_vectors is not None:
        scores += sentence_vectors @ query_vector
    chosen = [0]
    used = len(sentences[0])
    for i in np.argsort(-scores):
        if i == 0:
            continue
        if used + len(sentences[i]) > _BUDGET[language]:
            continue
        chosen.append(int(i))
        used += len(sentences[i])
        if used >= _BUDGET[language] * 0.6:
            break
    joiner = "" if language == "zh" else " "
    return joiner.join(sentences[i] for i in sorted(chosen))
