"""Conversations a load test holds with kefu: scripted multi-turn sessions on the demo shop, zh and en.

Each session is one conversation id with its turns in order (order status for 100001-100004, cancelling
100003 with its confirmation, a return of 100002, policy questions, greetings and thanks, now and then a
request for a person). Which script, which order and which phrasing are drawn from a seeded generator, so
a run with the same seed sends the same conversations."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

LOCALES: tuple[str, ...] = ("zh", "en")
ORDERS = ("100001", "100002", "100003", "100004")


@dataclass(frozen=True)
class Script:
    """A kind of conversation: its weight in the mix and, per locale, phrasings (each a list of turns;
    ``{order}`` is replaced by a demo order id)."""

    kind: str
    weight: float
    zh: tuple[tuple[str, ...], ...]
    en: tuple[tuple[str, ...], ...]


# fmt: off
SCRIPTS: tuple[Script, ...] = (
    Script(
        "order_status",
        30,
        zh=(
            ("你好", "帮我看看订单 {order} 现在到哪儿了", "好的谢谢"),
            ("我的订单 {order} 什么时候能到", "解决了，谢谢"),
            ("在吗", "查一下 {order} 的物流", "没有", "好吧"),
        ),
        en=(
            ("hi", "where is order {order}", "thanks"),
            ("when will my order {order} arrive?", "Yes, thanks"),
            ("hello there", "can you check the status of {order}", "No", "ok"),
        ),
    ),
    Script(
        "cancel_order",
        12,
        zh=(("100003 那个音箱我不要了 帮我取消", "确认取消", "谢谢"), ("我想取消订单", "100003", "确认取消")),
        en=(("please cancel order 100003", "Yes, cancel it", "thanks"), ("I want to cancel my order", "100003", "Yes")),
    ),
    Script(
        "return",
        12,
        zh=(("我想退货", "订单号是 100002", "申请退货", "谢谢"), ("100002 的手表能退吗", "申请退货")),
        en=(("I'd like to send back the watch I bought", "it's order 100002", "Yes, open a return", "thanks"),
            ("can I return order 100002?", "Yes, open a return")),
    ),
    Script(
        "policy",
        30,
        zh=(("运费怎么算", "谢谢"), ("发货一般要几天",), ("退货政策是什么？", "好的"), ("保修多久",),
            ("支持哪些付款方式",), ("怎么开发票", "谢谢"), ("我忘记密码了怎么办",), ("会员积分怎么用",)),
        en=(("how much is shipping?", "thanks"), ("how long does delivery take?",),
            ("what is your return policy?", "ok"), ("how long is the warranty?",),
            ("which payment methods do you accept?",), ("how do I get an invoice?", "thanks"),
            ("I forgot my password",), ("how do membership points work?",)),
    ),
    Script(
        "greeting",
        13,
        zh=(("你好", "没事了，谢谢"), ("在吗", "谢谢，再见")),
        en=(("hello", "never mind, thanks"), ("hi", "thanks, bye")),
    ),
    Script("human", 3, zh=(("转人工",), ("我要找人工客服",)), en=(("talk to a person",), ("I want a human agent",))),
)
# fmt: on


@dataclass
class Session:
    """One conversation in progress: its id, locale, script kind and the turns still to send."""

    conversation_id: str
    user_id: str
    locale: str
    kind: str
    turns: tuple[str, ...]
    sent: int = 0

    @property
    def done(self) -> bool:
        return self.sent >= len(self.turns)

    def next_turn(self) -> tuple[int, str]:
        """(turn index, text) of the next turn; ``IndexError`` when the session is over."""
        index = self.sent
        text = self.turns[index]
        self.sent += 1
        return index, text


class SessionMix:
    """Draws new sessions from the scripts, by weight, in the given locales (each equally often)."""

    def __init__(
        self,
        locales: Sequence[str] = LOCALES,
        *,
        seed: int = 0,
        run_id: str = "lt",
        scripts: Sequence[Script] = SCRIPTS,
    ) -> None:
        unknown = sorted(set(locales) - set(LOCALES))
        if unknown or not locales:
            raise ValueError(f"locales must be among {', '.join(LOCALES)}; got {', '.join(locales) or 'none'}")
        self.locales = tuple(dict.fromkeys(locales))
        self.scripts = tuple(scripts)
        self._weights = [s.weight for s in self.scripts]
        self._rng = random.Random(seed)
        self._run_id = run_id
        self.started = 0

    def new_session(self) -> Session:
        script = self._rng.choices(self.scripts, weights=self._weights)[0]
        locale = self._rng.choice(self.locales)
        phrasing = self._rng.choice(script.zh if locale == "zh" else script.en)
        order = self._rng.choice(ORDERS)
        number = self.started
        self.started += 1
        return Session(
            conversation_id=f"{self._run_id}-{number}",
            user_id=f"{self._run_id}-user-{number}",
            locale=locale,
            kind=script.kind,
            turns=tuple(turn.replace("{order}", order) for turn in phrasing),
        )
