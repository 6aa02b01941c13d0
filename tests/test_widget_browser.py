"""The storefront widget in a real browser (Debian's chromium driven by Playwright) against the
real app on loopback: the demo store page, which embeds the widget as the Shopify app embed
and the WordPress plugin do, under a strict Content-Security-Policy. Every test also fails on
any console error or page error; each view leaves a screenshot in the test artifacts folder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from plugin_server.db import unit_of_work
from plugin_server.models import Redemption
from storefront_widget import WIDGET_DIR
from tests.support.live_demo import (
    MEMBER_ID,
    LiveDemo,
    artifact,
    console_problems,
    live_demo,
    require_chromium,
)

__all__ = ["live_demo"]  # the module-scoped fixture, imported for pytest to find

pytestmark = pytest.mark.slow
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


def test_guest_sees_the_program_and_how_to_join(shop: Any) -> None:
    tab = shop(None)
    launcher = tab.page.locator(LAUNCHER)
    expect(launcher).to_have_attribute("aria-label", "Rewards")
    expect(launcher).to_have_attribute("aria-expanded", "false")
    assert not any("/api/me" in url for url in tab.requests)
    assert not any("/widget/panel." in url for url in tab.requests)  # only on interaction
    tab.open()
    dialog = tab.page.locator(DIALOG)
    expect(dialog).to_have_attribute("aria-modal", "true")
    expect(tab.page.locator(f"{WIDGET} #lw-title")).to_have_text("Tea Leaves")
    expect(dialog.get_by_role("link", name="Join now")).to_have_attribute(
        "href", f"{tab.demo.url}/account/register")
    expect(dialog.get_by_role("link", name="Sign in")).to_be_visible()
    text = tab.panel_text()
    for expected in ("Ways to earn", "1 point for every $1.00 spent", "$5 off your order",
                     "500 points", "VIP tiers", "Silver", "Earn 300 points",
                     "1.25\u00d7 points on every order", "50 bonus points on arrival",
                     "Sign in to redeem rewards."):
        assert expected in text
    assert dialog.get_by_role("button", name="Redeem").count() == 0
    assert tab.page.locator("[data-loyalty-earn]").first.inner_text() == \
        "Points you'll earn: 14"
    tab.shot("guest")


def test_member_sees_balance_tier_progress_and_history(shop: Any, live_demo: LiveDemo) -> None:
    member = live_demo.member()
    tab = shop(MEMBER_ID)
    badge = tab.page.locator(f"{WIDGET} .badge")
    expect(badge).to_have_text(f"{member.balance:,}")
    expect(tab.page.locator(LAUNCHER)).to_have_attribute(
        "aria-label", f"Rewards, {member.balance:,} points")
    tab.open()
    dialog = tab.page.locator(DIALOG)
    expect(dialog.locator(".balance")).to_have_text(f"{member.balance:,}")
    bar = dialog.get_by_role("progressbar")
    remaining = 800 - int(member.tier_progress)
    expect(bar).to_have_attribute("aria-label", f"Earn {remaining} more points to reach Gold")
    expect(bar).to_have_attribute("aria-valuenow", str(int(member.tier_progress * 100 / 800)))
    text = tab.panel_text()
    assert "Silver" in text and "Unlocks: 1.5\u00d7 points on every order" in text
    assert "Recent activity" in text and "Points earned" in text and "Tier bonus" in text
    assert "No codes yet." in text
    # Affordable rewards can be redeemed; the others say how many points are missing.
    expect(dialog.get_by_role("button", name="Redeem: Free shipping")).to_be_enabled()
    expect(dialog.get_by_role("button", name="Redeem: 10% off your order")).to_be_disabled()
    assert f"{1000 - member.balance} more points needed" in text
    tab.shot("member")


def test_redeeming_shows_the_code_and_the_balance_drops(shop: Any,
                                                       live_demo: LiveDemo) -> None:
    live_demo.place_order("7002", Decimal(400), "LIVE-2")
    before = live_demo.member("7002").balance
    tab = shop("7002")
    tab.open()
    dialog = tab.page.locator(DIALOG)
    dialog.get_by_role("button", name="Redeem: Free shipping").click()
    code_card = dialog.locator(".code-card.new")
    expect(code_card).to_be_visible()
    code = code_card.locator("code").inner_text()
    expect(dialog.locator(".balance")).to_have_text(f"{before - 300:,}")
    expect(tab.page.locator(f"{WIDGET} .badge")).to_have_text(f"{before - 300:,}")
    assert live_demo.member("7002").balance == before - 300
    with unit_of_work(live_demo.shopify.runtime.database) as session:
        stored = session.query(Redemption).filter_by(merchant_id=live_demo.merchant_id,
                                                     code=code).one()
        assert stored.state == "issued" and stored.points_cost == 300
    assert "Expires" in code_card.inner_text()
    code_card.get_by_role("button", name=f"Copy {code}").click()
    expect(code_card.get_by_role("button", name=f"Copy {code}")).to_have_text("Copied")
    assert tab.page.evaluate("navigator.clipboard.readText()") == code
    tab.shot("redeemed")


@pytest.mark.parametrize("lang", ["ja", "te", "hy", "vi"])
def test_panel_speaks_the_shoppers_language(shop: Any, live_demo: LiveDemo, lang: str) -> None:
    texts = catalog(lang)
    tab = shop(MEMBER_ID, lang=lang)
    expect(tab.page.locator(LAUNCHER)).to_contain_text(texts["launcher"])
    tab.open()
    dialog = tab.page.locator(DIALOG)
    expect(dialog).to_have_attribute("lang", lang)
    expect(dialog.locator(".label").first).to_have_text(texts["available"])
    headings = dialog.locator("h3").all_inner_texts()
    for key in ("rewards", "waysToEarn", "tiers", "activity"):
        assert texts[key].upper() in [h.upper() for h in headings]
    # The merchant's own texts in the shopper's language where the merchant wrote them
    # (the demo did in Japanese), else as set.
    program_name, shipping = {"ja": ("ティーリーブス", "送料無料")}.get(
        lang, ("Tea Leaves", "Free shipping"))
    expect(tab.page.locator(f"{WIDGET} #lw-title")).to_have_text(program_name)
    expect(dialog.get_by_role("button", name=f"{texts['redeem']}: {shipping}")).to_be_visible()
    expect(tab.page.locator("[data-loyalty-earn]").first).to_contain_text(
        texts["earnProduct"].split("{n}")[0].strip())
    tab.shot(f"lang-{lang}")


def test_arabic_is_right_to_left(shop: Any) -> None:
    texts = catalog("ar")
    tab = shop(MEMBER_ID, lang="ar")
    tab.open()
    dialog = tab.page.locator(DIALOG)
    expect(dialog).to_have_attribute("dir", "rtl")
    assert dialog.evaluate("node => getComputedStyle(node).direction") == "rtl"
    box = dialog.bounding_box()
    assert box is not None and box["x"] < 640  # inline-end is the left side in Arabic
    expect(dialog.locator(".label").first).to_have_text(texts["available"])
    tab.shot("lang-ar")


def _focused(page: Page) -> str:
    """What has focus, looking inside the widget's shadow root."""
    return page.evaluate("""() => {
      const active = document.activeElement;
      const inner = active && active.shadowRoot ? active.shadowRoot.activeElement : null;
      const node = inner || active;
      return (node.getAttribute('data-key') || node.getAttribute('aria-label') ||
              node.className || node.tagName);
    }""")


