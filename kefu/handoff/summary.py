"""The summary an agent reads before claiming a conversation.

Extractive (always; pure): the customer's key sentences, what they want (the last substantive intent) and
the order numbers the conversation named. When a model is configured, a model writes a two- or
three-sentence summary from the (already PII-redacted) transcript in the customer's language; any failure
or timeout keeps the extractive one.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kefu.core.types import Locale
from kefu.handoff.domain import Summary, one_line

log = logging.getLogger(__name__)

KEY_SENTENCES = 3
SENTENCE_CHARS = 120
LLM_SUMMARY_CHARS = 600
TRANSCRIPT_LINES = 30  # the most recent lines a model is shown
# Intents that say nothing about the customer's problem: the summary names the one before them.
NOT_A_NEED = frozenset({"human_agent", "greeting", "goodbye", "thanks", "out_of_scope", "affirm", "deny"})
# Sentences that only greet or ask for a person are never key sentences.
_GREETING = re.compile(r"^(?:hi|hello|hey|thanks|thank you|ok|okay|yes|no|你好|您好|谢谢|好的|是的?|不是?)\W*$", re.I)
_ASKS_FOR_PERSON = re.compile(r"人工|真人|客服|human|person|agent|representative|operator|someone", re.I)
FILLER_CHARS = 30  # a sentence this short that asks for a person says nothing else
_SENTENCE = re.compile(r"[^。！？!?;；，\n]+[。！？!?;；，]*|[^。！？!?;；，\n]+$")
_FULL_STOP = re.compile(r"(?<=[.])\s+")
_ORDER_LIKE = re.compile(r"(?<![0-9])[0-9]{5,}(?![0-9])")
_WORD = re.compile(r"[\w\u4e00-\u9fff]")


@dataclass(frozen=True, slots=True)
class ConversationFacts:
    """What the summary is made from: the customer's messages, the intents the NLU found (oldest first),
    the order numbers named, and the transcript with roles (for a model)."""

    language: Locale
    customer_messages: tuple[str, ...]
    intents: tuple[str, ...]
    orders: tuple[str, ...]
    transcript: tuple[tuple[str, str], ...]  # (role, text)


def facts_from_events(events: Iterable[tuple[str, Mapping[str, Any]]], language: Locale) -> ConversationFacts:
    """The facts of a conversation from its event log ``(type, payload)``, oldest first."""
    customer: list[str] = []
    intents: list[str] = []
    orders: list[str] = []
    transcript: list[tuple[str, str]] = []
    for kind, payload in events:
        if kind == "message_received":
            text = str(payload.get("text") or "")
            customer.append(text)
            transcript.append(("customer", text))
        elif kind in ("reply_sent", "agent_message") and payload.get("text"):
            transcript.append(("bot" if kind == "reply_sent" else "agent", str(payload["text"])))
        elif kind == "nlu_parsed":
            if payload.get("intent"):
                intents.append(str(payload["intent"]))
            for entity in payload.get("entities") or ():
                if isinstance(entity, Mapping) and entity.get("type") == "order_id":
                    orders.append(str(entity.get("value")))
        elif kind == "tool_called":
            order = (payload.get("args") or {}).get("order_id")
            if order:
                orders.append(str(order))
    return ConversationFacts(language, tuple(customer), tuple(intents), tuple(dict.fromkeys(orders)), tuple(transcript))


def main_intent(intents: Sequence[str], handover_intent: str | None = None) -> str | None:
    """What the customer wants: the latest intent that names a need, else the handover's own."""
    for intent in reversed(intents):
        if intent not in NOT_A_NEED:
            return intent
    return handover_intent or (intents[-1] if intents else None)


def _score(sentence: str, position: int, count: int, orders: Sequence[str]) -> float:
    size = len(_WORD.findall(sentence))
    score = min(size, 60) / 20.0
    if any(order in sentence for order in orders) or _ORDER_LIKE.search(sentence):
        score += 2.0
    if "?" in sentence or "？" in sentence:
        score += 0.5
    return score + position / max(1, count)  # later sentences are a little fresher


def key_sentences(messages: Sequence[str], orders: Sequence[str] = (), limit: int = KEY_SENTENCES) -> list[str]:
    """The customer's most informative sentences, in the order they were written."""
    candidates: list[str] = []
    for message in messages:
        for text in _FULL_STOP.split(message):  # "order 100002. Can you..." is two sentences
            for match in _SENTENCE.finditer(text):
                sentence = match.group(0).strip().rstrip("，")
                filler = _GREETING.match(sentence) or (
                    len(sentence) <= FILLER_CHARS and _ASKS_FOR_PERSON.search(sentence)
                )
                if len(_WORD.findall(sentence)) >= 4 and not filler:
                    candidates.append(sentence)
    unique = list(dict.fromkeys(candidates))
    ranked = sorted(range(len(unique)), key=lambda i: -_score(unique[i], i, len(unique), orders))
    return [one_line(unique[i], SENTENCE_CHARS) for i in sorted(ranked[:limit])]


