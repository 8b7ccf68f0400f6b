"""The NLU step: one embedding per message feeds the intent and dialogue-act classifiers."""

from __future__ import annotations

from kefu.core.types import IntentScore, Locale, Parse
from kefu.nlu.classifier import TextClassifier
from kefu.nlu.encoder import SentenceEncoder
from kefu.nlu.entities import EntityExtractor
from kefu.nlu.language import reply_locale
from kefu.nlu.phrases import fold

OTHER_ACT = "other"


class NluService:
    """Implements ``Understanding``. Below ``threshold`` the intent becomes ``fallback_intent`` with
    confidence ``1 - top``: the model's doubt that any in-scope intent fits."""

    def __init__(
        self,
        encoder: SentenceEncoder,
        intents: TextClassifier,
        acts: TextClassifier,
        extractor: EntityExtractor,
        *,
        threshold: float,
        fallback_intent: str = "out_of_scope",
        default_locale: Locale = "zh",
        phrases: dict[str, tuple[str | None, str | None]] | None = None,
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

    def parse(self, text: str, *, locale_hint: Locale | None = None) -> Parse:
        embedding = self.encoder.encode([text])[0]
        ranked = self.intents.predict(text, embedding)
        ranking = tuple(IntentScore(name, score) for name, score in zip(ranked.labels, ranked.scores, strict=True))
        top = ranking[0]
        intent = top if top.confidence >= self.threshold else IntentScore(self.fallback_intent, 1.0 - top.confidence)
        act = self.acts.predict(text, embedding)
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
