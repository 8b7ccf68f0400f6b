"""The session mix: seeded, weighted scripts of demo-shop conversations in zh and en."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from kefu.loadtest.sessions import ORDERS, SCRIPTS, SessionMix

HAN = re.compile(r"[\u4e00-\u9fff]")


def test_the_mix_follows_the_weights_and_both_languages() -> None:
    mix = SessionMix(seed=1)
    sessions = [mix.new_session() for _ in range(4000)]
    kinds = Counter(s.kind for s in sessions)
    total = sum(s.weight for s in SCRIPTS)
    for script in SCRIPTS:
        assert kinds[script.kind] / 4000 == pytest.approx(script.weight / total, abs=0.03)
    assert Counter(s.locale for s in sessions)["zh"] / 4000 == pytest.approx(0.5, abs=0.05)
    assert all(bool(HAN.search("".join(s.turns))) == (s.locale == "zh") for s in sessions)
    assert len({s.conversation_id for s in sessions}) == 4000


def test_sessions_name_the_demo_orders_and_the_cancel_confirmation() -> None:
    mix = SessionMix(("en",), seed=2)
    sessions = [mix.new_session() for _ in range(500)]
    status = [s for s in sessions if s.kind == "order_status"]
    assert {o for s in status for o in ORDERS if any(o in t for t in s.turns)} == set(ORDERS)
    assert all("{order}" not in t for s in sessions for t in s.turns)
    cancels = [s for s in sessions if s.kind == "cancel_order"]
    assert cancels and all(any("100003" in t for t in s.turns) for s in cancels)
    assert any(s.turns[1] == "Yes, cancel it" for s in cancels)


def test_turns_come_in_order_and_end() -> None:
    session = SessionMix(("zh",), seed=3).new_session()
    got = [session.next_turn() for _ in session.turns]
    assert got == list(enumerate(session.turns)) and session.done
    with pytest.raises(IndexError):
        session.next_turn()


def test_a_seed_repeats_its_sessions() -> None:
    def turns(seed: int) -> list[tuple[str, ...]]:
        mix = SessionMix(seed=seed, run_id="x")
        return [mix.new_session().turns for _ in range(50)]

    assert turns(7) == turns(7) and turns(7) != turns(8)


def test_unknown_locales_are_refused() -> None:
    with pytest.raises(ValueError, match="locales must be among zh, en"):
        SessionMix(("fr",))