def test_keyboard_only_redeem_with_focus_trap_and_escape(shop: Any,
                                                         live_demo: LiveDemo) -> None:
    live_demo.place_order("7003", Decimal(400), "LIVE-3")
    tab = shop("7003")
    page = tab.page
    for _ in range(60):
        page.keyboard.press("Tab")
        if _focused(page).startswith("Rewards"):
            break
    else:
        pytest.fail("the launcher is not reachable with Tab")
    page.keyboard.press("Enter")
    expect(page.locator(DIALOG)).to_be_visible()
    expect(page.locator(f"{DIALOG} .balance")).to_be_visible()
    seen: list[str] = []
    for _ in range(40):
        page.keyboard.press("Tab")
        # Focus never leaves the widget while the dialog is open.
        assert page.evaluate("document.activeElement.id") == "loyalty-widget"
        seen.append(_focused(page))
        if seen[-1].startswith("redeem-") and page.evaluate(
                "document.activeElement.shadowRoot.activeElement.getAttribute('aria-label')"
        ) == "Redeem: Free shipping":
            break
    else:
        pytest.fail(f"no Redeem button reached by Tab: {seen}")
    page.keyboard.press("Enter")
    expect(page.locator(f"{DIALOG} .code-card.new")).to_be_visible()
    # Focus moved to the new code's copy button; Tab keeps cycling inside the dialog.
    for _ in range(30):
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "loyalty-widget"
    page.keyboard.press("Escape")
    expect(page.locator(DIALOG)).to_be_hidden()
    assert _focused(page).startswith("Rewards")
    expect(page.locator(LAUNCHER)).to_have_attribute("aria-expanded", "false")
    tab.shot("keyboard-redeemed")


