"""The admin's program section: access to its routes, the earning settings with the product
and collection multipliers, and odd input that must be refused, never crash."""

from __future__ import annotations

from decimal import Decimal

import pytest
from flask import Flask
from flask.testing import FlaskClient

from plugin_server.db import unit_of_work
from plugin_server.models import (
    Reward,
    Tier,
)
from tests.support.admin import SHOP, merchant_named
from tests.support.program_admin import (  # noqa: F401  (the fixtures)
    EARNING,
    REWARD,
    activity,
    app,
    client,
    database,
    multipliers_of,
    post,
    rules,
    settings_of,
)

# -- access --------------------------------------------------------------------------------

ROUTES = ["/admin/program/earning", "/admin/program/tiers", "/admin/program/rewards",
          "/admin/program/rewards/1", "/admin/program/widget", "/admin/program/widget/preview"]


@pytest.mark.parametrize("path", ROUTES)
def test_the_program_routes_need_a_sign_in_and_the_csrf_token(app: Flask, client: FlaskClient,
                                                              path: str) -> None:
    assert app.test_client().post(path, data=EARNING).status_code == 401
    assert app.test_client().get("/admin/view/program").status_code == 401
    assert client.post(path, data=EARNING).status_code == 403
    assert client.post(path, data={**EARNING, "csrf_token": "guess"}).status_code == 403
    assert settings_of(app)["points_per_unit"] == Decimal(1)
    assert activity(app) == []


def test_the_section_shows_the_saved_program(app: Flask, client: FlaskClient) -> None:
    with unit_of_work(database(app)) as session:
        merchant_id = merchant_named(app, SHOP).id
        session.add(Tier(merchant_id=merchant_id, name="Silver", threshold=Decimal(100)))
        session.add(Reward(merchant_id=merchant_id, name="5 off", kind="fixed_amount",
                           points_cost=500, value=Decimal(5)))
    page = client.get("/admin/view/program").get_data(as_text=True)
    assert 'name="points_per_unit"' in page and 'value="1"' in page
    assert 'value="Silver"' in page and "5 off" in page
    assert 'id="widget-preview"' in page
    japanese = client.get("/admin/view/program?lang=ja").get_data(as_text=True)
    assert "VIPランク" in japanese




# -- earning -------------------------------------------------------------------------------

def test_saving_earning_changes_the_settings_and_logs_old_and_new(app: Flask,
                                                                  client: FlaskClient) -> None:
    status, page = post(client, "/admin/program/earning", {
        **EARNING, "points_per_unit": "2.5", "rounding": "nearest", "award_on": "fulfilment",
        "pending_days": "14", "include_shipping": "on", "mode": "save"})
    assert status == 200, page
    saved = settings_of(app)
    assert (saved["points_per_unit"], saved["rounding"], saved["award_on"],
            saved["pending_days"], saved["include_shipping"], saved["include_taxes"]) == (
        Decimal("2.5"), "nearest", "fulfilment", 14, True, False)
    [entry] = activity(app, "settings.earning")
    assert entry["actor"] and entry["points_per_unit"] == ["1", "2.5"]
    assert entry["award_on"] == ["payment", "fulfilment"]
    assert entry["include_shipping"] == [False, True]
    assert "include_taxes" not in entry
    # Saving the same values again changes and logs nothing.
    post(client, "/admin/program/earning", {
        **EARNING, "points_per_unit": "2.5", "rounding": "nearest", "award_on": "fulfilment",
        "pending_days": "14", "include_shipping": "on", "mode": "save"})
    assert len(activity(app, "settings.earning")) == 1


@pytest.mark.parametrize(("field", "value"), [
    ("points_per_unit", "-1"), ("points_per_unit", "1001"), ("points_per_unit", "0.00001"),
    ("points_per_unit", "lots"), ("points_per_unit", "NaN"), ("points_per_unit", "Infinity"),
    ("pending_days", "366"), ("pending_days", "-2"), ("pending_days", "1.5"),
    ("rounding", "sideways"), ("award_on", "whenever"),
])
def test_invalid_earning_is_refused_with_its_field_and_nothing_saved(
        app: Flask, client: FlaskClient, field: str, value: str) -> None:
    before = settings_of(app)
    status, page = post(client, "/admin/program/earning",
                        {**EARNING, "include_taxes": "on", field: value, "mode": "save"})
    assert status == 400
    assert f'data-field="{field}"' in page and 'role="alert"' in page
    if field not in ("rounding", "award_on"):
        assert f'value="{value}"' in page  # what was typed comes back
    assert settings_of(app) == before
    assert activity(app) == []




