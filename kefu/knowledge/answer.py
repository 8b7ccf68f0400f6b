"""Extractive answers: the sentences of the best passage that match the question."""

from __future__ import annotations

import re

from kefu.core.types import Locale
from kefu.knowledge.tokens import tokenize

_SENTENCE_END = re.compile(r"(?<=[。！？；!?])|(?<=\.)\s+|\n+")
_SHORT_ENOUGH = {"en": 420, "zh": 220}  # characters: a section this short is answered whole
_MAX_SENTENCES = 3


def split_sentences(text: str) -> list[str]:
    parts = [p.strip(" \t-*") for p in _SENTENCE_END.split(text)]
    return [p for p in parts if p and p.strip()]


def extract_answer(question: str, passage: str, language: Locale) -> str:
    """The whole passage when short; otherwise its sentences that share most words with the question."""
    passage = passage.strip()
    if len(passage) <= _SHORT_ENOUGH[language]:
        return passage
    sentences = split_sentences(passage)
    wanted = set(tokenize(question, language))
    scored = []
    for position, sentence in enumerate(sentences):
        overlap = len(wanted & set(tokenize(sentence, language)))
        scored.append((overlap, -position, position))
    best = sorted(scored, reverse=True)[:_MAX_SENTENCES]
    if not best or best[0][0] == 0:
        chosen = list(range(min(_MAX_SENTENCES, len(sentences))))
    else:
        chosen = sorted(p for overlap, _, p in best if overlap > 0)
    joiner = "" if language == "zh" else " "
    return joiner.join(sentences[i] for i in chosen)
