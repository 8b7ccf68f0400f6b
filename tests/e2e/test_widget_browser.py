"""The embeddable widget in a real browser (Debian's chromium driven by Playwright) on the demo host page,
against a real kefu server process: streaming replies in zh and en, history on reload, the host page's
CSS kept out, messages typed while the server is down sent once when it is back, a dropped socket's
unanswered message answered once, the handoff banner, the rating prompt of a closed conversation, and the
whole handover: an agent signs in to the console, claims the conversation, replies into the widget, gives
it back to the bot, and later closes it, which asks the customer for a rating.

Screenshots of every step go to test-artifacts/widget/ (printed at the start of the module)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.test_cli import kefu
from tests.conftest import MODEL_CACHE, ROOT
from tests.e2e.conftest import free_port, start_server, stop_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts" / "widget"
REPLY_TIMEOUT_MS = 20000
RECONNECT_TIMEOUT_MS = 45000  # the widget's backoff tops out at 15 s (+ jitter) while the server restarts

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


@dataclass
class Server:
    """A kefu server process on a fixed port, so it can be stopped and started again in place."""

    data: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process, _ = start_server(self.data, port=self.port)

    def stop(self) -> None:
        if self.process is not None:
            stop_server(self.process)
            self.process = None

    def transcript(self, conversation_id: str) -> dict[str, Any]:
        response = httpx.get(f"{self.base}/v1/conversations/{conversation_id}", timeout=10)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    served = Server(tmp_path_factory.mktemp("widget-server"), free_port())
    served.start()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nwidget screenshots: {ARTIFACTS}")
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
        )
        yield launched
        launched.close()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def open_widget(browser: Any, server: Server, locale: str, query: str = "") -> Any:
    """A fresh visitor (own storage) on the demo page, with the widget opened. A script error on the
    page fails the test when the page is closed (``done``)."""
    from playwright.sync_api import expect

    context = browser.new_context(locale=locale, viewport={"width": 1100, "height": 760})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_default_timeout(REPLY_TIMEOUT_MS)
    page.script_errors = errors
    page.goto(f"{server.base}/widget-demo{query}")
    page.locator("[data-testid=kefu-launcher]").click()
    expect(page.locator("[data-testid=kefu-panel]")).to_be_visible()
    expect(page.locator("kefu-widget")).to_have_attribute("data-connection", "online", timeout=REPLY_TIMEOUT_MS)
    return page


def done(page: Any) -> None:
    errors = page.script_errors
    page.context.close()
    assert errors == [], errors


def say(page: Any, text: str) -> None:
    page.locator("[data-testid=kefu-input]").fill(text)
    page.locator("[data-testid=kefu-input]").press("Enter")


def conversation_of(page: Any) -> str:
    cid: str = page.evaluate("window.KefuWidget.conversationId")
    return cid


def user_texts(transcript: dict[str, Any]) -> list[str]:
    return [m["text"] for m in transcript["messages"] if m["role"] == "user"]


def test_streamed_replies_in_both_languages_and_history_on_reload(browser: Any, server: Server) -> None:
    from playwright.sync_api import expect

    page = open_widget(browser, server, "zh-CN")
    widget = page.locator("kefu-widget")
    expect(widget).to_have_attribute("data-lang", "zh")
    expect(page.locator("[data-testid=kefu-input]")).to_have_attribute("placeholder", "请输入您的问题…")
    # The host page's hostile CSS (hotpink buttons, Comic Sans, !important everywhere) stays outside.
    send = page.locator("[data-testid=kefu-send]")
    assert send.evaluate("b => getComputedStyle(b).backgroundColor") != "rgb(255, 192, 203)"
    assert "Comic" not in send.evaluate("b => getComputedStyle(b).fontFamily")
    assert send.evaluate("b => getComputedStyle(b).backgroundColor") != "rgb(255, 105, 180)"
    shot(page, "01-open-zh")

    say(page, "帮我看看订单 100001 现在到哪儿了")
    bot = page.locator(".msg.bot").last
    expect(bot).to_contain_text("SF1234567890", timeout=REPLY_TIMEOUT_MS)
    assert int(bot.get_attribute("data-deltas") or "0") >= 2  # it arrived as a stream of pieces
    expect(page.locator("[data-testid=kefu-quick-reply]").first).to_be_visible()
    expect(page.locator(".msg.user").last).to_have_attribute("data-state", "sent")
    shot(page, "02-streamed-reply-zh")

    page.locator("[data-testid=kefu-lang]").click()
    expect(widget).to_have_attribute("data-lang", "en")
    expect(page.locator("[data-testid=kefu-input]")).to_have_attribute("placeholder", "Type your message…")
    say(page, "how long is the warranty?")
    expect(page.locator(".msg.bot").last).to_contain_text("warranty", timeout=REPLY_TIMEOUT_MS)
    expect(page.locator("[data-testid=kefu-citation]").last).to_be_visible()
    shot(page, "03-reply-en-with-citation")

    cid = conversation_of(page)
    page.reload()  # the panel stays open, the conversation id is kept, the history comes from the server
    expect(page.locator("[data-testid=kefu-panel]")).to_be_visible()
    expect(page.locator(".msg.user")).to_have_count(2, timeout=REPLY_TIMEOUT_MS)
    expect(page.locator(".msg.bot")).to_have_count(2)
    assert conversation_of(page) == cid
    expect(widget).to_have_attribute("data-lang", "en")  # the visitor's choice is remembered
    assert user_texts(server.transcript(cid)) == ["帮我看看订单 100001 现在到哪儿了", "how long is the warranty?"]
    shot(page, "04-history-after-reload")
    done(page)


def test_the_script_tags_options_choose_language_title_and_side(browser: Any, server: Server) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.goto(f"{server.base}/widget-demo?locale=en&title=Shop%20help&position=left&open=true")
    expect(page.locator("[data-testid=kefu-panel]")).to_be_visible()
    expect(page.locator("kefu-widget")).to_have_attribute("data-lang", "en")
    expect(page.locator(".title")).to_have_text("Shop help")
    box = page.locator("[data-testid=kefu-panel]").bounding_box()
    assert box is not None and box["x"] < 100  # docked on the left
    shot(page, "05-options-en-left")
    context.close()


def test_a_message_typed_while_the_server_is_down_is_sent_once_when_it_is_back(browser: Any, server: Server) -> None:
    from playwright.sync_api import expect

    page = open_widget(browser, server, "zh-CN")
    say(page, "你好")
    expect(page.locator(".msg.bot")).to_have_count(1, timeout=REPLY_TIMEOUT_MS)
    cid = conversation_of(page)

    server.stop()
    widget = page.locator("kefu-widget")
    expect(widget).to_have_attribute("data-connection", "offline", timeout=REPLY_TIMEOUT_MS)
    expect(page.locator("[data-testid=kefu-status]")).to_be_visible()
    say(page, "帮我看看订单 100003")
    expect(page.locator(".msg.user").last).to_have_attribute("data-state", "pending")
    shot(page, "06-offline-message-queued")

    server.start()
    expect(widget).to_have_attribute("data-connection", "online", timeout=RECONNECT_TIMEOUT_MS)
    expect(page.locator(".msg.bot").last).to_contain_text("100003", timeout=REPLY_TIMEOUT_MS)
    expect(page.locator("[data-testid=kefu-status]")).to_be_hidden()
    expect(page.locator(".msg.user")).to_have_count(2)
    assert user_texts(server.transcript(cid)) == ["你好", "帮我看看订单 100003"]
    shot(page, "07-reconnected-and-answered")
    done(page)


def test_a_dropped_socket_resends_the_unanswered_message_and_it_is_answered_once(browser: Any, server: Server) -> None:
    from playwright.sync_api import expect

    page = open_widget(browser, server, "en-US")
    # Sent, then the socket drops at once: the widget cannot know whether the server got it.
    page.evaluate("() => { window.KefuWidget.send('where is order 100002'); window.KefuWidget.reconnect(); }")
    expect(page.locator(".msg.bot").last).to_contain_text("100002", timeout=RECONNECT_TIMEOUT_MS)
    cid = conversation_of(page)
    expect(page.locator(".msg.user")).to_have_count(1)
    transcript = server.transcript(cid)
    assert user_texts(transcript) == ["where is order 100002"]
    assert [m["role"] for m in transcript["messages"]] == ["user", "bot"]
    done(page)


def test_handoff_banner_then_a_closed_conversation_asks_for_a_rating(browser: Any, server: Server) -> None:
    from playwright.sync_api import expect

    page = open_widget(browser, server, "zh-CN")
    say(page, "帮我看看订单 100001 现在到哪儿了")
    expect(page.locator("[data-testid=kefu-quick-reply]").first).to_be_visible(timeout=REPLY_TIMEOUT_MS)
    page.locator("[data-testid=kefu-quick-reply]").first.click()  # "解决了，谢谢": the bot closes it
    rating = page.locator("[data-testid=kefu-rating]")
    expect(rating).to_be_visible(timeout=REPLY_TIMEOUT_MS)
    expect(page.locator("kefu-widget")).to_have_attribute("data-owner", "closed")
    page.locator("[data-testid=kefu-rating-submit]").click()
    expect(page.locator("[data-testid=kefu-rating-status]")).to_have_text("请先选择星级")
    page.locator("[data-testid=kefu-star-4]").click()
    page.locator("[data-testid=kefu-rating-comment]").fill("很快，谢谢")
    shot(page, "08-rating-prompt")
    before = _csat_count(server)
    page.locator("[data-testid=kefu-rating-submit]").click()
    expect(page.locator("[data-testid=kefu-rating-status]")).to_have_text("感谢您的评价！")
    assert _csat_count(server) == before + 1
    page.locator("[data-testid=kefu-lang]").click()
    expect(page.locator("[data-testid=kefu-rating-status]")).to_have_text("Thank you for your feedback!")
    page.locator("[data-testid=kefu-lang]").click()
    shot(page, "09-rated")

    say(page, "转人工")  # writing again reopens the conversation; an explicit request hands over at once
    banner = page.locator("[data-testid=kefu-banner]")
    expect(banner).to_be_visible(timeout=REPLY_TIMEOUT_MS)
    expect(banner).to_contain_text("人工客服")
    expect(page.locator("kefu-widget")).to_have_attribute("data-owner", "agent")
    expect(rating).to_be_hidden()  # open again: nothing to rate now
    page.locator("[data-testid=kefu-lang]").click()
    expect(banner).to_contain_text("human agent")
    shot(page, "10-handoff-banner")
    done(page)


def _csat_count(server: Server) -> float:
    text = httpx.get(f"{server.base}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("kefu_csat_ratings_total{")
    )


AGENT = "wang-agent"
AGENT_PASSWORD = "坐席密码 widget-test"


def sign_in_agent(browser: Any, server: Server) -> Any:
    """The agent account made with the ``kefu user`` CLI, signed in to the console at /console."""
    from playwright.sync_api import expect

    env = {"KEFU_DATA_DIR": str(server.data), "KEFU_MODEL_CACHE_DIR": str(MODEL_CACHE)}
    made = kefu("user", "add", AGENT, "--role", "agent", "--password-stdin", stdin=AGENT_PASSWORD + "\n", env=env)
    assert made.returncode == 0, made.stdout + made.stderr
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800})
    console = context.new_page()
    console.set_default_timeout(REPLY_TIMEOUT_MS)
    console.goto(f"{server.base}/console")
    console.get_by_test_id("login-username").fill(AGENT)
    console.get_by_test_id("login-password").fill(AGENT_PASSWORD)
    console.get_by_test_id("login-submit").click()
    expect(console.get_by_test_id("console")).to_be_visible()
    expect(console.get_by_test_id("live-status")).to_have_attribute("data-state", "live")
    return console


def claim_in_console(console: Any, cid: str) -> None:
    from playwright.sync_api import expect

    waiting = console.locator(f"[data-testid=queue-item][data-conversation-id='{cid}']")
    expect(waiting).to_be_visible()
    waiting.get_by_test_id("claim").click()
    expect(console.get_by_test_id("chat-title")).to_have_text(cid)
    expect(console.get_by_test_id("reply-input")).to_be_enabled()


def test_an_agent_claims_in_the_console_replies_into_the_widget_and_hands_back(browser: Any, server: Server) -> None:
    from playwright.sync_api import expect

    console = sign_in_agent(browser, server)
    shot(console, "20-console-signed-in")
    page = open_widget(browser, server, "zh-CN")
    widget = page.locator("kefu-widget")
    banner = page.locator("[data-testid=kefu-banner]")

    say(page, "帮我看看订单 100001 现在到哪儿了")
    expect(page.locator(".msg.bot").last).to_contain_text("SF1234567890", timeout=REPLY_TIMEOUT_MS)
    say(page, "转人工")
    expect(banner).to_be_visible()
    expect(banner).to_have_attribute("data-state", "waiting")
    expect(widget).to_have_attribute("data-owner", "agent")
    cid = conversation_of(page)
    shot(page, "21-widget-asked-for-a-human")

    claim_in_console(console, cid)
    expect(banner).to_have_attribute("data-state", "talking")  # pushed: the owner event names the agent
    expect(banner).to_contain_text(AGENT)
    shot(console, "22-console-claimed")

    console.get_by_test_id("reply-input").fill("您好，我是人工客服小王，订单 100001 已为您加急。")
    console.get_by_test_id("reply-send").click()
    agent_says = page.locator(".msg.agent").last
    expect(agent_says).to_have_text("您好，我是人工客服小王，订单 100001 已为您加急。")
    expect(page.locator(".sender.agent").last).to_contain_text(AGENT)
    shot(page, "23-widget-shows-the-agents-reply")

    bots_before = page.locator(".msg.bot").count()
    say(page, "好的，谢谢")  # the agent owns it: the bot says nothing, the agent sees it
    expect(console.locator("[data-testid=message][data-role=user]").last).to_contain_text("好的，谢谢")
    expect(page.locator(".msg.user").last).to_have_attribute("data-state", "sent")
    assert page.locator(".msg.bot").count() == bots_before

    console.get_by_test_id("return-to-bot").click()
    expect(widget).to_have_attribute("data-owner", "bot")
    expect(banner).to_be_hidden()
    expect(page.locator(".msg.system").last).to_contain_text("智能助手继续为您服务")
    page.locator("[data-testid=kefu-lang]").click()  # the customer carries on in English
    say(page, "how long is the warranty?")
    expect(page.locator(".msg.bot").last).to_contain_text("warranty", timeout=REPLY_TIMEOUT_MS)
    assert page.locator(".msg.bot").count() == bots_before + 1
    shot(page, "24-back-with-the-bot")

    say(page, "talk to a person")  # and hands over again; this time the agent closes it
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("human agent")
    claim_in_console(console, cid)
    console.get_by_test_id("reply-input").fill("Your order has been expedited. Anything else?")
    console.get_by_test_id("reply-send").click()
    expect(page.locator(".msg.agent").last).to_have_text("Your order has been expedited. Anything else?")
    console.get_by_test_id("resolution").select_option("resolved")
    console.get_by_test_id("close").click()
    expect(widget).to_have_attribute("data-owner", "closed")
    rating = page.locator("[data-testid=kefu-rating]")
    expect(rating).to_be_visible()
    expect(rating).to_contain_text("How did we do?")
    shot(page, "25-closed-by-the-agent-rating")
    page.locator("[data-testid=kefu-star-5]").click()
    page.locator("[data-testid=kefu-rating-submit]").click()
    expect(page.locator("[data-testid=kefu-rating-status]")).to_have_text("Thank you for your feedback!")
    shot(console, "26-console-closed")

    transcript = server.transcript(cid)
    roles = [m["role"] for m in transcript["messages"]]
    assert roles.count("agent") == 2 and transcript["owner"] == "closed"
    assert user_texts(transcript) == [
        "帮我看看订单 100001 现在到哪儿了",
        "转人工",
        "好的，谢谢",
        "how long is the warranty?",
        "talk to a person",
    ]
    console.context.close()
    done(page)
