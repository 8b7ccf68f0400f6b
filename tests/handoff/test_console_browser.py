"""The agent console at /console in a real browser (Debian's chromium driven by Playwright) against a real
server process: sign in, the live queue, claim, canned reply, a customer's message arriving live, a note,
the language toggle, return to the bot, close with a resolution. Screenshots go to test-artifacts/."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from kefu.access.accounts import AccessStore
from kefu.access.passwords import hash_password
from kefu.config import load_settings
from kefu.store.database import create_engine, migrate
from tests.conftest import ROOT
from tests.e2e.conftest import start_server, stop_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
AGENT, PASSWORD = "console-agent", "控制台 console password"
UI_TIMEOUT_MS = 15000

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


def _add_agent(data_dir: Path) -> None:
    async def create() -> None:
        engine = create_engine(load_settings(data_dir=data_dir).resolved_database_url)
        try:
            await migrate(engine)
            await AccessStore(engine).create_account(AGENT, "agent", hash_password(PASSWORD))
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, create()).result()


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("console")
    _add_agent(data_dir)
    process, base = start_server(data_dir)
    try:
        yield base
    finally:
        stop_server(process)


def _say(base: str, cid: str, text: str) -> dict[str, object]:
    answered = httpx.post(f"{base}/v1/conversations/{cid}/messages", json={"text": text}, timeout=30)
    assert answered.status_code == 200, answered.text
    body: dict[str, object] = answered.json()
    return body


def test_an_agent_works_a_conversation_in_the_console(console_server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, cid = console_server, f"console-{uuid.uuid4().hex[:8]}"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
        )
        page = browser.new_page(locale="zh-CN")
        page.set_default_timeout(UI_TIMEOUT_MS)
        try:
            page.goto(f"{base}/console")
            expect(page.get_by_test_id("login-form")).to_be_visible()
            page.get_by_test_id("login-username").fill(AGENT)
            page.get_by_test_id("login-password").fill("wrong password")
            page.get_by_test_id("login-submit").click()
            expect(page.get_by_test_id("login-error")).to_contain_text("用户名或密码错误")
            page.get_by_test_id("login-password").fill(PASSWORD)
            page.get_by_test_id("login-submit").click()
            expect(page.get_by_test_id("console")).to_be_visible()
            expect(page.get_by_test_id("agent-name")).to_have_text(AGENT)
            expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "live")

            _say(base, cid, "帮我查一下订单100002现在是什么状态")
            handed = _say(base, cid, "转人工")
            assert handed["owner"] == "agent" and "没有人工客服在线" not in str(handed["reply"])  # the console is open
            item = page.locator(f'[data-testid="queue-item"][data-conversation-id="{cid}"]')
            expect(item).to_be_visible()  # pushed live, no reload
            expect(item.get_by_test_id("queue-language")).to_have_text("中文")
            expect(item.get_by_test_id("queue-summary")).to_contain_text("100002")
            expect(item.get_by_test_id("queue-wait")).to_contain_text("已等待")
            page.screenshot(path=str(ARTIFACTS / "console-queue.png"), full_page=True)

            item.get_by_test_id("claim").click()
            expect(page.get_by_test_id("chat-title")).to_have_text(cid)
            expect(page.get_by_test_id("chat-owner")).to_have_attribute("data-owner", "agent")
            expect(page.locator('[data-testid="message"][data-role="user"]').first).to_contain_text("100002")
            expect(page.locator('[data-testid="order-item"][data-order-id="100002"]')).to_be_visible()
            expect(page.get_by_test_id("bot-message").first).to_contain_text("100002")

            page.get_by_test_id("canned-select").select_option(index=1)
            expect(page.get_by_test_id("reply-input")).not_to_have_value("")
            page.get_by_test_id("reply-send").click()
            expect(page.locator('[data-testid="message"][data-role="agent"]')).to_have_count(1)
            transcript = httpx.get(f"{base}/v1/conversations/{cid}", timeout=30).json()
            assert transcript["messages"][-1]["role"] == "agent"

            _say(base, cid, "好的，我想把它退掉")  # the customer writes: it appears live
            expect(page.locator('[data-testid="message"][data-role="user"]').last).to_contain_text("好的，我想把它退掉")
            page.get_by_test_id("reply-input").fill("好的，我来为您办理退货。")
            page.get_by_test_id("reply-input").press("Enter")
            expect(page.locator('[data-testid="message"][data-role="agent"]')).to_have_count(2)

            page.get_by_test_id("note-input").fill("客户要求退货，已核实在7天内")
            page.get_by_test_id("note-send").click()
            expect(page.get_by_test_id("note-item")).to_contain_text("客户要求退货")
            assert "客户要求退货" not in str(httpx.get(f"{base}/v1/conversations/{cid}", timeout=30).json())
            page.screenshot(path=str(ARTIFACTS / "console-chat-zh.png"), full_page=True)

            page.get_by_test_id("lang-toggle").click()
            expect(page.get_by_test_id("return-to-bot")).to_have_text("Return to bot")
            expect(page.get_by_test_id("chat-owner")).to_have_text("With an agent")
            page.screenshot(path=str(ARTIFACTS / "console-chat-en.png"), full_page=True)

            page.get_by_test_id("return-to-bot").click()
            expect(page.get_by_test_id("chat-owner")).to_have_attribute("data-owner", "bot")
            expect(page.get_by_test_id("reply-send")).to_be_disabled()
            answered = _say(base, cid, "订单100001到哪了")
            assert answered["owner"] == "bot" and answered["reply"]

            _say(base, cid, "还是帮我转人工")
            again = page.locator(f'[data-testid="queue-item"][data-conversation-id="{cid}"]')
            again.get_by_test_id("claim").click()
            expect(page.get_by_test_id("chat-owner")).to_have_attribute("data-owner", "agent")
            page.get_by_test_id("resolution").select_option("refund_issued")
            page.get_by_test_id("close").click()
            expect(page.get_by_test_id("chat-owner")).to_have_attribute("data-owner", "closed")
            expect(page.locator('[data-testid="message"][data-role="system"]').last).to_contain_text("Refund issued")
            page.screenshot(path=str(ARTIFACTS / "console-closed.png"), full_page=True)
            assert httpx.get(f"{base}/v1/conversations/{cid}", timeout=30).json()["owner"] == "closed"
        finally:
            page.screenshot(path=str(ARTIFACTS / "console-last.png"), full_page=True)
            browser.close()
