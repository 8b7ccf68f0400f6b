"""Prompt assembly: a byte-stable prefix first, history within its budget, passages and message last."""

from __future__ import annotations

from kefu.llm.prompt import HistoryLine, Passage, PromptBuilder, render_chatml, shared_prefix_tokens

PERSONA = {"en": "the demo shop", "zh": "演示商城"}
PASSAGES = [Passage(1, "returns", "Returns", "Returns are accepted within 7 days.")]


def test_the_system_prompt_is_the_same_bytes_for_every_turn_and_names_the_persona() -> None:
    builder = PromptBuilder(PERSONA)
    a = builder.messages("en", PASSAGES, [], "hello")
    b = builder.messages("en", [], [HistoryLine("user", "hi"), HistoryLine("bot", "Hello!")], "other")
    assert a[0] == b[0]
    assert "the demo shop" in a[0]["content"]
    assert "演示商城" in builder.messages("zh", PASSAGES, [], "你好")[0]["content"]


def test_history_comes_before_the_passages_and_the_message_is_last() -> None:
    builder = PromptBuilder(PERSONA)
    history = [HistoryLine("user", "where is my order?"), HistoryLine("bot", "Which order?")]
    messages = builder.messages("en", PASSAGES, history, "can I return it?")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[-1]["content"].index("[1] Returns") < messages[-1]["content"].index("can I return it?")


def test_history_keeps_the_most_recent_messages_within_the_budget_and_starts_with_the_customer() -> None:
    builder = PromptBuilder(PERSONA, history_tokens=20, count_tokens=lambda text: len(text.split()))
    history = [
        HistoryLine("user", "one two three four five six"),
        HistoryLine("bot", "seven eight nine"),
        HistoryLine("user", "ten eleven"),
        HistoryLine("agent", "twelve"),
    ]
    kept = builder.history(history)
    assert [m["content"] for m in kept] == ["ten eleven", "twelve"]
    assert [m["role"] for m in kept] == ["user", "assistant"]


def test_passages_beyond_the_budget_are_left_out_but_the_first_always_stays() -> None:
    long = [Passage(i, f"d{i}", f"T{i}", "word " * 50) for i in (1, 2, 3)]
    builder = PromptBuilder(PERSONA, passage_tokens=60, count_tokens=lambda text: len(text.split()))
    block = builder.passages_block(long, "en")
    assert "[1] T1" in block and "[2] T2" not in block


def test_consecutive_turns_share_the_earlier_prompt_as_a_prefix() -> None:
    builder = PromptBuilder(PERSONA)
    first = render_chatml(builder.messages("en", PASSAGES, [], "how do returns work?"))
    history = [HistoryLine("user", "how do returns work?"), HistoryLine("bot", "Within 7 days [1].")]
    second = render_chatml(builder.messages("en", PASSAGES, history, "and refunds?"))
    system = render_chatml(builder.messages("en", [], [], ""))
    shared = shared_prefix_tokens(list(first), list(second))
    assert shared >= system.index("<|im_start|>user")  # at least the whole system message
    assert shared_prefix_tokens([1, 2, 3], [1, 2, 4]) == 2
