"""The chat page at / in a real browser (Debian's chromium driven by Playwright)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
        )
        yield browser
        browser.close()


def test_customer_chats_in_both_languages(server: str, browser: object) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(locale="zh-CN")
    page.goto(server + "/")
    page.fill("#input", "帮我看看订单 100001 现在到哪儿了")
    page.click("#send")
    expect(page.locator(".msg.bot").last).to_contain_text("SF1234567890", timeout=15000)
    expect(page.locator(".quick-reply").first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "chat-page-zh.png"), full_page=True)

    page.click("#lang-toggle")
    page.fill("#input", "how long is the warranty?")
    page.keyboard.press("Enter")
    expect(page.locator(".msg.bot").last).to_contain_text("warranty", timeout=15000)
    expect(page.locator(".citation").last).to_be_visible()

    page.reload()  # history comes back from the server
    expect(page.locator(".msg.user")).to_have_count(2, timeout=15000)
    page.fill("#input", "转人工")
    page.click("#send")
    expect(page.locator("#handoff-banner")).to_be_visible(timeout=15000)
    page.screenshot(path=str(ARTIFACTS / "chat-page-handoff.png"), full_page=True)
    page.close()
