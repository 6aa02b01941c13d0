"""The admin's rewards and storefront widget settings: create, edit and switch off rewards;
the widget's look and texts per language with a live preview; refusals name their field."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from plugin_server.db import unit_of_work
from plugin_server.models import (
    AdminActivity,
    ProgramSettings,
)
from tests.support.admin import OTHER_SHOP, SHOP, merchant_named, signed_in_client
from tests.support.program_admin import (  # noqa: F401  (the fixtures)
    REWARD,
    activity,
    app,
    client,
    database,
    post,
    rewards_of,
    settings_of,
    storefront_program,
)

# -- rewards -------------------------------------------------------------------------------

def test_rewards_are_created_edited_and_disabled(app: Flask, client: FlaskClient) -> None:
    status, page = post(client, "/admin/program/rewards",
                        {**REWARD, "minimum_subtotal": "20", "expires_days": "30"})
    assert status == 200, page
    [reward] = rewards_of(app)
    assert (reward.name, reward.kind, reward.points_cost, reward.value,
            reward.minimum_subtotal, reward.expires_days, reward.enabled) == (
        "5 off", "fixed_amount", 500, Decimal(5), Decimal(20), 30, True)
    status, page = post(client, f"/admin/program/rewards/{reward.id}",
                        {**REWARD, "name": "10% off", "kind": "percentage", "value": "10"})
    assert status == 200, page
    status, page = post(client, f"/admin/program/rewards/{reward.id}",
                        {key: value for key, value in REWARD.items() if key != "enabled"}
                        | {"name": "10% off", "kind": "percentage", "value": "10"})
    [reward] = rewards_of(app)
    assert (reward.name, reward.kind, reward.value, reward.enabled,
            reward.minimum_subtotal) == ("10% off", "percentage", Decimal(10), False, None)
    logged = activity(app)
    assert [entry["action"] for entry in logged] == [
        "settings.reward_added", "settings.reward", "settings.reward"]
    assert logged[1]["kind"] == ["fixed_amount", "percentage"]
    assert logged[2]["enabled"] == [True, False]
    # Shoppers are no longer offered it; the admin still lists it, switched off.
    assert storefront_program(app)["rewards"] == []
    assert "10% off" in client.get("/admin/view/program").get_data(as_text=True)


@pytest.mark.parametrize(("field", "value"), [
    ("points_cost", "0"), ("points_cost", "-10"), ("points_cost", "ten"),
    ("value", "0"), ("value", "-5"), ("kind", "free_product"), ("name", ""),
    ("name", "x" * 121), ("expires_days", "0"), ("minimum_subtotal", "-1"),
])
def test_invalid_rewards_are_refused_with_the_field(app: Flask, client: FlaskClient,
                                                    field: str, value: str) -> None:
    status, page = post(client, "/admin/program/rewards", {**REWARD, field: value})
    assert status == 400
    assert f'data-field="{field}"' in page
    assert rewards_of(app) == [] and activity(app) == []


def test_a_percentage_above_100_is_refused(app: Flask, client: FlaskClient) -> None:
    status, page = post(client, "/admin/program/rewards",
                        {**REWARD, "kind": "percentage", "value": "150"})
    assert status == 400 and 'data-field="value"' in page
    assert rewards_of(app) == []


def test_another_merchants_reward_is_not_found(app: Flask, client: FlaskClient) -> None:
    other = signed_in_client(app, OTHER_SHOP)
    post(other, "/admin/program/rewards", REWARD)
    [theirs] = rewards_of(app, OTHER_SHOP)
    status, _page = post(client, f"/admin/program/rewards/{theirs.id}",
                         {**REWARD, "name": "Hijacked"})
    assert status == 404
    assert rewards_of(app, OTHER_SHOP)[0].name == "5 off"




# -- widget --------------------------------------------------------------------------------

WIDGET = {"program_name": "Tea Points", "color": "#AA3366", "position": "left", "launcher": "label",
          "launcher_label": "Points", "texts-ja-program_name": "ポイントクラブ",
          "texts-ja-launcher": "ポイント"}


def test_the_widget_is_saved_and_keeps_per_language_reward_names(
        app: Flask, client: FlaskClient) -> None:
    with unit_of_work(database(app)) as session:
        session.execute(update(ProgramSettings).where(
            ProgramSettings.merchant_id == merchant_named(app, SHOP).id).values(
            widget_json=json.dumps({"texts": {"fr": {"rewards": {"12": "Livraison offerte"}}}})))
    status, page = post(client, "/admin/program/widget", WIDGET)
    assert status == 200, page
    stored = json.loads(settings_of(app)["widget_json"])
    assert stored == {"color": "#aa3366", "position": "left", "launcher": "label",
                      "launcher_label": "Points",
                      "texts": {"ja": {"program_name": "ポイントクラブ", "launcher": "ポイント"},
                                "fr": {"rewards": {"12": "Livraison offerte"}}}}
    assert settings_of(app)["program_name"] == "Tea Points"
    [entry] = activity(app, "settings.widget")
    assert entry["color"] == [None, "#aa3366"]
    assert entry["program_name"] == ["Rewards", "Tea Points"]
    # The storefront reads the same settings.
    assert storefront_program(app)["widget"]["color"] == "#aa3366"


@pytest.mark.parametrize(("field", "value", "shown"), [
    ("color", "red", "color"), ("position", "middle", "position"),
    ("launcher_label", "x" * 31, "launcher_label"),
    ("texts-ja-explainer", "x" * 301, "texts.ja.explainer"),
    ("sign_in_url", "javascript:alert(1)", "sign_in_url"),
    ("program_name", "", "program_name"), ("program_name", "x" * 61, "program_name"),
])
def test_invalid_widget_settings_are_refused(app: Flask, client: FlaskClient, field: str,
                                             value: str, shown: str) -> None:
    status, page = post(client, "/admin/program/widget", {**WIDGET, field: value})
    assert status == 400
    assert f'data-field="{shown}"' in page
    assert json.loads(settings_of(app)["widget_json"]) == {}
    assert settings_of(app)["program_name"] == "Rewards"
    assert activity(app) == []


def test_the_live_preview_draws_what_was_typed_without_saving(app: Flask,
                                                              client: FlaskClient) -> None:
    status, page = post(client, "/admin/program/widget/preview",
                        {**WIDGET, "preview_language": "ja"})
    assert status == 200
    assert 'data-color="#aa3366"' in page and 'data-position="left"' in page
    assert "ポイントクラブ" in page and "ポイント</span>" in page
    status, page = post(client, "/admin/program/widget/preview", {**WIDGET, "color": "red"})
    assert status == 200 and 'role="alert"' in page and "color" in page
    assert json.loads(settings_of(app)["widget_json"]) == {}
    assert activity(app) == []
    with unit_of_work(database(app)) as session:
        assert session.scalar(select(func.count()).select_from(AdminActivity)) == 0




def test_a_refused_edit_comes_back_in_its_own_rewards_form(app: Flask,
                                                           client: FlaskClient) -> None:
    post(client, "/admin/program/rewards", REWARD)
    post(client, "/admin/program/rewards", {**REWARD, "name": "Free shipping",
                                            "kind": "free_shipping", "value": ""})
    first, second = rewards_of(app)
    status, page = post(client, f"/admin/program/rewards/{first.id}",
                        {**REWARD, "points_cost": "0"})
    assert status == 400
    opened = page.split(f'data-reward="{first.id}"')[1].split("</details>")[0]
    assert opened.lstrip().startswith("open") and 'data-field="points_cost"' in opened
    assert 'value="0"' in opened  # what was typed
    other = page.split(f'data-reward="{second.id}"')[1].split("</details>")[0]
    assert "field-error" not in other and 'value="300"' not in other
    assert [reward.points_cost for reward in rewards_of(app)] == [500, 500]


