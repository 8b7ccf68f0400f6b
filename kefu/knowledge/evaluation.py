"""Retrieval quality on labelled questions: hit@1, hit@5, MRR@10 and how often the knowledge base would
abstain (its best hit under the answer threshold). Questions in the WixQA format: ``question`` and
``article_ids`` (any of them counts as right); ``lang`` optional. An empty ``article_ids`` (or an
``article_id`` of null) marks a question nothing should answer."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kefu.core.types import Locale
from kefu.knowledge.documents import DocumentError
from kefu.knowledge.index import Hit
from kefu.nlu.language import reply_locale

Search = Callable[[str, Locale, int], list[Hit]]


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    gold: frozenset[str]
    language: Locale | None = None


def read_questions(path: Path) -> list[Question]:
    questions: list[Question] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DocumentError(f"{path}: cannot read: {exc}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DocumentError(f"{path}:{number}: bad JSON: {exc.msg}") from exc
        if not isinstance(row, dict) or not isinstance(row.get("question"), str) or not row["question"].strip():
            raise DocumentError(f"{path}:{number}: needs a non-empty 'question' string")
        ids = row.get("article_ids", [row["article_id"]] if row.get("article_id") else [])
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise DocumentError(f"{path}:{number}: 'article_ids' must be a list of document ids")
        language = row.get("lang")
        if language not in (None, "zh", "en"):
            raise DocumentError(f"{path}:{number}: 'lang' must be zh or en")
        questions.append(Question(row["question"], frozenset(ids), language))
    if not questions:
        raise DocumentError(f"{path}: no questions")
    return questions


def question_language(question: Question, languages: Sequence[str]) -> Locale:
    if question.language is not None:
        return question.language
    if len(languages) == 1:
        return "zh" if languages[0] == "zh" else "en"
    return reply_locale(question.text, "en")


def evaluate(
    questions: Sequence[Question],
    search: Search,
    languages: Sequence[str],
    threshold: float,
    known_ids: set[str] | None = None,
) -> dict[str, object]:
    answerable = [q for q in questions if q.gold]
    if known_ids is not None:
        missing = sorted({i for q in answerable for i in q.gold} - known_ids)
        if missing:
            raise DocumentError(
                f"{len(missing)} gold document id(s) are not in the index: {', '.join(missing[:5])}"
                + (" …" if len(missing) > 5 else "")
            )
    hit1 = hit5 = 0
    reciprocal = 0.0
    abstained = abstained_unanswerable = 0
    misses: list[dict[str, object]] = []
    for q in questions:
        hits = search(q.text, question_language(q, languages), 10)
        confident = bool(hits) and hits[0].score >= threshold
        if not q.gold:
            abstained_unanswerable += not confident
            continue
        abstained += not confident
        ids = [h.chunk.doc_id for h in hits]
        rank = next((i for i, doc_id in enumerate(ids) if doc_id in q.gold), None)
        hit1 += rank == 0
        hit5 += rank is not None and rank < 5
        reciprocal += 1.0 / (rank + 1) if rank is not None else 0.0
        if rank != 0:
            misses.append({"question": q.text, "gold": sorted(q.gold), "got": ids[:3], "rank": rank})
    n = max(1, len(answerable))
    result: dict[str, object] = {
        "questions": len(answerable),
        "hit@1": round(hit1 / n, 4),
        "hit@5": round(hit5 / n, 4),
        "mrr@10": round(reciprocal / n, 4),
        "abstention_rate": round(abstained / n, 4),
        "threshold": threshold,
    }
    unanswerable = len(questions) - len(answerable)
    if unanswerable:
        result["unanswerable"] = unanswerable
        result["unanswerable_abstained"] = round(abstained_unanswerable / unanswerable, 4)
    result["misses"] = misses
    return result
