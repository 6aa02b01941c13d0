"""The admin's tier ladder: create, edit, reorder, retire (history kept) and revive tiers;
every refusal names its field and saves nothing; another merchant's tiers are not found;
retiring a tier pays no welcome to a lower one."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from plugin_server.db import unit_of_work
from plugin_server.models import (
    Member,
    Tier,
    TierChange,
    utcnow,
)
from tests.support.admin import OTHER_SHOP, merchant_named
from tests.support.program_admin import (  # noqa: F401  (the fixtures)
    activity,
    app,
    client,
    database,
    ladder,
    post,
    settings_of,
    tiers_of,
)

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


def their_tier(app: Flask) -> int:
    """A tier of the other shop (Theirs, from 10): a guess at an id this merchant has not."""
    with unit_of_work(database(app)) as session:
        theirs = Tier(merchant_id=merchant_named(app, OTHER_SHOP).id, name="Theirs",
                      threshold=Decimal(10))
        session.add(theirs)
        session.flush()
        return theirs.id


def test_another_merchants_tier_ids_are_not_found(app: Flask, client: FlaskClient) -> None:
    their_id = their_tier(app)
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




def test_a_tier_preview_checks_ids_like_a_save(app: Flask, client: FlaskClient) -> None:
    their_id = their_tier(app)
    status, _page = post(client, "/admin/program/tiers",
                         {**ladder((str(their_id), "Gold", "10")), "mode": "preview"})
    assert status == 404
    post(client, "/admin/program/tiers", {**ladder(("", "Silver", "100")), "mode": "save"})
    status, page = post(client, "/admin/program/tiers",
                        {**ladder(("", "Gold", "500")), "mode": "preview"})
    assert status == 400 and 'data-field="tiers"' in page


