"""The widget on a store served from another origin than the loyalty server, as on a
WooCommerce site: the page loads the loader from the server, the shopper's identity is the one
the WordPress plugin signs, and every call crosses origins under the store page's strict
Content-Security-Policy (which names only the loyalty server). The store's origin may read the
answers; any other origin's page gets nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import escape
from typing import Any

import pytest
from playwright.sync_api import Browser, expect
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Response

from integrations.base import Customer
from integrations.woocommerce.identity import signed_identity
from plugin_server.db import unit_of_work
from plugin_server.loyalty.adjustments import adjust_points
from plugin_server.loyalty.members import member_for_customer
from plugin_server.loyalty.merchants import create_merchant
from plugin_server.loyalty.widget_identity import widget_secret_for
from tests.support.live_demo import LiveDemo, console_problems, live_demo
from tests.support.widget_browser import DIALOG, IDLE_PROBE, WIDGET, browser, catalog

__all__ = ["browser", "live_demo"]  # fixtures, imported for pytest to find

pytestmark = pytest.mark.slow
CUSTOMER = "42"
BALANCE = 700


@dataclass
class StorePage:
    """A bare store page on its own loopback port (its own origin) embedding the widget with
    ``embed``'s attributes, under a policy that names only the loyalty server."""

    app_url: str
    embed: list[tuple[str, str]] = field(default_factory=list)
    server: BaseWSGIServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_port}"

    def html(self) -> str:
        attributes = " ".join(f'{name}="{escape(value)}"' for name, value in self.embed)
        return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Store</title>"
                f"<link rel=icon href='data:,'></head><body><h1>Woo store</h1>"
                f"<p data-loyalty-earn data-price='25.00'></p>"
                f"<script src='{self.app_url}/widget/loader.js' defer {attributes}></script>"
                f"</body></html>")

    def start(self) -> StorePage:
        def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
            response = Response(self.html(), content_type="text/html; charset=utf-8")
            response.headers["Content-Security-Policy"] = (
                f"default-src 'none'; script-src {self.app_url}; style-src {self.app_url}; "
                f"connect-src {self.app_url}; img-src data:")
            return response(environ, start_response)

        self.server = make_server("127.0.0.1", 0, wsgi, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self


@pytest.fixture(scope="module")
def woo_store(live_demo: LiveDemo) -> Iterator[tuple[StorePage, StorePage]]:
    """The store's page (its origin is the merchant's store URL) and a stranger's page with
    the same embed."""
    store = StorePage(live_demo.url).start()
    stranger = StorePage(live_demo.url).start()
    runtime = live_demo.shopify.runtime
    with unit_of_work(runtime.database) as session:
        merchant = create_merchant(session, "woocommerce", store.url, name="Woo Tea",
                                   currency="EUR")
        secret = widget_secret_for(session, merchant, runtime.settings.ENCRYPTION_KEY)
        member = member_for_customer(session, merchant.id,
                                     Customer(customer_id=CUSTOMER, email="woo@example.com"))
        assert member is not None
        adjust_points(session, merchant.id, member.id, BALANCE, reason="welcome",
                      actor="test")
        store_id = merchant.store_id
    identity = json.dumps(signed_identity(secret, store_id, CUSTOMER, "woo@example.com"))
    embed = [("data-platform", "woocommerce"), ("data-shop", store_id),
             ("data-customer-id", CUSTOMER), ("data-locale", "fr"), ("data-currency", "EUR"),
             ("data-api-base", f"{live_demo.url}/api/storefront"), ("data-identity", identity)]
    store.embed = stranger.embed = embed
    yield store, stranger
    for page in (store, stranger):
        assert page.server is not None
        page.server.shutdown()


def open_page(browser: Browser, url: str) -> tuple[Any, list[tuple[str, str]]]:
    context = browser.new_context()
    page = context.new_page()
    page.add_init_script(IDLE_PROBE)
    messages: list[tuple[str, str]] = []
    page.on("console", lambda m: messages.append((m.type, m.text)))
    page.on("pageerror", lambda e: messages.append(("pageerror", str(e))))
    page.goto(url)
    return page, messages


def test_the_stores_own_page_signs_in_and_reads_across_origins(
        browser: Browser, woo_store: tuple[StorePage, StorePage]) -> None:
    store, _ = woo_store
    page, messages = open_page(browser, store.url)
    expect(page.locator(f"{WIDGET} .badge")).to_have_text("700")
    # Before the page is idle, one call: the sign-in, which brings the balance along.
    timing = page.evaluate("""() => ({idle: window.__idleAt, calls: performance
      .getEntriesByType('resource').filter(e => e.name.includes('/api/'))
      .map(e => ({url: e.name, start: e.startTime}))})""")
    early = [call["url"].split("/api/")[1] for call in timing["calls"]
             if call["start"] < timing["idle"]]
    assert early == ["storefront/session"]
    assert not any(call["url"].endswith("/me") for call in timing["calls"])
    page.locator(f"{WIDGET} .launcher").click()
    dialog = page.locator(DIALOG)
    expect(dialog.locator(".balance")).to_have_text("700")
    expect(dialog).to_have_attribute("lang", "fr")
    earn = catalog("fr")["earnProduct"].replace("{n}", "25")
    expect(page.locator("[data-loyalty-earn]")).to_have_text(earn)
    assert console_problems(messages) == []
    page.context.close()


def test_another_origins_page_reads_nothing(
        browser: Browser, woo_store: tuple[StorePage, StorePage]) -> None:
    _, stranger = woo_store
    page, messages = open_page(browser, stranger.url)
    # The launcher still appears (the program is public), without anyone's balance.
    expect(page.locator(f"{WIDGET} .launcher")).to_be_visible(timeout=10_000)
    page.wait_for_timeout(500)
    expect(page.locator(f"{WIDGET} .badge")).to_have_text("")
    assert any("CORS" in text or "Access-Control" in text for _, text in messages)
    page.context.close()
