from __future__ import annotations

from kefu.core.types import Decision, DialogueState, IntentScore, Parse, Utterance
from kefu.respond.template_responder import TemplateResponder
from kefu.respond.templates import fill

PARSE = Parse("x", "en", IntentScore("x", 1.0), ())


def test_fill_picks_the_locale_and_formats_values() -> None:
    values = {"order": {"id": "100001", "item": {"en": "Earbuds", "zh": "耳机"}, "price": 899.0, "tags": ["a", "b"]}}
    assert fill("{order.id} {order.item} ¥{order.price} {order.tags}", values, "en") == "100001 Earbuds ¥899 a, b"
    assert fill("{order.item} {order.tags} {missing.value}", values, "zh") == "耳机 a、b "


def test_render_joins_utterances_and_collects_citations() -> None:
    responder = TemplateResponder({"en": {"a": "Hello {name}.", "kb": "{kb.answer}", "qr": "Yes"}, "zh": {}}, "en")
    kb = {"found": True, "id": "warranty", "title": "Warranty", "answer": "One year."}
    decision = Decision(
        DialogueState(),
        [Utterance("a", {"name": "Li"}), Utterance("kb", {"kb": kb, "_cite": kb})],
        quick_replies=["qr"],
    )
    reply = responder.render(decision, PARSE, "en")
    assert reply.text == "Hello Li.\nOne year."
    assert [(c.id, c.title) for c in reply.citations] == [("warranty", "Warranty")]
    assert reply.quick_replies == ("Yes",)
