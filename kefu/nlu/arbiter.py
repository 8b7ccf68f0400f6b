"""A second opinion for unsure intents: an LLM chooses among the classifier's top candidates.

Only messages whose top confidence is below ``below`` are sent, with at most ``top_k`` candidates, so the
LLM sees a small multiple-choice question and the classifier keeps the hot path. Any failure of the LLM
(timeout, error, an answer that is not one of the numbers) keeps the classifier's decision: the second
opinion can only be ignored, never block a turn. Off unless ``KEFU_INTENT_LLM_FALLBACK`` is set and an
OpenAI-compatible endpoint is configured.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence

from kefu.core.types import IntentScore, Parse
from kefu.llm.client import OpenAiBackend
from kefu.llm.types import BackendError, ModelVersion

log = logging.getLogger(__name__)
_NUMBER = re.compile(r"\d+")

SYSTEM_PROMPT = (
    "You route customer-service messages. Reply with only the number of the option that best matches "
    "what the customer wants, or 0 if none of them does."
)


def build_prompt(text: str, candidates: Sequence[str], descriptions: Mapping[str, str]) -> str:
    lines = [f"Customer message: {text}", "", "Options:"]
    for number, label in enumerate(candidates, start=1):
        meaning = descriptions.get(label) or label.replace("_", " ")
        lines.append(f"{number}. {meaning}")
    lines.append("0. none of these")
    return "\n".join(lines)


def read_choice(answer: str, candidates: Sequence[str]) -> str | None:
    """The chosen label, ``""`` for "none of these", None when the answer is not a valid option."""
    found = _NUMBER.search(answer)
    if found is None:
        return None
    number = int(found.group())
    if number == 0:
        return ""
    return candidates[number - 1] if number <= len(candidates) else None


class LlmIntentArbiter:
    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str = "",
        below: float = 0.6,
        top_k: int = 3,
        timeout_s: float = 3.0,
        descriptions: Mapping[str, str] | None = None,
        fallback_intent: str = "out_of_scope",
        profile: str = "",
    ) -> None:
        # The gateway's client and model profile: Qwen3 gets thinking switched off, so a one-number answer
        # is not spent on <think> text.
        version = ModelVersion("intent-arbiter", base_url.rstrip("/"), model, profile=profile or None)
        self._backend = OpenAiBackend(version, api_key=api_key)
        self.timeout_s = timeout_s
        self.model = model
        self.below = below
        self.top_k = top_k
        self.descriptions = dict(descriptions or {})
        self.fallback_intent = fallback_intent

    def wants(self, parse: Parse) -> bool:
        # Quick-reply phrases are certain (confidence 1.0); only unsure classifier output is re-checked.
        return bool(parse.ranking) and parse.intent.confidence < 1.0 and parse.ranking[0].confidence < self.below

    async def choose(self, text: str, ranking: Sequence[IntentScore]) -> IntentScore | None:
        candidates = [s.name for s in ranking[: self.top_k] if s.name not in ("oos", self.fallback_intent)]
        if not candidates:
            return None
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": build_prompt(text, candidates, self.descriptions)},
        ]
        try:
            completion = await self._backend.complete(
                messages, timeout_s=self.timeout_s, defaults={"temperature": 0, "max_tokens": 4}
            )
        except BackendError as exc:
            log.warning("intent second opinion unavailable, keeping the classifier's (%s)", exc)
            return None
        answer = completion.text
        choice = read_choice(answer, candidates)
        if choice is None:
            log.warning("intent second opinion unreadable: %r", answer[:80])
            return None
        if choice == "":
            return IntentScore(self.fallback_intent, ranking[0].confidence)
        score = next(s.confidence for s in ranking if s.name == choice)
        return IntentScore(choice, score)

    async def close(self) -> None:
        await self._backend.close()
