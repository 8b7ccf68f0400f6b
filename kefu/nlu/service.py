"""The NLU step: one embedding per message feeds the intent and dialogue-act models."""

from __future__ import annotations

from collections.abc import Mapping

from kefu.core.types import IntentScore, Locale, Parse
from kefu.nlu.encoder import SentenceEncoder, UseEncoder, Vectors
from kefu.nlu.entities import EntityExtractor
from kefu.nlu.intent_model import IntentModel
from kefu.nlu.language import reply_locale
from kefu.nlu.phrases import fold

OTHER_ACT = "other"


class NluService:
    """Implements ``Understanding``. A message becomes ``fallback_intent`` when the model calls it out of
    scope or its top confidence is below ``threshold``; the confidence is then the model's doubt.

    ``intents`` may be replaced at any time (a retrained model is swapped in without a restart): each
    parse reads it once, so a turn never mixes two models."""

    def __init__(
        self,
        encoder: SentenceEncoder,
        intents: IntentModel,
        acts: IntentModel,
        extractor: EntityExtractor,
        *,
        threshold: float,
        fallback_intent: str = "out_of_scope",
        default_locale: Locale = "zh",
        phrases: dict[str, tuple[str | None, str | None]] | None = None,
        extra_encoders: Mapping[str, SentenceEncoder] | None = None,
    ) -> None:
        self.encoder = encoder
        self.intents = intents
        self.acts = acts
        self.extractor = extractor
        self.threshold = threshold
        self.fallback_intent = fallback_intent
        self.default_locale = default_locale
        # Exact phrases with a fixed meaning (the labels of quick replies the bot offers): no guessing.
        self.phrases = phrases or {}
        self.extra_encoders = dict(extra_encoders or {})

    def _vectors(self, text: str, embedding: Vectors, model: IntentModel) -> dict[str, Vectors]:
        vectors = {UseEncoder.name: embedding}
        for name in model.encoders:
            if name not in vectors:
                vectors[name] = self.extra_encoders[name].encode([text])[0]
        return vectors

    def parse(self, text: str, *, locale_hint: Locale | None = None) -> Parse:
        embedding = self.encoder.encode([text])[0]
        intents = self.intents  # one model for the whole parse, even if a reload swaps it meanwhile
        predicted = intents.predict(text, self._vectors(text, embedding, intents))
        ranking = tuple(IntentScore(n, s) for n, s in zip(predicted.labels, predicted.scores, strict=True))
        top = ranking[0]
        if predicted.out_of_scope or top.confidence < self.threshold:
            doubt = max(predicted.oos_score, 1.0 - top.confidence) if top.name != "oos" else top.confidence
            intent = IntentScore(self.fallback_intent, doubt)
        else:
            intent = top
        act = self.acts.predict(text, self._vectors(text, embedding, self.acts), top=1)
        act_name = act.labels[0] if act.labels[0] != OTHER_ACT else None
        act_confidence = act.scores[0] if act_name else 0.0
        fixed_intent, fixed_act = self.phrases.get(fold(text), (None, None))
        if fixed_intent is not None:
            intent = IntentScore(fixed_intent, 1.0)
        if fixed_act is not None:
            act_name, act_confidence = fixed_act, 1.0
        return Parse(
            text=text,
            language=reply_locale(text, locale_hint or self.default_locale),
            intent=intent,
            ranking=ranking,
            entities=self.extractor.extract(text),
            act=act_name,
            act_confidence=act_confidence,
            vector=embedding,
        )
