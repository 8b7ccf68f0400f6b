"""Tokenisation for BM25: jieba words for Chinese, lower-cased word stems for English."""

from __future__ import annotations

import re
from functools import lru_cache

import jieba

from kefu.core.types import Locale

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_HAN_OR_WORD = re.compile(r"[\u4e00-\u9fff]|[a-z0-9]")
_EN_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "with",
        "by",
        "from",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "do",
        "does",
        "did",
        "i",
        "me",
        "my",
        "we",
        "our",
        "you",
        "your",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "can",
        "could",
        "would",
        "should",
        "will",
        "shall",
        "may",
        "might",
        "must",
        "have",
        "has",
        "had",
        "how",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "there",
        "here",
        "please",
        "hi",
        "hello",
        "just",
        "about",
        "into",
        "than",
        "then",
        "so",
        "as",
        "not",
        "no",
        "yes",
        "any",
        "some",
    ]
)
_ZH_STOP = frozenset(
    [
        "的",
        "了",
        "吗",
        "呢",
        "吧",
        "啊",
        "呀",
        "哦",
        "嗯",
        "我",
        "你",
        "您",
        "是",
        "在",
        "有",
        "和",
        "就",
        "都",
        "也",
        "要",
        "想",
        "请",
        "问",
        "一下",
        "这个",
        "那个",
        "怎么",
        "什么",
        "如何",
        "可以",
        "能",
        "么",
    ]
)


def _stem(word: str) -> str:
    # Light suffix stripping: "returns"/"returned"/"returning" -> "return"; keeps short words intact.
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


@lru_cache(maxsize=1)
def _jieba() -> jieba.Tokenizer:
    jieba.setLogLevel(60)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    return tokenizer


def warm_up() -> None:
    """Load jieba's dictionary now (about half a second) rather than in the first customer's turn."""
    _jieba()


def tokenize(text: str, language: Locale) -> list[str]:
    lowered = text.lower()
    if language == "en":
        return [_stem(w) for w in _WORD.findall(lowered) if w not in _EN_STOP]
    words = _jieba().lcut_for_search(lowered)
    return [w for w in words if _HAN_OR_WORD.search(w) and w not in _ZH_STOP and w.strip()]
