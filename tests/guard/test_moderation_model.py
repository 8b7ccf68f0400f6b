"""The moderation model beside the lexicons (zh + en): it catches phrasings no term covers, keeps customers'
complaints and look-alikes clean, says what it saw, loads and scores fast, and retrains from its examples."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from kefu.guard.lexicons import CATEGORIES, Lexicon
from kefu.guard.lexicons.model import MODEL_PATH, CategoryModel, load_model, unblanked
from kefu.guard.lexicons.train import Example, choose_thresholds, fit, groups, read_examples
from kefu.guard.moderation import LexiconModerator, ModerationVerdict
from tests.guard.cpu_time import p99_thread_seconds

# Phrasings that share no term with the lexicons, none of them among the model's training examples.
MODEL_ONLY = [
    ("gays ruin every shop they walk into", "hate"),
    ("I'm thinking of ways to not be here anymore", "self_harm"),
    ("I want some dirty pics", "sexual"),
    ("外地人都不讲卫生", "hate"),
    ("我已经不想再醒过来了", "self_harm"),
    ("我把药都准备好了，今晚就走", "self_harm"),
    ("帮我弄个别人的实名账号", "illegal"),
    ("给我发点不穿衣服的视频", "sexual"),
]
# Strong words, sensitive products and people named without contempt: the model must leave them alone.
HARD_NEGATIVES = [
    "I'll bring my receipt to your store",
    "how do I report a stolen card",
    "my cat died, cancel the cat food subscription",
    "can old people use your app easily",
    "the game has too much violence for kids?",
    "I'm dying to know when it ships",
    "do you sell air guns for target practice",
    "this is the most pathetic delivery service",
    "send me some photos of the scratch",
    "我等得都快饿死了",
    "这个破手机又死机了",
    "老年人用你们的app方便吗",
    "止痛药一次吃几粒安全",
    "我的狗去世了，取消狗粮订阅",
    "黑色运动鞋44码有吗",
    "骗子网站吧，怎么还不发货",
]


@pytest.fixture(scope="module")
def both() -> tuple[LexiconModerator, LexiconModerator]:
    """The moderator with the n-gram model (off by default), and the same terms without it."""
    return LexiconModerator(model_path=MODEL_PATH), LexiconModerator()


@pytest.fixture
def moderator(both: tuple[LexiconModerator, LexiconModerator]) -> LexiconModerator:
    return both[0]


@pytest.fixture
def lexicon_only(both: tuple[LexiconModerator, LexiconModerator]) -> LexiconModerator:
    return both[1]


@pytest.mark.parametrize(("text", "category"), MODEL_ONLY)
def test_the_model_catches_what_no_term_covers(
    moderator: LexiconModerator, lexicon_only: LexiconModerator, text: str, category: str
) -> None:
    assert not lexicon_only.check(text).flagged, text
    verdict = moderator.check(text)
    assert verdict.categories == (category,) and verdict.source == "lexicon", (text, verdict)
    assert len(verdict.matches) == 1 and verdict.matches[0].startswith(f"model:{category}~"), verdict.matches
    assert text not in verdict.matches[0]  # evidence, never the message


@pytest.mark.parametrize("text", HARD_NEGATIVES)
def test_the_model_leaves_complaints_and_look_alikes_clean(moderator: LexiconModerator, text: str) -> None:
    assert moderator.check(text) == ModerationVerdict(False, (), "none"), text


def test_examples_cover_both_languages_and_every_category() -> None:
    examples = read_examples()
    for script in ("zh", "en"):
        mine = [e for e in examples if e.origin == f"examples_{script}.yaml"]
        assert {c for e in mine for c in e.categories} == set(CATEGORIES)
        assert sum(1 for e in mine if not e.categories) >= 150  # clean hard negatives outnumber any category
    assert not {t for t, _ in MODEL_ONLY} & {e.text for e in examples}  # the tests above are not training data
    assert not set(HARD_NEGATIVES) & {e.text for e in examples}


def test_a_term_s_category_is_not_repeated_by_the_model(moderator: LexiconModerator) -> None:
    verdict = moderator.check("I want to kill myself, I've written my goodbye letter")
    assert verdict.categories == ("self_harm",)
    assert not any(m.startswith("model:") for m in verdict.matches)


def test_without_a_model_path_only_terms_count(lexicon_only: LexiconModerator) -> None:
    assert lexicon_only.check("你是傻逼吗").categories == ("abuse",)
    assert lexicon_only.check("外地人都不讲卫生") == ModerationVerdict(False, (), "none")


def test_a_long_message_is_scored_window_by_window(moderator: LexiconModerator) -> None:
    filler = "My order 100001 was late and the box was dented, but the earbuds work fine. " * 20
    verdict = moderator.check(filler + "I'm thinking of ways to not be here anymore. " + filler)
    assert verdict.categories == ("self_harm",), verdict
    assert not moderator.check(filler * 3).flagged


def test_the_shipped_model() -> None:
    model = CategoryModel.load(MODEL_PATH)
    assert model.categories == CATEGORIES
    assert all(0.7 <= t <= 0.995 for t in model.thresholds)  # a high probability before it flags anything
    assert load_model(MODEL_PATH) is load_model(MODEL_PATH)  # read once per process


def test_the_model_loads_and_scores_fast() -> None:
    """Loading under 100 ms and scoring a typical message under 0.3 ms (p99), in this thread's CPU time."""
    started = time.thread_time()
    model = CategoryModel.load(MODEL_PATH)
    assert time.thread_time() - started < 0.1
    lexicon = Lexicon()
    messages = [lexicon.prepare(t) for t, _ in MODEL_ONLY] + [lexicon.prepare(t) for t in HARD_NEGATIVES]
    messages += [lexicon.prepare("订单100001什么时候到？顺丰单号SF1234567890一直没更新，麻烦查一下。" * 2)]
    assert p99_thread_seconds(model.check, messages, rounds=20) <= 0.0003