def test_reward_name_with_markup_is_shown_as_text(shop: Any, live_demo: LiveDemo) -> None:
    payload = '<img src=x onerror="window.__owned=1"><script>window.__owned=2</script>'
    live_demo.rename_reward("$5 off your order", payload)
    try:
        tab = shop(MEMBER_ID)
        tab.open()
        dialog = tab.page.locator(DIALOG)
        expect(dialog.get_by_text(payload, exact=True)).to_be_visible()
        assert tab.page.evaluate("window.__owned") is None
        assert tab.page.evaluate(
            "document.getElementById('loyalty-widget').shadowRoot"
            ".querySelectorAll('img, script').length") == 0
        tab.shot("markup-as-text")
    finally:
        live_demo.rename_reward(payload, "$5 off your order")


def test_nothing_but_the_balance_before_the_page_is_idle(shop: Any) -> None:
    tab = shop(MEMBER_ID)
    timing = tab.page.evaluate("""() => ({
      idle: window.__idleAt,
      requests: performance.getEntriesByType('resource')
        .map(e => ({url: e.name, start: e.startTime}))
    })""")
    assert timing["idle"] is not None
    early = [r["url"] for r in timing["requests"]
             if r["start"] < timing["idle"] and "/static/" not in r["url"]]
    assert [url.split("?")[0].rsplit("/", 3)[-3:] for url in early] == [
        ["127.0.0.1:" + tab.demo.url.rsplit(":", 1)[1], "widget", "loader.js"],
        ["loyalty", "api", "me"],
    ][:len(early)]
    assert any(url.endswith("/api/me") for url in early)
    assert not any("/widget/panel." in url for url in tab.requests)


def test_member_through_the_wordpress_embed_and_a_signed_shopper_token(
        shop: Any, live_demo: LiveDemo) -> None:
    member = live_demo.member()
    tab = shop(MEMBER_ID, embed="wordpress")
    expect(tab.page.locator(f"{WIDGET} .badge")).to_have_text(f"{member.balance:,}")
    assert any(url.endswith("/api/storefront/session") for url in tab.requests)
    tab.open()
    expect(tab.page.locator(f"{DIALOG} .balance")).to_have_text(f"{member.balance:,}")
    tab.shot("wordpress-embed")


def test_errors_offer_a_retry_and_recover(shop: Any, live_demo: LiveDemo) -> None:
    tab = shop(MEMBER_ID)
    tab.page.route("**/apps/loyalty/api/me", lambda route: route.fulfill(
        status=500, content_type="application/json",
        body='{"error": "internal", "message": "boom"}'))
    tab.page.evaluate("LoyaltyWidget('refresh')")
    tab.page.wait_for_timeout(300)
    tab.messages.clear()  # the browser logs the failed request itself
    tab.open()
    dialog = tab.page.locator(DIALOG)
    expect(dialog.get_by_role("alert")).to_contain_text("Something went wrong")
    tab.shot("error")
    tab.page.unroute("**/apps/loyalty/api/me")
    dialog.get_by_role("button", name="Try again").click()
    expect(dialog.locator(".balance")).to_have_text(f"{live_demo.member().balance:,}")
    tab.messages[:] = [m for m in tab.messages if "500" not in m[1]]


def test_offline_says_so_and_recovers_when_back_online(shop: Any, live_demo: LiveDemo) -> None:
    tab = shop(MEMBER_ID)
    with tab.page.expect_response(lambda r: "/widget/panel." in r.url):
        tab.page.locator(LAUNCHER).hover()  # starts the panel download
    tab.context.set_offline(True)
    tab.page.evaluate("LoyaltyWidget('refresh')")
    tab.page.wait_for_timeout(300)
    tab.open()
    dialog = tab.page.locator(DIALOG)
    expect(dialog.get_by_role("alert")).to_contain_text("You're offline")
    tab.shot("offline")
    tab.context.set_offline(False)  # the "online" event retries by itself
    expect(dialog.locator(".balance")).to_have_text(f"{live_demo.member().balance:,}")
    # The browser itself logs the requests that failed while offline.
    tab.messages[:] = [m for m in tab.messages if "ERR_INTERNET_DISCONNECTED" not in m[1]]
    assert console_problems(tab.messages) == []