@pytest.mark.parametrize("value", ["²", "--5", "١٢", "9" * 5000, "1e2", "0x10", "+3"])
def test_odd_numbers_are_refused_not_crashed_on(app: Flask, client: FlaskClient,
                                                value: str) -> None:
    status, page = post(client, "/admin/program/earning",
                        {**EARNING, "pending_days": value, "mode": "save"})
    assert status == 400 and 'data-field="pending_days"' in page
    assert settings_of(app)["pending_days"] == 0




@pytest.mark.parametrize("path", ["/admin/program/rewards/99999999999999999999999",
                                  "/admin/members/99999999999999999999999/adjust",
                                  "/admin/redemptions/99999999999999999999999/cancel"])
def test_ids_beyond_64_bits_are_not_found(app: Flask, client: FlaskClient,
                                          path: str) -> None:
    status, _page = post(client, path, {**REWARD, "points": "5", "reason": "x"})
    assert status == 404




# -- product and collection multipliers ------------------------------------------------------

def test_multipliers_are_added_changed_and_removed(app: Flask, client: FlaskClient) -> None:
    status, page = post(client, "/admin/program/earning", {
        **EARNING, **rules(("product", "gid://shopify/Product/7", "2", "Matcha"),
                           ("collection", "451", "1.5", "")), "mode": "save"})
    assert status == 200, page
    # A Shopify GID is kept as its number, which is what order lines carry.
    assert multipliers_of(app) == [("collection", "451", Decimal("1.5"), ""),
                                   ("product", "7", Decimal(2), "Matcha")]
    page = client.get("/admin/view/program").get_data(as_text=True)
    assert 'value="7"' in page
    # Change one factor, remove the other (its row ticked), add a third.
    form = {**EARNING, **rules(("product", "gid://shopify/Product/7", "3", "Matcha"),
                               ("collection", "451", "1.5", ""), ("product", "99", "0", "")),
            "multipliers-1-remove": "on", "mode": "save"}
    status, page = post(client, "/admin/program/earning", form)
    assert status == 200, page
    assert multipliers_of(app) == [("product", "7", Decimal(3), "Matcha"),
                                   ("product", "99", Decimal(0), "")]
    logged = activity(app, "settings.earning")[-1]
    assert logged["product 7: factor"] == ["2", "3"]
    assert logged["collection 451: factor"] == ["1.5", "—"]
    assert logged["product 99: factor"] == ["—", "0"]
    # A form that does not show the multipliers leaves them alone.
    post(client, "/admin/program/earning", {**EARNING, "points_per_unit": "2", "mode": "save"})
    assert len(multipliers_of(app)) == 2


@pytest.mark.parametrize(("row", "field"), [
    (("shop", "1", "2", ""), "multipliers-0-target"),
    (("product", "", "2", "x"), "multipliers-0-target_id"),
    (("product", "a b", "2", ""), "multipliers-0-target_id"),
    (("product", "<script>", "2", ""), "multipliers-0-target_id"),
    (("product", "gid://shopify/Order/7", "2", ""), "multipliers-0-target_id"),
    (("product", "1", "11", ""), "multipliers-0-factor"),
    (("product", "1", "-1", ""), "multipliers-0-factor"),
    (("product", "1", "2", "x" * 121), "multipliers-0-label"),
])
def test_invalid_multipliers_are_refused(app: Flask, client: FlaskClient,
                                         row: tuple[str, str, str, str], field: str) -> None:
    status, page = post(client, "/admin/program/earning",
                        {**EARNING, **rules(row), "mode": "save"})
    assert status == 400 and f'data-field="{field}"' in page
    assert multipliers_of(app) == [] and activity(app) == []


def test_a_product_listed_twice_is_refused(app: Flask, client: FlaskClient) -> None:
    status, page = post(client, "/admin/program/earning", {
        **EARNING, **rules(("product", "7", "2", ""), ("product", "7", "3", "")),
        "mode": "save"})
    assert status == 400 and 'data-field="multipliers-1-target_id"' in page
    assert multipliers_of(app) == []

