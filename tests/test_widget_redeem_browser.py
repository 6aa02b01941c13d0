"""Redeeming in a real browser: the code and the balance, by keyboard alone, and the
Idempotency-Key rules when an answer is lost (see test_widget_browser.py for the set-up)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import expect

from plugin_server.db import unit_of_work
from plugin_server.models import Redemption
from tests.support.live_demo import LiveDemo, live_demo
from tests.support.widget_browser import (
    DIALOG,
    LAUNCHER,
    WIDGET,
    browser,
    focused,
    shop,
)

__all__ = ["browser", "live_demo", "shop"]  # fixtures, imported for pytest to find

pytestmark = pytest.mark.slow


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


def test_keyboard_only_redeem_with_focus_trap_and_escape(shop: Any,
                                                         live_demo: LiveDemo) -> None:
    live_demo.place_order("7003", Decimal(400), "LIVE-3")
    tab = shop("7003")
    page = tab.page
    for _ in range(60):
        page.keyboard.press("Tab")
        if focused(page).startswith("Rewards"):
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
        seen.append(focused(page))
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
    assert focused(page).startswith("Rewards")
    expect(page.locator(LAUNCHER)).to_have_attribute("aria-expanded", "false")
    tab.shot("keyboard-redeemed")


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
    assert focused(tab.page) == "join"
    tab.page.keyboard.press("Escape")
    expect(tab.page.locator(DIALOG)).to_be_hidden()


def test_a_token_refused_at_redeem_signs_in_again_and_shows_the_new_balance(
        shop: Any, live_demo: LiveDemo) -> None:
    """WordPress-style embed: the stored token no longer verifies (a rotated key, say); the
    redemption signs in again, goes through once, and the balance shown is the new one."""
    live_demo.place_order("7007", Decimal(400), "LIVE-7")
    before = live_demo.member("7007").balance
    tab = shop("7007", embed="wordpress")
    tab.open()
    dialog = tab.page.locator(DIALOG)
    expect(dialog.locator(".balance")).to_have_text(f"{before:,}")
    tab.page.evaluate("""() => Object.keys(sessionStorage)
      .filter(key => key.startsWith('loyalty:'))
      .forEach(key => sessionStorage.setItem(key, JSON.stringify(
        {token: 'no-longer-valid', expires: Date.now() + 600000})))""")
    dialog.get_by_role("button", name="Redeem: Free shipping").click()
    expect(dialog.locator(".code-card.new")).to_be_visible()
    expect(dialog.locator(".balance")).to_have_text(f"{before - 300:,}")
    assert live_demo.member("7007").balance == before - 300
    # The refused request is logged by the browser itself.
    tab.messages[:] = [m for m in tab.messages if "401" not in m[1]]
