"""The merchant admin in a real browser (Debian's chromium): signing in to the demo, finding
a member and adjusting their points, importing starting balances with a dry run first,
previewing then saving a tier change, the widget's live preview, with a screenshot of each
step in the test artifacts folder and no console error anywhere."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from plugin_server.db import unit_of_work
from plugin_server.models import AdminActivity, Member, Tier
from tests.support.live_demo import (
    MEMBER_ID,
    LiveDemo,
    artifact,
    console_problems,
    email_of,
    live_demo,  # noqa: F401  (the fixture)
)
from tests.support.widget_browser import browser  # noqa: F401  (the fixture)


@pytest.fixture
def admin(browser: Browser, live_demo: LiveDemo) -> Iterator[Page]:  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    messages: list[Any] = []
    page.on("console", lambda message: messages.append((message.type, message.text)))
    page.on("pageerror", lambda error: messages.append(("pageerror", str(error))))
    page.on("dialog", lambda dialog: dialog.accept())  # "apply this file?"
    # The demo's one-click sign-in (development only); the context's request shares its
    # cookies with the page.
    signed_in = context.request.post(f"{live_demo.url}/admin/demo-login", max_redirects=0)
    assert signed_in.status == 303
    page.goto(f"{live_demo.url}/admin")
    yield page
    assert console_problems(messages) == []
    context.close()


def _balance(demo: LiveDemo, email: str) -> int | None:
    with unit_of_work(demo.shopify.runtime.database) as session:
        found = session.query(Member).filter_by(merchant_id=demo.merchant_id,
                                                email=email).one_or_none()
        return None if found is None else found.balance


def test_a_merchant_adjusts_a_member_in_the_browser(admin: Page,
                                                    live_demo: LiveDemo) -> None:  # noqa: F811
    before = live_demo.member().balance
    admin.click("nav.sections a[data-view=members]")
    admin.fill("input[name=q]", email_of(MEMBER_ID))
    admin.click("#view form button[type=submit]")
    admin.click(f"#view a:text('{email_of(MEMBER_ID)}')")
    admin.fill("input[name=points]", "25")
    admin.fill("input[name=reason]", "Sorry for the late parcel")
    admin.click("#view form[action$='/adjust'] button[type=submit]")
    expect(admin.locator("#view")).to_contain_text("Sorry for the late parcel")
    admin.screenshot(path=artifact("admin-member-adjusted.png"), full_page=True)
    assert live_demo.member().balance == before + 25
    with unit_of_work(live_demo.shopify.runtime.database) as session:
        assert session.query(AdminActivity).filter_by(
            merchant_id=live_demo.merchant_id, action="member.adjust").count() == 1


def test_a_merchant_imports_balances_after_a_dry_run(admin: Page, live_demo: LiveDemo,  # noqa: F811
                                                     tmp_path: Path) -> None:
    upload = tmp_path / "balances.csv"
    upload.write_text("email,points\nnew.member@example.com,300\nnot-an-email,12\n")
    admin.click("nav.sections a[data-view=data]")
    admin.set_input_files("#import-file", str(upload))
    admin.click("button[value=dry_run]")
    expect(admin.locator("#view")).to_contain_text("not an email address")
    admin.screenshot(path=artifact("admin-import-dry-run.png"), full_page=True)
    assert _balance(live_demo, "new.member@example.com") is None  # a dry run changes nothing
    upload.write_text("email,points\nnew.member@example.com,300\n")
    admin.set_input_files("#import-file", str(upload))
    admin.click("button[value=apply]")
    expect(admin.locator("#view")).to_contain_text("300")
    admin.screenshot(path=artifact("admin-import-applied.png"), full_page=True)
    assert _balance(live_demo, "new.member@example.com") == 300
    admin.goto(admin.url.split("/admin")[0] + "/admin?view=activity")
    admin.screenshot(path=artifact("admin-activity.png"), full_page=True)


def test_a_merchant_previews_then_changes_a_tier(admin: Page,
                                                 live_demo: LiveDemo) -> None:  # noqa: F811
    admin.click("nav.sections a[data-view=program]")
    silver = admin.locator("#tiers tr[data-tier]", has=admin.locator("input[value=Silver]"))
    silver.locator("input[name$='-threshold']").fill("150")
    silver.locator("input[name$='-retention']").fill("120")
    silver.locator("input[name$='-multiplier']").fill("1.5")
    # Move Silver up and back down: the ladder keeps the order shown.
    silver.locator("button[data-move=up]").click()
    admin.locator("#tiers tr[data-tier]", has=admin.locator("input[value=Silver]")).locator(
        "button[data-move=down]").click()
    admin.click("#tiers button[value=preview]")
    preview = admin.locator("#preview")
    expect(preview).to_be_visible()
    expect(preview.locator("[data-moving]")).to_be_visible()
    admin.screenshot(path=artifact("admin-program-preview.png"), full_page=True)
    admin.locator("#tiers").screenshot(path=artifact("admin-program-tiers.png"))
    with unit_of_work(live_demo.shopify.runtime.database) as session:
        stored = session.query(Tier).filter_by(merchant_id=live_demo.merchant_id,
                                               name="Silver").one()
        assert stored.threshold == 300  # a preview saves nothing
    admin.click("#tiers button[value=save]")
    expect(admin.locator("#tiers .notice")).to_be_visible()
    with unit_of_work(live_demo.shopify.runtime.database) as session:
        stored = session.query(Tier).filter_by(merchant_id=live_demo.merchant_id,
                                               name="Silver").one()
        assert (stored.threshold, stored.multiplier) == (150, Decimal("1.5"))
        assert session.query(AdminActivity).filter_by(
            merchant_id=live_demo.merchant_id, action="settings.tiers").count() == 1
    # An earning change previews the last 12 months as a chart with its table.
    admin.fill("input[name=points_per_unit]", "2")
    admin.click("#earning button[value=preview]")
    expect(admin.locator("#earning #preview svg.chart > title")).to_have_count(1)
    admin.locator("#earning").screenshot(path=artifact("admin-program-earning.png"))
    # The widget's live preview follows the colour and the Japanese texts as they are typed.
    admin.fill("input[name=color]", "#aa3366")
    japanese = admin.locator("#widget details", has=admin.locator("summary[lang=ja]"))
    if japanese.get_attribute("open") is None:
        japanese.locator("summary").click()
    admin.fill("input[name=texts-ja-program_name]", "ポイントクラブ")
    admin.select_option("select[name=preview_language]", "ja")
    expect(admin.locator("#widget-preview .preview-head")).to_have_text("ポイントクラブ")
    expect(admin.locator("#widget-preview .widget-preview")).to_have_attribute(
        "data-color", "#aa3366")
    colour = admin.locator("#widget-preview .preview-launcher").evaluate(
        "element => getComputedStyle(element).backgroundColor")
    assert colour == "rgb(170, 51, 102)"
    admin.locator("#widget .widget-editor").screenshot(path=artifact("admin-program-widget.png"))
