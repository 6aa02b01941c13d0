"""The storefront widget in a real browser (Debian's chromium driven by Playwright) against the
real app on loopback: the demo store page, which embeds the widget as the Shopify app embed
and the WordPress plugin do, under a strict Content-Security-Policy. Every test also fails on
any console error or page error; each view leaves a screenshot in the test artifacts folder."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.support.live_demo import MEMBER_ID, LiveDemo, console_problems, live_demo
from tests.support.widget_browser import (
    DIALOG,
    LAUNCHER,
    WIDGET,
    browser,
    catalog,
    shop,
)
from tests.test_widget_catalogs import PLURAL_CATEGORIES

__all__ = ["browser", "live_demo", "shop"]  # fixtures, imported for pytest to find

pytestmark = pytest.mark.slow


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


def test_catalog_plural_categories_are_the_browsers(browser: Browser) -> None:
    """The categories each catalog's plural messages give are exactly those the browser's
    Intl.PluralRules selects from, for all twelve languages."""
    page = browser.new_page()
    reported = page.evaluate("""langs => Object.fromEntries(langs.map(lang =>
        [lang, new Intl.PluralRules(lang).resolvedOptions().pluralCategories]))""",
                             sorted(PLURAL_CATEGORIES))
    page.close()
    assert {lang: frozenset(found) for lang, found in reported.items()} == PLURAL_CATEGORIES
