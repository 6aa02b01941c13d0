"""A shopper's browser on the live demo store: Debian's chromium driven by Playwright, one
tab per test with its console and page errors recorded (any of them fails the test), and a
screenshot helper writing to the test artifacts folder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from storefront_widget import WIDGET_DIR
from tests.support.live_demo import LiveDemo, artifact, console_problems, require_chromium

WIDGET = "#loyalty-widget"
LAUNCHER = f"{WIDGET} .launcher"
DIALOG = f"{WIDGET} [role=dialog]"
# Records when the page first became idle, and each request's start, to check the loader
# asks for nothing but the balance before then.
IDLE_PROBE = """
(() => {
  const original = window.requestIdleCallback;
  window.__idleAt = null;
  if (original) {
    window.requestIdleCallback = (callback, options) => original((deadline) => {
      if (window.__idleAt === null) window.__idleAt = performance.now();
      callback(deadline);
    }, options);
  }
})();
"""


def catalog(lang: str) -> dict[str, Any]:
    return json.loads((WIDGET_DIR / "i18n" / f"{lang}.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = require_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update",
                  "--no-first-run"])
        yield launched
        launched.close()


class Shop:
    """One shopper's tab on the demo store, with what the browser reported."""

    def __init__(self, browser: Browser, demo: LiveDemo, customer: str | None,
                 lang: str = "en", embed: str = "shopify", query: str = "",
                 before: str = "") -> None:
        self.demo = demo
        self.context = browser.new_context(viewport={"width": 1280, "height": 860},
                                           permissions=["clipboard-read", "clipboard-write"])
        self.page: Page = self.context.new_page()
        self.messages: list[tuple[str, str]] = []
        self.page.on("console", lambda m: self.messages.append((m.type, m.text)))
        self.page.on("pageerror", lambda e: self.messages.append(("pageerror", str(e))))
        self.page.add_init_script(IDLE_PROBE)
        if before:
            self.page.add_init_script(before)
        self.requests: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        if customer is not None:
            answer = self.context.request.post(f"{demo.url}/demo/sign-in",
                                               form={"customer_id": customer, "next": "/"},
                                               max_redirects=0)
            assert answer.status == 303
        self.page.goto(f"{demo.url}/store?lang={lang}&embed={embed}{query}")
        expect(self.page.locator(LAUNCHER)).to_be_visible(timeout=10_000)

    def open(self) -> None:
        self.page.locator(LAUNCHER).click()
        expect(self.page.locator(DIALOG)).to_be_visible()

    def panel_text(self) -> str:
        # textContent: headings are upper-cased by CSS only.
        return self.page.locator(DIALOG).text_content() or ""

    def shot(self, name: str) -> None:
        # Finished animations: the panel fully opaque, as a shopper sees it a moment later.
        self.page.screenshot(path=artifact(f"widget-{name}.png"), animations="disabled")

    def close(self) -> None:
        problems = console_problems(self.messages)
        self.context.close()
        assert problems == []


@pytest.fixture
def shop(browser: Browser, live_demo: LiveDemo) -> Iterator[Any]:
    opened: list[Shop] = []

    def open_shop(customer: str | None, **options: Any) -> Shop:
        opened.append(Shop(browser, live_demo, customer, **options))
        return opened[-1]

    yield open_shop
    for tab in opened:
        tab.close()


def focused(page: Page) -> str:
    """What has focus, looking inside the widget's shadow root."""
    return page.evaluate("""() => {
      const active = document.activeElement;
      const inner = active && active.shadowRoot ? active.shadowRoot.activeElement : null;
      const node = inner || active;
      return (node.getAttribute('data-key') || node.getAttribute('aria-label') ||
              node.className || node.tagName);
    }""")
