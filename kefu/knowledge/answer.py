"""Extractive answers: the sentences of the best document's passages that best match the question."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from kefu.core.types import Locale
from kefu.knowledge.tokens import tokenize
from kefu.nlu.encoder import SentenceEncoder

_SENTENCE_END = re.compile(r"(?<=[。！？；!?])|(?<=\.)\s+|\n+")
_BUDGET = {"en": 360, "zh": 180}  # characters: about two or three sentences
_OVERLAP_WEIGHT = 0.04
_PREFERRED_BONUS = 0.05  # the passage retrieval ranked first gets a small head start


def split_sentences(text: str) -> list[str]:
    parts = [p.strip(" \t-*") for p in _SENTENCE_END.split(text)]
    return [p for p in parts if p and p.strip()]


def extract_answer(
    question: str,
    passages: Sequence[str],
    language: Locale,
    encoder: SentenceEncoder | None = None,
    preferred: int = 0,
) -> str:
    """The document's lead sentence, then sentences ranked by meaning (when an encoder is given) and
    shared words, kept in document order, within a short budget. ``passages`` are one document's sections in order; ``preferred`` is the one
    retrieval ranked first."""
    sentences: list[str] = []
    bonus: list[float] = []
    for number, passage in enumerate(passages):
        for sentence in split_sentences(passage):
            sentences.append(sentence)
            bonus.append(_PREFERRED_BONUS if number == preferred else 0.0)
    if not sentences:
        return ""
    wanted = set(tokenize(question, language))
    scores = np.array([_OVERLAP_WEIGHT * len(wanted & set(tokenize(s, language))) for s in sentences]) + np.array(bonus)
    if encoder is not None:
        vectors = encoder.encode([question, *sentences])
        scores = scores + vectors[1:] @ vectors[0]
    else:
        scores = scores - 0.001 * np.arange(len(sentences))  # without meaning, prefer the best passage's start
    # Help articles open with their main statement: the lead sentence always comes first, then the
    # sentences that best match the question.
    chosen: list[int] = [0]
    used = len(sentences[0])
    for i in np.argsort(-scores):
        if i == 0:
            continue
        length = len(sentences[i])
        if chosen and used + length > _BUDGET[language]:
            continue
        chosen.append(int(i))
        used += length
        if used >= _BUDGET[language] * 0.6:
            break
    joiner = "" if language == "zh" else " "
    return joiner.join(sentences[i] for i in sorted(chosen))
