"""Checks on a model's knowledge answer, sentence by sentence, as it streams: is the sentence supported
by the passages, and which passages does it cite. A sentence is only shown once it passed, so what the
customer saw is always exactly the accepted answer."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kefu.core.types import Citation, Locale
from kefu.knowledge.answer import split_sentences
from kefu.knowledge.tokens import tokenize
from kefu.llm.prompt import NO_ANSWER, Passage

_BOUNDARY = re.compile(r"[。！？!?]|\.(?=\s)|\n")
_LETTER = re.compile(r"[^\W\d_]")  # a letter or a CJK character: "2." or "—" alone says nothing
_MARKER = re.compile(r"\s*[\[【［](\d{1,2})[\]】］]")
MIN_SUPPORT = 0.6  # share of a sentence's words that must appear in the passages or the question
CITE_SUPPORT = 0.5  # share of a sentence's words one passage must hold for the sentence to cite it
# Negation, per language. Word overlap cannot see "we do not offer cash on delivery" turned into "including
# cash on delivery": a sentence without a negation that uses words the passages only say negated is refused.
_CLAUSE = re.compile(r"[,;:，；：、]|\bbut\b|\bexcept\b|但是|但|除了")
_NEGATION = {
    "en": re.compile(r"\b(?:not|no|never|cannot|none|neither|nor)\b|n't\b", re.IGNORECASE),
    "zh": re.compile(r"不(?!同|过|仅|久|少|错|论|管|断|但)|没|未(?!来)|无法|无需|禁止|勿|别(?!人|的)|非(?!常)"),
}
# Courtesy words a supported answer may add without a passage saying them (as tokenize() writes them).
_COURTESY = {
    "en": "sure hello hi thank thanks ok okay yes glad happy help you your please welcome here answer question",
    "zh": "您好 你好 好的 感谢 谢谢 您 请 帮助 可以 的 了 是 这个 问题 回答",
}


class SentenceBuffer:
    """Cuts streamed text into complete sentences; the unfinished tail waits for more text. A sentence
    that starts a new line (a list item) comes with a leading "\n", so the answer keeps its lines."""

    def __init__(self) -> None:
        self._buffer = ""
        self._started = False  # a sentence has been given out
        self._new_line = False  # the text given out so far ended with a line break

    def feed(self, text: str) -> list[str]:
        self._buffer += text
        ends = [m.end() for m in _BOUNDARY.finditer(self._buffer)]
        if not ends:
            return []
        done, self._buffer = self._buffer[: ends[-1]], self._buffer[ends[-1] :]
        return self._sentences(done)

    def flush(self) -> list[str]:
        rest, self._buffer = self._buffer, ""
        return self._sentences(rest)

    def _sentences(self, text: str) -> list[str]:
        out: list[str] = []
        for i, line in enumerate(text.split("\n")):
            parts = split_sentences(line)
            if parts and self._started and (i > 0 or self._new_line):
                parts[0] = "\n" + parts[0]
            self._started = self._started or bool(parts)
            out += parts
        if text:
            self._new_line = text.rstrip(" \t").endswith("\n")
        return out


@dataclass
class GroundedAnswer:
    """The accepted sentences of one answer and the documents they cite, numbered in order of first use."""

    passages: Sequence[Passage]
    question: str
    locale: Locale
    allowed: Callable[[str], bool] = lambda _sentence: True  # the outbound safety check
    support: Sequence[str] = ()  # more text that may back a sentence (what the model's tool calls returned)
    sentences: list[str] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    no_answer: bool = False
    closed: bool = False  # a sentence failed: nothing after it is shown

    def __post_init__(self) -> None:
        words: set[str] = set(tokenize(self.question, self.locale))
        words.update(tokenize(_COURTESY[self.locale], self.locale))
        for p in self.passages:
            words.update(tokenize(f"{p.title}\n{p.text}", self.locale))
        for extra in self.support:
            words.update(tokenize(extra, self.locale))
        self._known = words
        self._by_number = {p.number: p for p in self.passages}
        self._words = {p.number: set(tokenize(f"{p.title}\n{p.text}", self.locale)) for p in self.passages}
        self._titles = {p.title for p in self.passages} | {p.title.split(" / ")[-1] for p in self.passages}
        self._negated_only = self._words_only_said_negated()
        self._last_marker = ""

    def offer(self, sentence: str) -> str | None:
        """The sentence as it will be shown (citation numbers rewritten), or None if it is not shown."""
        if self.closed:
            return None
        if NO_ANSWER in sentence.upper().replace(" ", "_"):
            if not self.sentences:
                self.no_answer = True
            self.closed = True
            return None
        plain = _MARKER.sub("", sentence).strip()
        words = set(tokenize(plain, self.locale))
        if not words or not _LETTER.search(plain) or plain.rstrip(":：") in self._titles:
            return None  # a bare list number, or a passage's title echoed: nothing to show, nothing wrong
        supported = len(words & self._known) / len(words) >= MIN_SUPPORT
        flipped = not _NEGATION[self.locale].search(plain) and bool(words & self._negated_only)
        if not supported or flipped or not self.allowed(plain):
            self.rejected.append(sentence)
            self.closed = True
            return None
        shown = self._attach(plain, self._cited(sentence, words))
        self.sentences.append(shown)
        return shown

    def _words_only_said_negated(self) -> set[str]:
        negated: dict[str, bool] = {}
        for passage in self.passages:
            # Clause by clause: in "returns within 7 days, but not gift cards" only the gift cards are negated.
            clauses = [c for sentence in split_sentences(passage.text) for c in _CLAUSE.split(sentence)]
            for clause in clauses:
                said_negated = bool(_NEGATION[self.locale].search(clause))
                for word in tokenize(clause, self.locale):
                    if self.locale == "zh" and len(word) < 2:
                        continue  # one character is too ambiguous to carry a claim
                    negated[word] = negated.get(word, True) and said_negated
        return {word for word, only in negated.items() if only}

    def _cited(self, sentence: str, words: set[str]) -> list[Passage]:
        """The passages a sentence cites: those the model named that do back it, else the one that backs
        it best. Small models copy passage numbers about; the evidence decides, not the number."""
        overlap = {p.number: len(words & self._words[p.number]) / len(words) for p in self.passages}
        named = [int(n) for n in _MARKER.findall(sentence)]
        chosen = [n for n in dict.fromkeys(named) if overlap.get(n, 0.0) >= CITE_SUPPORT]
        if not chosen and overlap:
            best = max(overlap, key=lambda n: overlap[n])
            chosen = [best] if overlap[best] >= CITE_SUPPORT else []
        return [self._by_number[n] for n in chosen]

    def _attach(self, plain: str, passages: Sequence[Passage]) -> str:
        numbers = []
        for passage in passages:
            citation = Citation(passage.doc_id, passage.title)
            if citation not in self.citations:
                self.citations.append(citation)
            numbers.append(self.citations.index(citation) + 1)
        if not numbers:
            return plain
        marker = "".join(f"[{n}]" for n in dict.fromkeys(numbers))
        if marker == self._last_marker:
            return plain  # the sentence before cites the same passages: once is enough
        self._last_marker = marker
        marker = marker if self.locale == "zh" else f" {marker}"
        if plain[-1] in ".!?。！？":
            return f"{plain[:-1]}{marker}{plain[-1]}"
        return f"{plain}{marker}"

    def ensure_citation(self) -> str:
        """An answer the model left uncited cites the passage sharing most words with it; returns the
        marker to append ("" when the answer already cites)."""
        if self.citations or not self.sentences or not self.passages:
            return ""
        said = set(tokenize(" ".join(self.sentences), self.locale))
        best = max(self.passages, key=lambda p: len(said & set(tokenize(p.text, self.locale))))
        self.citations.append(Citation(best.doc_id, best.title))
        return " [1]" if self.locale == "en" else "[1]"
