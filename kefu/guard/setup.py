"""Builds the guard's parts from the settings (the runtime and the CLI share this)."""

from __future__ import annotations

from kefu.access.tokens import derived_secret
from kefu.config import Settings
from kefu.guard.injection import InjectionDetector
from kefu.guard.injection_semantic import SemanticInjection
from kefu.guard.moderation import HttpModerator, LexiconModerator, Moderator
from kefu.guard.pseudonym import Pseudonymizer
from kefu.guard.safety import DEFAULT_MODERATION_ACTIONS, SafetyGuard, SafetyPolicy
from kefu.guard.storage import PayloadScrubber, Sealer
from kefu.nlu.encoder import SentenceEncoder


def prompt_canary(secret: bytes) -> str:
    """The marker in every model's system prompt; the same for every replica that shares the secret (so the
    prompt prefix stays identical), unguessable without it."""
    return "kefu-" + derived_secret(secret, "canary").hex()[:12]


def build_moderator(settings: Settings) -> Moderator:
    external = None
    if settings.moderation_url:
        external = HttpModerator(
            settings.moderation_url,
            api_key=settings.moderation_api_key,
            model=settings.moderation_model,
            timeout_s=settings.moderation_timeout_s,
            style=settings.moderation_style,
            category_map=settings.moderation_category_map,
        )
    return Moderator(LexiconModerator(settings.moderation_terms), external)


def build_guard(settings: Settings, secret: bytes, encoder: SentenceEncoder | None = None) -> SafetyGuard:
    """``encoder``: the NLU's sentence encoder (a ``RecentVectors``, so a message is embedded once a turn);
    with it the semantic injection check runs too."""
    policy = SafetyPolicy(
        moderation_actions={**DEFAULT_MODERATION_ACTIONS, **settings.moderation_actions},
        injection_action=settings.injection_action,
    )
    return SafetyGuard(
        moderator=build_moderator(settings),
        injection=InjectionDetector(settings.injection_threshold),
        policy=policy,
        canary=prompt_canary(secret),
        semantic=semantic_check(encoder),
    )


def semantic_check(encoder: SentenceEncoder | None) -> tuple[SemanticInjection, SentenceEncoder] | None:
    if encoder is None:
        return None
    model = SemanticInjection.load()
    return (model, encoder) if model.encoder == encoder.name else None


def build_scrubber(settings: Settings) -> PayloadScrubber:
    return PayloadScrubber(Sealer(settings.store_originals_key) if settings.store_originals else None)


def build_pseudonymizer(settings: Settings, secret: bytes) -> Pseudonymizer:
    explicit = settings.pseudonym_secret.encode()
    return Pseudonymizer(explicit or derived_secret(secret, "pseudonym"))
