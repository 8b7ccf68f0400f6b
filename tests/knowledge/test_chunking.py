"""Chunking: heading paths, paragraphs packed to the limit, long ones cut between sentences, FAQ whole."""

from __future__ import annotations

from kefu.knowledge.chunking import chunk_document
from kefu.knowledge.documents import Document, FaqEntry


def _doc(body: str, language: str = "en", **extra: object) -> Document:
    return Document("d", language, "Guide", body, "guide.md", **extra)  # type: ignore[arg-type]


def test_sections_keep_their_heading_path() -> None:
    body = "Intro line.\n\n## Returns\nSeven days.\n\n### Costs\nYou pay postage.\n\n## Warranty\nOne year."
    chunks = chunk_document(_doc(body))
    assert [(c.path, c.text) for c in chunks] == [
        ((), "Intro line."),
        (("", "Returns"), "Seven days."),
        (("", "Returns", "Costs"), "You pay postage."),
        (("", "Warranty"), "One year."),
    ]
    assert chunks[2].heading_text == "Guide / Returns / Costs"
    assert [c.position for c in chunks] == [0, 1, 2, 3]


def test_paragraphs_are_packed_up_to_the_limit_and_never_split_when_they_fit() -> None:
    paragraphs = [f"Paragraph {i} " + "word " * 20 for i in range(6)]  # about 110 characters each
    chunks = chunk_document(_doc("\n\n".join(paragraphs)), max_chars=250)
    assert all(len(c.text) <= 250 for c in chunks)
    assert [c.text.count("Paragraph") for c in chunks] == [2, 2, 2]
    joined = "\n\n".join(c.text for c in chunks)
    assert all(p.strip() in joined for p in paragraphs)


def test_a_long_english_paragraph_is_cut_between_sentences() -> None:
    sentences = [f"Step {i} tells you exactly what to click next." for i in range(30)]
    chunks = chunk_document(_doc(" ".join(sentences)), max_chars=200)
    assert len(chunks) > 5 and all(len(c.text) <= 200 for c in chunks)
    assert all(c.text.endswith(".") for c in chunks)  # no sentence is cut in two
    assert " ".join(c.text for c in chunks) == " ".join(sentences)


def test_glued_sentences_from_flattened_pages_are_separated() -> None:
    text = "Click Save.Then go to Settings.In this article, learn more about:Blocking time " + "x " * 150
    chunks = chunk_document(_doc(text), max_chars=120)
    assert chunks[0].text.startswith("Click Save. Then go to Settings.")


def test_chinese_paragraph_is_cut_at_chinese_sentence_ends() -> None:
    sentence = "收货后七天内可以无理由退货，请保持商品完好。"
    chunks = chunk_document(_doc(sentence * 30, language="zh"))  # 660 characters, the zh limit is 300
    assert len(chunks) == 3 and all(len(c.text) <= 300 for c in chunks)
    assert all(c.text.endswith("。") for c in chunks)
    assert "".join(c.text for c in chunks) == sentence * 30


def test_a_sentence_longer_than_the_limit_is_cut_at_the_limit() -> None:
    chunks = chunk_document(_doc("a" * 450), max_chars=200)
    assert [len(c.text) for c in chunks] == [200, 200, 50]


def test_faq_entries_stay_whole_with_the_question_as_heading() -> None:
    long_answer = "退款将在三个工作日内原路退回。" * 40  # longer than any chunk limit
    faq = (FaqEntry("多久退款？", long_answer), FaqEntry("Can I pay by card?", "Yes, Visa and Mastercard."))
    chunks = chunk_document(_doc("", language="zh", kind="faq", faq=faq))
    assert [(c.path, c.text) for c in chunks] == [
        (("Guide", "多久退款？"), long_answer),
        (("Guide", "Can I pay by card?"), "Yes, Visa and Mastercard."),
    ]
