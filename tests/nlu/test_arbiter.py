"""The LLM second opinion: the prompt, reading the answer, and never blocking a turn when the LLM fails."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from kefu.core.types import IntentScore, Parse
from kefu.nlu.arbiter import LlmIntentArbiter, build_prompt, read_choice
from tests.e2e.conftest import free_port

RANKING = (IntentScore("card_arrival", 0.41), IntentScore("card_delivery_estimate", 0.38), IntentScore("oos", 0.1))


def parse(confidence: float) -> Parse:
    top = IntentScore("card_arrival", confidence)
    return Parse(text="x", language="en", intent=top, ranking=(top,), entities=(), vector=np.zeros(2))


def test_prompt_numbers_the_candidates_and_offers_none() -> None:
    prompt = build_prompt("where's my card", ["card_arrival", "exchange_rate"], {"exchange_rate": "currency rates"})
    assert "Customer message: where's my card" in prompt
    assert "1. card arrival" in prompt and "2. currency rates" in prompt and "0. none of these" in prompt


def test_reading_the_answer() -> None:
    candidates = ["a", "b"]
    assert read_choice("2", candidates) == "b"
    assert read_choice(" Option 1.", candidates) == "a"
    assert read_choice("0", candidates) == ""
    assert read_choice("7", candidates) is None
    assert read_choice("I think b", candidates) is None


async def test_only_unsure_parses_are_sent_and_a_dead_llm_keeps_the_classifier() -> None:
    arbiter = LlmIntentArbiter(f"http://127.0.0.1:{free_port()}/v1", "m", below=0.6, timeout_s=1.0)
    try:
        assert arbiter.wants(parse(0.41)) and not arbiter.wants(parse(0.9))
        certain = replace(parse(0.3), intent=IntentScore("card_arrival", 1.0))  # a quick reply's fixed meaning
        assert not arbiter.wants(certain)
        assert await arbiter.choose("where is my card", RANKING) is None  # connection refused: no opinion
    finally:
        await arbiter.close()
