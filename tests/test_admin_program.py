"""The admin's program section: earning, the tier ladder, rewards and the widget. Every save
is logged with old → new; every refusal names the field and saves nothing; another merchant's
ids are 404; the section's routes need a sign-in and the CSRF token."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from plugin_server.db import unit_of_work
from plugin_server.loyalty.storefront import public_program
from plugin_server.models import (
    AdminActivity,
    EarningRule,
    Member,
    ProgramSettings,
    Reward,
    Tier,
    TierChange,
    utcnow,
)
from tests.support.admin import OTHER_SHOP, SHOP, csrf_token, merchant_named, signed_in_client

EARNING = {"points_per_unit": "1", "rounding": "down", "award_on": "payment",
           "pending_days": "0"}


@pytest.fixture
def app(admin_app: Flask) -> Flask:
    return admin_app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    with unit_of_work(database(app)) as session:
        for shop in (SHOP, OTHER_SHOP):
            session.add(ProgramSettings(merchant_id=merchant_named(app, shop).id))
    return signed_in_client(app, SHOP)


def post(client: FlaskClient, path: str, data: dict[str, str]) -> tuple[int, str]:
    answer = client.post(path, data={"csrf_token": csrf_token(client), **data})
    return answer.status_code, answer.get_data(as_text=True)


def database(app: Flask) -> Any:
    return app.extensions["loyalty"].database


def settings_of(app: Flask, shop: str = SHOP) -> dict[str, Any]:
    with unit_of_work(database(app)) as session:
        row = session.execute(select(ProgramSettings).where(
            ProgramSettings.merchant_id == merchant_named(app, shop).id)).scalar_one_or_none()
        if row is None:
            return {}
        return {column.name: getattr(row, column.name)
                for column in ProgramSettings.__table__.columns if column.name != "updated_at"}


def activity(app: Flask, action: str | None = None) -> list[dict[str, Any]]:
    with unit_of_work(database(app)) as session:
        query = select(AdminActivity).order_by(AdminActivity.id)
        if action:
            query = query.where(AdminActivity.action == action)
        return [{"action": row.action, "actor": row.actor, **json.loads(row.detail_json)}
                for row in session.execute(query).scalars()]


def tiers_of(app: Flask, shop: str = SHOP, *, active: bool | None = True) -> list[Tier]:
    with unit_of_work(database(app)) as session:
        query = select(Tier).where(Tier.merchant_id == merchant_named(app, shop).id)
        if active is not None:
            query = query.where(Tier.active.is_(active))
        found = list(session.execute(query.order_by(Tier.threshold)).scalars())
        session.expunge_all()
        return found


def ladder(*rows: tuple[str, str, str] | tuple[str, str, str, dict[str, str]],
           basis: str = "points_earned", window: str = "lifetime") -> dict[str, str]:
    """Form fields for rows of (id or "", name, threshold[, more fields]) in this order."""
    form = {"tier_basis": basis, "tier_window": window}
    for number, row in enumerate(rows):
        tier_id, name, threshold = row[:3]
        more = row[3] if len(row) > 3 else {}
        form.update({f"tiers-{number}-id": tier_id, f"tiers-{number}-name": name,
                     f"tiers-{number}-threshold": threshold})
        form.update({f"tiers-{number}-{key}": value for key, value in more.items()})
    return form


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


# -- tiers ---------------------------------------------------------------------------------

def test_tiers_are_created_edited_reordered_and_retired_keeping_history(
        app: Flask, client: FlaskClient) -> None:
    status, page = post(client, "/admin/program/tiers", {
        **ladder(("", "Silver", "100"), ("", "Gold", "500", {"multiplier": "1.5",
                                                             "entry_reward": "50",
                                                             "perks": "Free shipping"})),
        "mode": "save"})
    assert status == 200, page
    silver, gold = tiers_of(app)
    assert (gold.name, gold.threshold, gold.multiplier, gold.entry_reward_points,
            gold.perks) == ("Gold", Decimal(500), Decimal("1.5"), 50, "Free shipping")
    # A member who reached Silver keeps a history row pointing at it.
    with unit_of_work(database(app)) as session:
        member = Member(merchant_id=silver.merchant_id, email="a@example.com",
                        tier_id=silver.id)
        session.add(member)
        session.flush()
        session.add(TierChange(merchant_id=silver.merchant_id, member_id=member.id,
                               from_tier_id=None, to_tier_id=silver.id, progress=Decimal(120),
                               reason="order", created_at=utcnow()))
        member_id = member.id
    # Reorder: Gold now comes first and starts lower; Silver renamed "Platinum" above it.
    status, page = post(client, "/admin/program/tiers", {
        **ladder((str(gold.id), "Gold", "50"), (str(silver.id), "Platinum", "800")),
        "mode": "save"})
    assert status == 200, page
    ordered = tiers_of(app)
    assert [(tier.id, tier.name, tier.threshold) for tier in ordered] == [
        (gold.id, "Gold", Decimal(50)), (silver.id, "Platinum", Decimal(800))]
    [entry] = activity(app, "settings.tiers")[1:]
    assert entry["tier Platinum: name"] == ["Silver", "Platinum"]
    assert entry["tier Gold: threshold"] == ["500", "50"]
    # Retire Platinum: the row stays (inactive) and the history still names it.
    status, page = post(client, "/admin/program/tiers", {
        **ladder((str(gold.id), "Gold", "50"), (str(silver.id), "Platinum", "800",
                                                {"remove": "on"})), "mode": "save"})
    assert status == 200, page
    assert [tier.name for tier in tiers_of(app)] == ["Gold"]
    assert [tier.name for tier in tiers_of(app, active=False)] == ["Platinum"]
    member_page = client.get(f"/admin/view/members?member={member_id}").get_data(as_text=True)
    assert "Platinum" in member_page
    # The re-evaluation job ran after the commit: the member left the retired tier.
    with unit_of_work(database(app)) as session:
        assert session.get(Member, member_id).tier_id is None
        reasons = list(session.execute(select(TierChange.reason).where(
            TierChange.member_id == member_id).order_by(TierChange.id)).scalars())
    assert reasons[-1] == "tiers changed"
    # Adding a tier under the retired name brings the same tier back.
    post(client, "/admin/program/tiers", {
        **ladder((str(gold.id), "Gold", "50"), ("", "Platinum", "900")), "mode": "save"})
    assert [(tier.id, tier.threshold) for tier in tiers_of(app)] == [
        (gold.id, Decimal(50)), (silver.id, Decimal(900))]


@pytest.mark.parametrize(("rows", "field"), [
    ((("", "Silver", "100"), ("", "Gold", "100")), "tiers-1-threshold"),
    ((("", "Gold", "500"), ("", "Silver", "100")), "tiers-1-threshold"),
    ((("", "Silver", "100"), ("", "Gold", "500", {"retention": "50"})), "tiers-1-retention"),
    ((("", "Silver", "100", {"retention": "150"}),), "tiers-0-retention"),
    ((("", "Silver", "100"), ("", "silver", "500")), "tiers-1-name"),
    ((("", "", "100"),), "tiers-0-name"),
    ((("", "Silver", "-5"),), "tiers-0-threshold"),
    ((("", "Silver", "10.5"),), "tiers-0-threshold"),  # points are whole
    ((("", "Silver", "100", {"multiplier": "11"}),), "tiers-0-multiplier"),
    ((("", "Silver", "100", {"entry_reward": "-1"}),), "tiers-0-entry_reward"),
    ((("", "Silver", "100", {"perks": "x" * 301}),), "tiers-0-perks"),
    ((("", "S" * 61, "100"),), "tiers-0-name"),
])
def test_invalid_ladders_are_refused_with_the_field_and_nothing_saved(
        app: Flask, client: FlaskClient, rows: Any, field: str) -> None:
    status, page = post(client, "/admin/program/tiers", {**ladder(*rows), "mode": "save"})
    assert status == 400
    assert f'data-field="{field}"' in page
    assert tiers_of(app, active=None) == []
    assert activity(app) == []


def test_amount_spent_thresholds_may_have_cents(app: Flask, client: FlaskClient) -> None:
    status, _page = post(client, "/admin/program/tiers", {
        **ladder(("", "Silver", "99.50"), basis="amount_spent"), "mode": "save"})
    assert status == 200
    assert tiers_of(app)[0].threshold == Decimal("99.5")
    assert settings_of(app)["tier_basis"] == "amount_spent"


def test_another_merchants_tier_ids_are_not_found(app: Flask, client: FlaskClient) -> None:
    with unit_of_work(database(app)) as session:
        theirs = Tier(merchant_id=merchant_named(app, OTHER_SHOP).id, name="Theirs",
                      threshold=Decimal(10))
        session.add(theirs)
        session.flush()
        their_id = theirs.id
    for form in (ladder((str(their_id), "Mine now", "10")),
                 ladder(("", "Silver", "100"), (str(their_id), "Theirs", "200",
                                                {"remove": "on"}))):
        status, _page = post(client, "/admin/program/tiers", {**form, "mode": "save"})
        assert status == 404
    [theirs_after] = tiers_of(app, OTHER_SHOP)
    assert (theirs_after.name, theirs_after.active) == ("Theirs", True)
    assert tiers_of(app, active=None) == [] and activity(app) == []


def test_a_ladder_missing_a_saved_tier_is_stale_and_refused(app: Flask,
                                                            client: FlaskClient) -> None:
    post(client, "/admin/program/tiers", {**ladder(("", "Silver", "100")), "mode": "save"})
    status, page = post(client, "/admin/program/tiers",
                        {**ladder(("", "Gold", "500")), "mode": "save"})
    assert status == 400 and 'data-field="tiers"' in page
    assert [tier.name for tier in tiers_of(app)] == ["Silver"]


# -- rewards -------------------------------------------------------------------------------

REWARD = {"name": "5 off", "kind": "fixed_amount", "points_cost": "500", "value": "5",
          "enabled": "on"}


def storefront_program(app: Flask, shop: str = SHOP) -> dict[str, Any]:
    with unit_of_work(database(app)) as session:
        return public_program(session, merchant_named(app, shop).id)


def rewards_of(app: Flask, shop: str = SHOP) -> list[Reward]:
    with unit_of_work(database(app)) as session:
        found = list(session.execute(select(Reward).where(
            Reward.merchant_id == merchant_named(app, shop).id).order_by(Reward.id)).scalars())
        session.expunge_all()
        return found


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


# -- found by review: odd input, renames onto removed names, retired tiers' welcomes ---------

@pytest.mark.parametrize("value", ["²", "--5", "١٢", "9" * 5000, "1e2", "0x10", "+3"])
def test_odd_numbers_are_refused_not_crashed_on(app: Flask, client: FlaskClient,
                                                value: str) -> None:
    status, page = post(client, "/admin/program/earning",
                        {**EARNING, "pending_days": value, "mode": "save"})
    assert status == 400 and 'data-field="pending_days"' in page
    assert settings_of(app)["pending_days"] == 0


@pytest.mark.parametrize("form", [
    {"tiers-²-name": "Gold", "tiers-²-threshold": "10"},
    {"tiers-0-id": "³", "tiers-0-name": "Gold", "tiers-0-threshold": "10"},
    {"tiers-0-id": "9" * 40, "tiers-0-name": "Gold", "tiers-0-threshold": "10"},
    {"tiers-0-name": "Go\x00ld", "tiers-0-threshold": "10"},
])
def test_odd_ladder_fields_are_refused(app: Flask, client: FlaskClient,
                                       form: dict[str, str]) -> None:
    status, _page = post(client, "/admin/program/tiers",
                         {"tier_basis": "points_earned", "tier_window": "lifetime", **form,
                          "mode": "save"})
    assert status in (200, 400)  # the odd row is ignored or refused, never a crash
    assert [tier.name for tier in tiers_of(app)] in ([], ["Gold"])
    assert all("\x00" not in tier.name for tier in tiers_of(app, active=None))


def test_renaming_onto_a_tier_removed_in_the_same_save_is_refused(
        app: Flask, client: FlaskClient) -> None:
    post(client, "/admin/program/tiers",
         {**ladder(("", "Silver", "100"), ("", "Gold", "500")), "mode": "save"})
    silver, gold = tiers_of(app)
    status, page = post(client, "/admin/program/tiers", {**ladder(
        (str(silver.id), "Silver", "100", {"remove": "on"}), (str(gold.id), "Silver", "500")),
        "mode": "save"})
    assert status == 400 and 'data-field="tiers-1-name"' in page
    assert [tier.name for tier in tiers_of(app)] == ["Silver", "Gold"]


def test_members_of_a_retired_top_tier_get_no_welcome_to_the_tier_below(
        app: Flask, client: FlaskClient) -> None:
    post(client, "/admin/program/tiers", {**ladder(
        ("", "Silver", "0", {"entry_reward": "30"}), ("", "Gold", "500")), "mode": "save"})
    silver, gold = tiers_of(app)
    with unit_of_work(database(app)) as session:
        member = Member(merchant_id=gold.merchant_id, email="g@example.com", tier_id=gold.id)
        session.add(member)
        session.flush()
        member_id = member.id
    status, page = post(client, "/admin/program/tiers", {**ladder(
        (str(silver.id), "Silver", "0", {"entry_reward": "30"}),
        (str(gold.id), "Gold", "500", {"remove": "on"})), "mode": "save"})
    assert status == 200, page
    with unit_of_work(database(app)) as session:
        assert session.get(Member, member_id).tier_id == silver.id
        assert session.get(Member, member_id).balance == 0
    # A member with no tier who enters Silver is still welcomed.
    with unit_of_work(database(app)) as session:
        newcomer = Member(merchant_id=gold.merchant_id, email="n@example.com")
        session.add(newcomer)
        session.flush()
        newcomer_id = newcomer.id
    app.extensions["loyalty"].jobs.run("reevaluate_tiers", silver.merchant_id)
    with unit_of_work(database(app)) as session:
        assert session.get(Member, newcomer_id).balance == 30


@pytest.mark.parametrize("path", ["/admin/program/rewards/99999999999999999999999",
                                  "/admin/members/99999999999999999999999/adjust",
                                  "/admin/redemptions/99999999999999999999999/cancel"])
def test_ids_beyond_64_bits_are_not_found(app: Flask, client: FlaskClient,
                                          path: str) -> None:
    status, _page = post(client, path, {**REWARD, "points": "5", "reason": "x"})
    assert status == 404


def test_a_tier_preview_checks_ids_like_a_save(app: Flask, client: FlaskClient) -> None:
    with unit_of_work(database(app)) as session:
        theirs = Tier(merchant_id=merchant_named(app, OTHER_SHOP).id, name="Theirs",
                      threshold=Decimal(1))
        session.add(theirs)
        session.flush()
        their_id = theirs.id
    status, _page = post(client, "/admin/program/tiers",
                         {**ladder((str(their_id), "Gold", "10")), "mode": "preview"})
    assert status == 404
    post(client, "/admin/program/tiers", {**ladder(("", "Silver", "100")), "mode": "save"})
    status, page = post(client, "/admin/program/tiers",
                        {**ladder(("", "Gold", "500")), "mode": "preview"})
    assert status == 400 and 'data-field="tiers"' in page


# -- product and collection multipliers ------------------------------------------------------

def multipliers_of(app: Flask, shop: str = SHOP) -> list[tuple[str, str, Decimal, str]]:
    with unit_of_work(database(app)) as session:
        return [(rule.target, rule.target_id, rule.factor, rule.label)
                for rule in session.execute(select(EarningRule).where(
                    EarningRule.merchant_id == merchant_named(app, shop).id)
                    .order_by(EarningRule.target, EarningRule.target_id)).scalars()]


def rules(*rows: tuple[str, str, str, str]) -> dict[str, str]:
    form = {"multipliers_shown": "1"}
    for number, (target, target_id, factor, label) in enumerate(rows):
        form.update({f"multipliers-{number}-target": target,
                     f"multipliers-{number}-target_id": target_id,
                     f"multipliers-{number}-factor": factor,
                     f"multipliers-{number}-label": label})
    return form


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
