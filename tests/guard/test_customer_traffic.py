"""Ordinary customer messages must pass the guard: every intent example of the demo pack (zh + en) is neither
moderated nor taken for a prompt injection. A false refusal of "人工客服" is worse than a missed insult."""

from __future__ import annotations

from pathlib import Path

import pytest

from kefu.config.settings import DEFAULT_TRAINING_DATA_DIR
from kefu.guard.injection import InjectionDetector
from kefu.guard.injection_semantic import SemanticInjection
from kefu.guard.moderation import LexiconModerator
from kefu.guard.safety import SafetyGuard
from kefu.nlu.encoder import RecentVectors, UseEncoder
from kefu.packs.loader import load_pack

ALWAYS_FINE = ["人工客服", "转人工", "我要投诉", "客服", "human agent please", "I want to complain", "退款", "refund"]


@pytest.fixture(scope="module")
def messages() -> list[str]:
    pack = load_pack("ecommerce", Path(DEFAULT_TRAINING_DATA_DIR))
    texts = {t for by_intent in pack.intent_examples.values() for examples in by_intent.values() for t in examples}
    return sorted(texts) + ALWAYS_FINE


def test_no_ordinary_message_is_moderated(messages: list[str]) -> None:
    moderator = LexiconModerator()
    flagged = [(t, moderator.check(t).categories) for t in messages if moderator.check(t).flagged]
    assert len(messages) > 1000 and flagged == []


def test_ordinary_messages_are_not_taken_for_injection(messages: list[str]) -> None:
    guard = SafetyGuard(injection=InjectionDetector(), semantic=(SemanticInjection.load(), RecentVectors(UseEncoder())))
    flagged = [t for t in messages if guard.check_injection(t).flagged]
    assert not set(flagged) & set(ALWAYS_FINE)
    assert len(flagged) <= len(messages) * 0.01, flagged  # flagged only keeps the models out of the turn