def test_data_open_opens_the_panel_without_a_click(shop: Any) -> None:
    tab = shop(MEMBER_ID, query="&open=1")
    expect(tab.page.locator(DIALOG)).to_be_visible()
    expect(tab.page.locator(f"{DIALOG} .balance")).to_be_visible()


def test_calls_queued_before_the_loader_ran_are_played(shop: Any) -> None:
    # What a theme's own script does before the deferred loader has run.
    stub = ("window.LoyaltyWidget = window.LoyaltyWidget || function () {"
            " (LoyaltyWidget.q = LoyaltyWidget.q || []).push(arguments); };"
            " LoyaltyWidget('open');")
    tab = shop(None, before=stub)
    expect(tab.page.locator(DIALOG)).to_be_visible()
    tab.page.evaluate("LoyaltyWidget('close')")
    expect(tab.page.locator(DIALOG)).to_be_hidden()
    tab.page.evaluate("LoyaltyWidget.open()")
    expect(tab.page.locator(DIALOG)).to_be_visible()


@pytest.mark.parametrize(("customer", "lost"), [("7004", "reset"), ("7006", "gateway")])
def test_a_redeem_retried_after_a_lost_answer_reuses_its_key(shop: Any, live_demo: LiveDemo,
                                                             customer: str, lost: str) -> None:
    """The server redeems but its answer is lost (a reset connection, or a gateway's 504
    page); trying again must send the same Idempotency-Key so the server replays the first
    redemption instead of making a second one."""
    # Points for two redemptions: a second one would be allowed, so only the key stops it.
    live_demo.place_order(customer, Decimal(400), f"LIVE-{customer}")
    live_demo.place_order(customer, Decimal(400), f"LIVE-{customer}b")
    before = live_demo.member(customer).balance
    tab = shop(customer)
    keys: list[str] = []

    def lose_first_answer(route: Any) -> None:
        keys.append(route.request.headers["idempotency-key"])
        response = route.fetch()  # the server does redeem
        if len(keys) > 1:
            route.fulfill(response=response)
        elif lost == "reset":
            route.abort("connectionreset")
        else:
            route.fulfill(status=504, content_type="text/html", body="<h1>Gateway Timeout</h1>")

    tab.page.route("**/apps/loyalty/api/redeem", lose_first_answer)
    tab.open()
    dialog = tab.page.locator(DIALOG)
    button = dialog.get_by_role("button", name="Redeem: Free shipping")
    button.click()
    expect(dialog.locator(".notice")).to_contain_text("couldn't confirm")
    tab.messages.clear()  # the browser logs the failed request
    button.click()
    expect(dialog.locator(".code-card.new")).to_be_visible()
    assert len(keys) == 2 and keys[0] == keys[1]
    member = live_demo.member(customer)
    assert member.balance == before - 300  # spent once
    with unit_of_work(live_demo.shopify.runtime.database) as session:
        assert session.query(Redemption).filter_by(merchant_id=live_demo.merchant_id,
                                                   member_id=member.id).count() == 1


def test_the_new_code_shows_even_when_the_balance_cannot_be_read(shop: Any,
                                                                 live_demo: LiveDemo) -> None:
    live_demo.place_order("7005", Decimal(400), "LIVE-5")
    tab = shop("7005")
    tab.open()
    tab.page.route("**/apps/loyalty/api/me", lambda route: route.fulfill(
        status=500, content_type="application/json", body='{"error": "internal"}'))
    dialog = tab.page.locator(DIALOG)
    dialog.get_by_role("button", name="Redeem: Free shipping").click()
    expect(dialog.locator(".code-card.new code")).to_be_visible()
    tab.messages[:] = [m for m in tab.messages if "500" not in m[1]]


def test_focus_stays_in_the_dialog_when_it_redraws(shop: Any) -> None:
    tab = shop(None)
    tab.open()
    join = tab.page.locator(DIALOG).get_by_role("link", name="Join now")
    join.focus()
    tab.page.evaluate("LoyaltyWidget('refresh')")
    tab.page.wait_for_timeout(300)
    assert _focused(tab.page) == "join"
    tab.page.keyboard.press("Escape")
    expect(tab.page.locator(DIALOG)).to_be_hidden()
