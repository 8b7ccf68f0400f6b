"""Model profiles: profile choice, request extras, visible text, tool calls, and the streaming filter."""

from __future__ import annotations

import json

import pytest

from kefu.llm.profiles import GenericProfile, Qwen3Profile, profile_for
from kefu.llm.types import RequestedCall

QWEN = Qwen3Profile()
GENERIC = GenericProfile()

HERMES_ONE = '<tool_call>\n{"name": "lookup_order", "arguments": {"order_id": "100001"}}\n</tool_call>'
HERMES_TWO = (
    "<tool_call>\n"
    '{"name": "lookup_order", "arguments": {"order_id": "100001"}}\n'
    "</tool_call>\n"
    "<tool_call>\n"
    '{"name": "track_parcel", "arguments": {"tracking_no": "SF123", "lang": "中文"}}\n'
    "</tool_call>"
)

# Whole replies for the stream-versus-whole property; every split point of each is tried.
SAMPLES = [
    "<think>用户问物流</think>\n\n您的订单已发货。",
    "<think>\nThe user asks about a refund.\n</think>\n\nYour refund was issued on Monday.",
    "Hello! The price < 100 and a<b holds.",
    "您好<think>想一想</think>请问还有什么可以帮您？<think>再想</think>谢谢。",
    "Let me check.\n" + HERMES_ONE,
    "<think>call a tool?</think>\n\n" + HERMES_TWO + "\nDone.",
    '<think>I might <tool_call>{"name": "x"}</tool_call></think>OK',
    "</think>\n\nAnswer after a stray close tag.",
    "<think>cut off while thinking",
    'Text then <tool_call>{"name": "cut',
    "Ends with a lone <",
    "",
]


@pytest.mark.parametrize(
    ("model_id", "expected"),
    [
        ("Qwen/Qwen3-14B", "qwen3"),
        ("qwen3-14b-awq", "qwen3"),
        ("Qwen3-14B-FP8", "qwen3"),
        ("Qwen/Qwen2.5-7B-Instruct", "generic"),
        ("meta-llama/Llama-3.1-8B-Instruct", "generic"),
    ],
)
def test_profile_chosen_from_model_id(model_id: str, expected: str) -> None:
    assert profile_for(model_id).name == expected


def test_explicit_profile_name_wins() -> None:
    assert profile_for("Qwen/Qwen3-14B", "generic").name == "generic"
    assert isinstance(profile_for("llama-3", "qwen3"), Qwen3Profile)


def test_unknown_profile_name_lists_known_ones() -> None:
    with pytest.raises(ValueError, match="mistral") as caught:
        profile_for("Qwen/Qwen3-14B", "mistral")
    assert "generic" in str(caught.value) and "qwen3" in str(caught.value)


def test_request_extras() -> None:
    assert QWEN.request_extras() == {"chat_template_kwargs": {"enable_thinking": False}}
    assert QWEN.request_extras(thinking=True) == {"chat_template_kwargs": {"enable_thinking": True}}
    assert GENERIC.request_extras() == {}
    assert GENERIC.request_extras(thinking=True) == {}


@pytest.mark.parametrize("profile", [QWEN, GENERIC], ids=["qwen3", "generic"])
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("<think>用户问物流</think>\n\n您的订单已发货。", "您的订单已发货。"),
        ("<think>\nreasoning\n</think>\n\nHello there.", "Hello there."),
        ("<think>cut off while thinking about the ord", ""),
        ("\n<think>cut off", ""),
        ("reasoning in the template</think>\n\nThe answer.", "The answer."),
        ("</think>The answer.", "The answer."),
        ("A<think>x</think> B<think>y</think>C", "A BC"),
        ("Plain answer, no tags.  ", "Plain answer, no tags."),
        ("Checking.\n" + HERMES_ONE, "Checking."),
        ("price < 100, a<b", "price < 100, a<b"),
        ("", ""),
    ],
)
def test_message_text(profile: GenericProfile | Qwen3Profile, content: str, expected: str) -> None:
    assert profile.message_text({"role": "assistant", "content": content}) == expected


def test_reasoning_fields_are_never_returned() -> None:
    message = {"content": None, "reasoning_content": "secret plan", "reasoning": "secret plan"}
    assert QWEN.message_text(message) == ""
    assert GENERIC.message_text(message) == ""
    message = {"content": "Shown.", "reasoning_content": "hidden", "reasoning": "hidden"}
    assert QWEN.message_text(message) == "Shown."


def test_content_none_or_missing() -> None:
    assert QWEN.message_text({"content": None}) == ""
    assert QWEN.message_text({}) == ""
    assert QWEN.tool_calls({"content": None}) == []


def test_openai_tool_calls_string_and_dict_arguments() -> None:
    message = {
        "content": None,
        "tool_calls": [
            {"id": "chatcmpl-tool-1", "type": "function", "function": {"name": "a", "arguments": ' {"x":  1}'}},
            {"type": "function", "function": {"name": "b", "arguments": {"city": "上海"}}},
        ],
    }
    assert QWEN.tool_calls(message) == [
        RequestedCall(id="chatcmpl-tool-1", name="a", arguments=' {"x":  1}'),  # raw text kept as written
        RequestedCall(id="call_1", name="b", arguments='{"city": "上海"}'),
    ]


def test_openai_tool_call_without_id_gets_call_0() -> None:
    message = {"tool_calls": [{"type": "function", "function": {"name": "lookup_order", "arguments": "{}"}}]}
    assert GENERIC.tool_calls(message) == [RequestedCall(id="call_0", name="lookup_order", arguments="{}")]


