"""The guard the pipeline holds: PII, moderation and prompt-injection checks, and the policy that turns
their findings into one action for the turn (allow, flag for review, block politely, hand over)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from kefu.core.types import GUARD_ACTIONS, GuardAction, GuardVerdict, Span
from kefu.guard.injection import InjectionDetector, InjectionVerdict
from kefu.guard.injection_semantic import SemanticInjection
from kefu.guard.moderation import LexiconModerator, ModerationVerdict, Moderator
from kefu.guard.pii import find_pii, redact
from kefu.nlu.encoder import SentenceEncoder

# Safe defaults: what needs a person goes to one; what no shop answers is refused; rudeness is only marked.
DEFAULT_MODERATION_ACTIONS: dict[str, GuardAction] = {
    "abuse": "flag",
    "sexual": "block",
    "violence": "handoff",
    "self_harm": "handoff",
    "illegal": "block",
    "hate": "block",
}


def strongest(actions: list[GuardAction]) -> GuardAction:
    return max(actions, key=GUARD_ACTIONS.index, default="allow")


@dataclass(frozen=True)
class SafetyPolicy:
    """What to do with a message per moderation category, and with a prompt-injection attempt. An injection
    "flag" lets the turn go on through the flows but keeps it away from every model."""

    moderation_actions: Mapping[str, GuardAction] = field(default_factory=lambda: dict(DEFAULT_MODERATION_ACTIONS))
    injection_action: GuardAction = "flag"

    def decide(self, categories: tuple[str, ...], injection: bool) -> tuple[GuardAction, str | None]:
        candidates: list[tuple[GuardAction, str]] = [
            (self.moderation_actions.get(c, "flag"), f"moderation:{c}") for c in categories
        ]
        if injection:
            candidates.append((self.injection_action, "injection"))
        if not candidates:
            return "allow", None
        action = strongest([a for a, _ in candidates])
        reason = next(r for a, r in candidates if a == action)
        return action, reason


class SafetyGuard:
    """Implements ``Guard``. ``canary`` is the marker hidden in every model's system prompt: a reply that
    contains it is repeating the prompt and is never shown."""

    def __init__(
        self,
        *,
        moderator: Moderator | None = None,
        injection: InjectionDetector | None = None,
        policy: SafetyPolicy | None = None,
        canary: str = "",
        semantic: tuple[SemanticInjection, SentenceEncoder] | None = None,
    ) -> None:
        self.moderator = moderator or Moderator(LexiconModerator())
        self.injection = injection or InjectionDetector()
        self.semantic = semantic
        self.policy = policy or SafetyPolicy()
        self.canary = canary

    async def inbound(self, text: str) -> GuardVerdict:
        pii = find_pii(text)
        redacted = redact(text, pii) if pii else text
        moderation = await self.moderator.check(redacted)  # an external service never sees the PII
        injection = self.check_injection(text)
        action, reason = self.policy.decide(moderation.categories, injection.flagged)
        detail: dict[str, object] = {}
        if moderation.matches:
            detail["terms"] = list(moderation.matches)
        if moderation.error:
            detail["moderation_error"] = moderation.error
        if injection.evidence:
            detail["evidence"] = list(injection.evidence)
        return GuardVerdict(
            pii=pii,
            flagged=moderation.flagged,
            categories=moderation.categories,
            injection_score=round(injection.score, 3),
            redacted_text=redacted,
            injection=injection.flagged,
            injection_categories=injection.categories,
            action=action,
            reason=reason,
            detail=detail,
        )

    async def outbound(self, text: str, *, written_by_model: bool = False) -> GuardVerdict:
        pii = find_pii(text)
        redacted = redact(text, pii) if pii else text
        if not written_by_model:
            # The operator's own templates filled with tool data: nothing to moderate on every turn's path.
            return GuardVerdict(pii=pii, redacted_text=redacted, leak=self.leaks_prompt(text))
        moderation = await self.moderator.check(redacted)
        leak = self.leaks_prompt(text)
        action: GuardAction = "allow"
        reason = None
        if leak or moderation.flagged:
            # A model's reply that fails a check is withdrawn; the pipeline answers with the template.
            action = "block"
            reason = "prompt_leak" if leak else f"moderation:{moderation.categories[0]}"
        detail: dict[str, object] = {"terms": list(moderation.matches)} if moderation.matches else {}
        return GuardVerdict(
            pii=pii,
            flagged=moderation.flagged,
            categories=moderation.categories,
            redacted_text=redacted,
            leak=leak,
            action=action,
            reason=reason,
            detail=detail,
        )

    def sentence_ok(self, sentence: str, known: str = "") -> bool:
        """The quick check a model's sentence passes before the customer sees it (lexicon moderation only: it
        runs while the answer streams). ``known``: the customer's message and what the model was given; PII
        found in none of it did not come from this conversation and is never shown."""
        if self.leaks_prompt(sentence):
            return False
        if self.foreign_pii(find_pii(sentence), known):
            return False
        verdict: ModerationVerdict = self.moderator.lexicon.check(sentence)
        return not verdict.flagged

    def check_injection(self, text: str) -> InjectionVerdict:
        """The rules and the n-gram model; when they pass a message, its meaning (the sentence embedding,
        which the NLU step reuses) gets the last word."""
        verdict = self.injection.check(text)
        if verdict.flagged or self.semantic is None or not text.strip():
            return verdict
        model, encoder = self.semantic
        probability = model.probability(encoder.encode([text])[0])
        if probability < model.threshold:
            return verdict
        return InjectionVerdict(True, round(probability, 3), ("semantic",), (f"semantic model {probability:.2f}",))

    def document_suspicious(self, text: str) -> bool:
        """A passage or tool result that addresses the model with instructions (a third party wrote it)."""
        return self.injection.check(text, source="document").flagged

    def leaks_prompt(self, text: str) -> bool:
        return bool(self.canary) and self.canary in text

    @staticmethod
    def foreign_pii(spans: tuple[Span, ...], known: str) -> tuple[Span, ...]:
        given = {_digits_or_text(s.text) for s in find_pii(known)} if known and spans else set()
        return tuple(s for s in spans if _digits_or_text(s.text) not in given)


def _digits_or_text(value: str) -> str:
    digits = "".join(c for c in value if c.isdigit())
    return digits if len(digits) >= 7 else value.strip().lower()