def test_training_round_trip(tmp_path: Path) -> None:
    """A model trained on a few lines separates them, and survives being written and read back."""
    lines = {
        "you are a worthless moron": {"abuse"},
        "shut up you brainless clown": {"abuse"},
        "listen here you pathetic idiot": {"abuse"},
        "what a dumb useless moron you are": {"abuse"},
        "你这个废物东西": {"abuse"},
        "你就是个没用的蠢货": {"abuse"},
        "where is my parcel": set(),
        "the blue one please": set(),
        "refund my order please": set(),
        "what time do you open": set(),
        "我的快递到哪了": set(),
        "请帮我退款": set(),
    }
    prepared = list(lines)
    labels = np.array([[int(c in cats) for c in CATEGORIES] for cats in lines.values()])
    vocabulary, weights, bias = fit(prepared, labels, 16.0)
    model = CategoryModel(CATEGORIES, vocabulary, weights, bias, [0.5] * len(CATEGORIES))
    path = tmp_path / "model.json"
    path.write_text(model.to_json(), encoding="utf-8")
    again = CategoryModel.load(path)
    assert json.loads(path.read_text(encoding="utf-8"))["categories"] == list(CATEGORIES)
    abuse = CATEGORIES.index("abuse")
    for text, cats in lines.items():
        probability = again.probabilities(unblanked(text))[abuse]
        assert abs(probability - model.probabilities(text)[abuse]) < 1e-3
        assert (probability >= 0.5) == ("abuse" in cats), (text, probability)


def test_thresholds_stay_above_every_clean_score() -> None:
    labels = np.array([[1, 0], [1, 0], [0, 0], [0, 0], [0, 1]])
    scores = np.array([[0.95, 0.1], [0.85, 0.2], [0.8, 0.3], [0.4, 0.97], [0.2, 0.99]])
    abuse, other = choose_thresholds(scores, labels, floor=0.7, precision=0.9, margin=0.0)
    assert 0.8 < abuse <= 0.85  # above the clean 0.8, low enough to keep the 0.85
    assert other > 0.97  # a clean example scored 0.97 on it
    raised, _ = choose_thresholds(scores, labels, floor=0.7, precision=0.9, margin=0.5)
    assert raised > abuse


def test_a_line_and_the_same_line_with_a_greeting_share_a_group() -> None:
    examples = [
        Example(text, frozenset(), "dev")
        for text in ("send me nudes", "hi, send me nudes!!", "where is my parcel", "where is my parcel?")
    ]
    first, second, third, fourth = groups(examples)
    assert first == second and third == fourth and first != third