def test_openai_tool_calls_win_over_hermes_content() -> None:
    message = {
        "content": HERMES_ONE,
        "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "real", "arguments": "{}"}}],
    }
    assert [c.name for c in QWEN.tool_calls(message)] == ["real"]


def test_hermes_one_block() -> None:
    calls = QWEN.tool_calls({"content": "Let me look.\n" + HERMES_ONE, "tool_calls": []})
    assert calls == [RequestedCall(id="call_0", name="lookup_order", arguments='{"order_id": "100001"}')]


def test_hermes_two_blocks() -> None:
    calls = QWEN.tool_calls({"content": HERMES_TWO})
    assert [(c.id, c.name) for c in calls] == [("call_0", "lookup_order"), ("call_1", "track_parcel")]
    assert json.loads(calls[1].arguments) == {"tracking_no": "SF123", "lang": "中文"}
    assert "中文" in calls[1].arguments  # not \\u-escaped


def test_hermes_broken_blocks_skipped() -> None:
    content = (
        "<tool_call>{not json}</tool_call>"
        '<tool_call>{"arguments": {}}</tool_call>'
        '<tool_call>{"name": 7}</tool_call>'
        '<tool_call>["name"]</tool_call>' + HERMES_ONE
    )
    assert QWEN.tool_calls({"content": content}) == [
        RequestedCall(id="call_0", name="lookup_order", arguments='{"order_id": "100001"}')
    ]
    assert QWEN.message_text({"content": content}) == ""


def test_hermes_inside_think_ignored() -> None:
    content = "<think>maybe " + HERMES_ONE + "</think>\n\nNo tool needed."
    assert QWEN.tool_calls({"content": content}) == []
    assert QWEN.tool_calls({"content": HERMES_ONE + "</think>answer"}) == []  # before a stray close: reasoning
    assert QWEN.message_text({"content": content}) == "No tool needed."


def _stream(pieces: list[str]) -> tuple[str, list[str], list[RequestedCall]]:
    f = QWEN.stream_filter()
    outs = [f.feed(p) for p in pieces]
    outs.append(f.flush())
    return "".join(outs), outs, f.tool_calls


@pytest.mark.parametrize("sample", SAMPLES)
def test_stream_matches_whole_reply_at_every_split(sample: str) -> None:
    whole = QWEN.message_text({"content": sample})
    whole_calls = QWEN.tool_calls({"content": sample})
    for i in range(len(sample) + 1):
        text, outs, calls = _stream([sample[:i], sample[i:]])
        assert text.strip() == whole, (i, outs)
        assert calls == whole_calls, i
        for out in outs:
            for tag in ("<think", "</think", "<tool_call", "</tool_call"):
                assert tag not in out, (i, outs)
    # and one character at a time
    text, _, calls = _stream(list(sample))
    assert text.strip() == whole
    assert calls == whole_calls


def test_stream_samples_have_expected_visible_text() -> None:
    # Pins the property above to real values, so it cannot pass by both sides being empty.
    expected = [
        "您的订单已发货。",
        "Your refund was issued on Monday.",
        "Hello! The price < 100 and a<b holds.",
        "您好请问还有什么可以帮您？谢谢。",
        "Let me check.",
        "Done.",
        "OK",
        "Answer after a stray close tag.",
        "",
        "Text then",
        "Ends with a lone <",
        "",
    ]
    assert [_stream([s])[0].strip() for s in SAMPLES] == expected


def test_tag_split_across_three_pieces() -> None:
    f = QWEN.stream_filter()
    assert f.feed("<th") == ""
    assert f.feed("in") == ""
    assert f.feed("k>用户想退款</th") == ""
    assert f.feed("in") == ""
    assert f.feed("k>\n\n") == ""
    assert f.feed("好的，") == "好的，"
    assert f.feed("<tool_") == ""
    assert f.feed('call>{"name": "refund", "arguments": {}}</tool_') == ""
    assert f.feed("call>") == ""
    assert f.flush() == ""
    assert f.tool_calls == [RequestedCall(id="call_0", name="refund", arguments="{}")]


def test_lone_angle_bracket_released() -> None:
    f = GENERIC.stream_filter()
    assert f.feed("price <") == "price "
    assert f.feed(" 100") == "< 100"
    assert f.feed(", a<") == ", a"
    assert f.feed("b") == "<b"
    assert f.feed(" x<") == " x"
    assert f.flush() == "<"


def test_hold_back_is_short_and_released_when_not_a_tag() -> None:
    f = GENERIC.stream_filter()
    assert f.feed("abc<tool_cal") == "abc"
    assert f.feed("x") == "<tool_calx"
    assert f.feed("</thin") == ""
    assert f.feed("g") == "</thing"


def test_whitespace_after_think_dropped_even_when_streamed_apart() -> None:
    f = QWEN.stream_filter()
    assert f.feed("<think>x</think>") == ""
    assert f.feed("\n") == ""
    assert f.feed("\n  ") == ""
    assert f.feed("Hi\n") == "Hi\n"
    assert f.feed(" there") == " there"
    assert f.feed("<think>y</think> again") == " again"  # only leading whitespace is dropped


def test_flush_inside_block_is_empty() -> None:
    f = QWEN.stream_filter()
    assert f.feed("Sure.<think>still thinking </thi") == "Sure."
    assert f.flush() == ""
    g = QWEN.stream_filter()
    assert g.feed('Checking <tool_call>{"name": "lookup_order"') == "Checking "
    assert g.flush() == ""
    assert g.tool_calls == []  # never closed


def test_each_stream_filter_is_fresh() -> None:
    first = QWEN.stream_filter()
    first.feed("<think>open")
    assert QWEN.stream_filter().feed("visible") == "visible"