def extractive_summary(facts: ConversationFacts, handover_intent: str | None = None) -> Summary:
    intent = main_intent(facts.intents, handover_intent)
    sentences = key_sentences(facts.customer_messages, facts.orders)
    need = (intent or "").replace("_", " ")
    if facts.language == "zh":
        parts = [f"诉求：{need or '未识别'}"]
        if facts.orders:
            parts.append("订单：" + "、".join(facts.orders))
        if sentences:
            parts.append("客户原话：" + " ".join(f"“{s}”" for s in sentences))
        text = "；".join(parts) + "。"
    else:
        parts = [f"Wants: {need or 'not recognised'}"]
        if facts.orders:
            parts.append("orders: " + ", ".join(facts.orders))
        if sentences:
            parts.append("in their words: " + " ".join(f'"{s}"' for s in sentences))
        text = "; ".join(parts) + "."
    return Summary(text, "extractive", intent, facts.orders, tuple(sentences))


class SummaryModel(Protocol):
    """Writes a short summary of a transcript in ``language``; None when it cannot (no model, an error)."""

    async def summarize(
        self, transcript: Sequence[tuple[str, str]], language: Locale, conversation_id: str
    ) -> str | None: ...


_INSTRUCTIONS: dict[Locale, str] = {
    "en": "You summarise a customer-service chat for the human agent who takes it over. In English, write two "
    "or three short sentences: what the customer wants, the order numbers involved, what the bot already "
    "told or did, and how the customer feels. No greeting, no advice, no lists.",
    "zh": "你为接手会话的人工客服总结一段客服聊天记录。请用中文写两到三句简短的话：客户想要什么、涉及哪些订单号、"
    "机器人已经告知或办理了什么、客户的情绪如何。不要问候，不要建议，不要列表。",
}
_ROLE_NAMES: dict[Locale, dict[str, str]] = {
    "en": {"customer": "Customer", "bot": "Bot", "agent": "Agent"},
    "zh": {"customer": "客户", "bot": "机器人", "agent": "客服"},
}


def summary_prompt(transcript: Sequence[tuple[str, str]], language: Locale) -> list[dict[str, str]]:
    names = _ROLE_NAMES[language]
    lines = [f"{names.get(role, role)}: {one_line(text, 400)}" for role, text in transcript[-TRANSCRIPT_LINES:]]
    return [{"role": "system", "content": _INSTRUCTIONS[language]}, {"role": "user", "content": "\n".join(lines)}]


def usable_summary(text: str) -> str | None:
    """A model's summary as shown, or None when it wrote nothing usable."""
    cleaned = one_line(re.sub(r"<think>.*?</think>", "", text, flags=re.DOTALL), LLM_SUMMARY_CHARS)
    return cleaned if len(_WORD.findall(cleaned)) >= 4 else None


class GatewaySummarizer:
    """Implements ``SummaryModel`` with the LLM gateway's ``stable`` model (never a canary: agents should
    read what the trusted model wrote), bounded by ``timeout_s``; each call is accounted like a turn's."""

    def __init__(self, gateway: Any, timeout_s: float = 8.0) -> None:
        self.gateway = gateway
        self.timeout_s = timeout_s

    async def summarize(
        self, transcript: Sequence[tuple[str, str]], language: Locale, conversation_id: str
    ) -> str | None:
        routes = [
            r for r in await self.gateway.routes(f"conversation:{conversation_id}", language) if r.variant == "stable"
        ]
        if not routes or not transcript:
            return None
        messages = summary_prompt(transcript, language)
        started = time.monotonic()
        answer = await self.gateway.complete(
            routes,
            lambda _route: messages,
            deadline=started + self.timeout_s,
            params={"max_tokens": 220, "temperature": 0.2},
        )
        try:
            await self.gateway.account(answer, conversation_id, "handoff-summary", "summary")
        except Exception:  # accounting is a record, not a reason to drop a summary
            log.warning("could not account the summary call", exc_info=True)
        if answer.completion is None:
            log.info("no model summary; the extractive one stands", extra={"conversation_id": conversation_id})
            return None
        return usable_summary(answer.completion.text)
