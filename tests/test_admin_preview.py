"""The 12-month preview of an earning or tier change: it writes nothing, and it equals what
saving and then recomputing produces — the tier moves the re-evaluation job really makes,
and the points the same orders really earn when replayed through the pipeline under the
saved rules."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from integrations.base import Order
from plugin_server.admin.program_preview import (
    ProgramPreview,
    TierMove,
    preview_program,
    proposed_program,
)
from plugin_server.admin.settings_forms import parse_earning, parse_ladder
from plugin_server.db import unit_of_work
from plugin_server.loyalty.orders import sync_order
from plugin_server.loyalty.program import load_program
from plugin_server.models import (
    EarningRule,
    LedgerEntry,
    Member,
    ProgramSettings,
    Tier,
    TierChange,
    utcnow,
)
from plugin_server.models import Order as OrderRow
from tests.support.admin import OTHER_SHOP, SHOP, csrf_token, merchant_named, signed_in_client
from tests.support.builders import customer, line, order, refund

EARNING = {"points_per_unit": "2", "rounding": "up", "award_on": "payment",
           "pending_days": "0", "include_shipping": "on"}


@pytest.fixture
def app(admin_app: Flask) -> Flask:
    return admin_app


def database(app: Flask) -> Any:
    return app.extensions["loyalty"].database


def history(now: Any) -> list[Order]:
    """A year of orders for three shoppers: partial refunds, a cancel, a test order, one
    unfulfilled, one guest, one older than 12 months (never counted)."""
    ann, bob, cat = (customer(f"c-{name}", f"{name}@example.com") for name in
                     ("ann", "bob", "cat"))
    guest = customer(None, "guest@example.com")
    orders = []
    for month in range(12):
        placed = now - timedelta(days=30 * month + 3)
        orders.append(replace(order(f"A{month}", line("1", "40.00"), line("2", "15.50",
                                                                          quantity=2),
                                    who=ann, shipping=Decimal("4.99")),
                              created_at=placed, updated_at=placed))
        if month % 3 == 0:
            orders.append(replace(order(f"B{month}", line("1", "120.00"), who=bob,
                                        shipping=Decimal(8)), created_at=placed,
                                  updated_at=placed))
    placed = now - timedelta(days=40)
    orders += [
        replace(order("C1", line("1", "33.33", quantity=3), who=cat), created_at=placed,
                updated_at=placed),
        replace(order("C2", line("1", "250.00"), who=cat), created_at=placed,
                updated_at=placed, refunds=(refund("r1", ("1", 1, "100.00"), order_id="C2"),)),
        replace(order("C3", line("1", "80.00"), who=cat, cancelled=True), created_at=placed,
                updated_at=placed),
        replace(order("C4", line("1", "500.00"), who=cat, test=True), created_at=placed,
                updated_at=placed),
        replace(order("C5", line("1", "70.00"), who=cat, fulfilled=True), created_at=placed,
                updated_at=placed),
        replace(order("G1", line("1", "19.99"), who=guest), created_at=placed,
                updated_at=placed),
        replace(order("OLD", line("1", "999.00"), who=ann), created_at=now - timedelta(days=400),
                updated_at=now - timedelta(days=400)),
    ]
    return orders


def feed(app: Flask, shop: str, orders: list[Order], now: Any) -> None:
    merchant_id = merchant_named(app, shop).id
    for one in orders:
        with unit_of_work(database(app)) as session:
            sync_order(session, merchant_id, one, now=one.created_at if one.created_at < now
                       else now)


def seed(app: Flask, shop: str = SHOP, *, tiers: bool = True) -> int:
    merchant_id = merchant_named(app, shop).id
    with unit_of_work(database(app)) as session:
        session.add(ProgramSettings(merchant_id=merchant_id))
        if tiers:
            session.add(Tier(merchant_id=merchant_id, name="Silver", threshold=Decimal(300)))
    feed(app, shop, history(utcnow()), utcnow())
    return merchant_id


def preview_of(app: Flask, merchant_id: int, *, earning: dict[str, str] | None = None,
               ladder: dict[str, str] | None = None) -> ProgramPreview:
    with unit_of_work(database(app)) as session:
        program = proposed_program(session, merchant_id,
                                   parse_earning(earning) if earning else None,
                                   parse_ladder(ladder) if ladder else None)
        found = preview_program(session, program, utcnow(), tiers_changed=ladder is not None)
        session.rollback()
        return found


def recomputed(app: Flask, merchant_id: int, *, tiers: bool = False) -> ProgramPreview:
    """The same figures for the saved program, as it is after saving."""
    with unit_of_work(database(app)) as session:
        return preview_program(session, load_program(session, merchant_id), utcnow(),
                               tiers_changed=tiers)


def snapshot_of_everything(app: Flask) -> dict[str, list[tuple[Any, ...]]]:
    with unit_of_work(database(app)) as session:
        return {model.__tablename__: sorted(
            tuple(str(value) for value in row) for row in session.execute(
                select(*[column for column in model.__table__.columns
                         if column.name != "updated_at"])).all())
            for model in (Member, LedgerEntry, Tier, TierChange, ProgramSettings, OrderRow)}


def form_for(client: FlaskClient, fields: dict[str, str]) -> dict[str, str]:
    return {"csrf_token": csrf_token(client), **fields}


def shown(page: str, name: str) -> int:
    found = re.search(rf'data-{name}>([^<]+)<', page)
    assert found is not None, name
    return int(found.group(1).replace(",", "").replace("+", ""))


def test_an_earning_preview_writes_nothing_and_equals_save_then_recompute(app: Flask) -> None:
    merchant_id = seed(app)
    client = signed_in_client(app, SHOP)
    before = snapshot_of_everything(app)
    answer = client.post("/admin/program/earning", data=form_for(client, {**EARNING,
                                                                         "mode": "preview"}))
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    assert snapshot_of_everything(app) == before  # a preview writes nothing
    preview = preview_of(app, merchant_id, earning=EARNING)
    assert (shown(page, "issued"), shown(page, "proposed")) == (preview.issued,
                                                                  preview.proposed)
    assert 'id="chart-preview-title"' in page
    # Only the 12 months count: 12 + 4 + 6 orders, not the one 400 days old.
    assert preview.orders == 22 and len(preview.months) in (12, 13)
    assert preview.issued == recomputed(app, merchant_id).issued
    assert preview.proposed != preview.issued
    # Save, then recompute: the saved program gives exactly the previewed figures.
    saved = client.post("/admin/program/earning", data=form_for(client, {**EARNING,
                                                                        "mode": "save"}))
    assert saved.status_code == 200
    again = recomputed(app, merchant_id)
    assert (again.proposed, again.months) == (preview.proposed, preview.months)
    # And the same orders, replayed through the real pipeline for a shop that has the saved
    # rules from the start, earn exactly the previewed points.
    other = merchant_named(app, OTHER_SHOP).id
    with unit_of_work(database(app)) as session:
        session.add(ProgramSettings(merchant_id=other, points_per_unit=Decimal(2),
                                    rounding="up", include_shipping=True))
        session.add(Tier(merchant_id=other, name="Silver", threshold=Decimal(300)))
    feed(app, OTHER_SHOP, history(utcnow()), utcnow())
    replayed = recomputed(app, other)
    assert replayed.issued == preview.proposed
    assert [month.issued for month in replayed.months] == [
        month.proposed for month in preview.months]


def test_a_tier_preview_equals_the_moves_the_reevaluation_makes(app: Flask) -> None:
    merchant_id = seed(app)
    with unit_of_work(database(app)) as session:
        silver = session.execute(select(Tier).where(Tier.merchant_id == merchant_id)).scalar_one()
        silver_id = silver.id
        tiers_before = Counter(session.execute(
            select(Member.tier_id).where(Member.merchant_id == merchant_id)).scalars())
        changes_before = len(session.execute(select(TierChange)).all())
        welcomes_before = len(session.execute(select(LedgerEntry).where(
            LedgerEntry.source_kind == "tier_reward")).all())
    assert tiers_before[silver_id] >= 1  # someone is in Silver today
    ladder = {"tier_basis": "points_earned", "tier_window": "rolling_12_months",
              "tiers-0-id": "", "tiers-0-name": "Bronze", "tiers-0-threshold": "10",
              "tiers-0-entry_reward": "25",
              "tiers-1-id": str(silver_id), "tiers-1-name": "Silver", "tiers-1-threshold": "700",
              "tiers-1-multiplier": "1.25",
              "tiers-2-id": "", "tiers-2-name": "Gold", "tiers-2-threshold": "1500",
              "tiers-2-multiplier": "2", "tiers-2-entry_reward": "100"}
    client = signed_in_client(app, SHOP)
    before = snapshot_of_everything(app)
    answer = client.post("/admin/program/tiers", data=form_for(client, {**ladder,
                                                                       "mode": "preview"}))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert snapshot_of_everything(app) == before
    preview = preview_of(app, merchant_id, ladder=ladder)
    assert preview.moves, "the new ladder moves someone"
    assert shown(answer.get_data(as_text=True), "moving") == preview.members_moving
    # Save: the re-evaluation job runs after the commit (eager jobs in tests).
    saved = client.post("/admin/program/tiers", data=form_for(client, {**ladder,
                                                                      "mode": "save"}))
    assert saved.status_code == 200
    with unit_of_work(database(app)) as session:
        names = {tier.id: tier.name for tier in session.execute(select(Tier)).scalars()}
        made = session.execute(select(TierChange).order_by(TierChange.id)).scalars().all()
        made = [change for change in made[changes_before:]]
        assert {change.reason for change in made} == {"tiers changed"}
        moves = Counter((names.get(change.from_tier_id), names.get(change.to_tier_id))
                        for change in made)
        after = Counter(names.get(tier_id) for tier_id in session.execute(
            select(Member.tier_id).where(Member.merchant_id == merchant_id)).scalars())
        welcomes = session.execute(select(LedgerEntry.points).where(
            LedgerEntry.source_kind == "tier_reward")).scalars().all()[welcomes_before:]
    assert moves == Counter({(move.from_tier, move.to_tier): move.members
                             for move in preview.moves})
    assert after == Counter({name: count for name, count in preview.members_after if count})
    # The welcome points the preview announced are exactly those the job paid.
    assert preview.entry_rewards > 0 and sum(welcomes) == preview.entry_rewards
    assert preview.proposed == preview.issued + preview.entry_rewards
    # Recomputed under the saved ladder: nobody left to move, nothing more to pay.
    again = recomputed(app, merchant_id, tiers=True)
    assert again.moves == () and again.entry_rewards == 0
    assert again.issued == preview.issued == again.proposed
    assert again.members_after == preview.members_after


def test_the_reevaluation_job_is_safe_to_run_twice(app: Flask) -> None:
    merchant_id = seed(app)
    with unit_of_work(database(app)) as session:
        session.add(Tier(merchant_id=merchant_id, name="Gold", threshold=Decimal(600)))
    jobs = app.extensions["loyalty"].jobs
    assert jobs.run("reevaluate_tiers", merchant_id) == 4  # ann, bob, cat and the guest
    with unit_of_work(database(app)) as session:
        first = session.execute(select(TierChange.id)).scalars().all()
        gold = session.execute(select(Tier.id).where(Tier.name == "Gold")).scalar_one()
        assert session.execute(select(Member.id).where(Member.tier_id == gold)).all()
        ledger = session.execute(select(LedgerEntry.id)).scalars().all()
    jobs.run("reevaluate_tiers", merchant_id)
    with unit_of_work(database(app)) as session:
        assert session.execute(select(TierChange.id)).scalars().all() == first
        assert session.execute(select(LedgerEntry.id)).scalars().all() == ledger


def test_a_preview_of_removing_every_tier_moves_members_out(app: Flask) -> None:
    merchant_id = seed(app)
    with unit_of_work(database(app)) as session:
        silver_id = session.execute(select(Tier.id)).scalar_one()
    preview = preview_of(app, merchant_id, ladder={
        "tier_basis": "points_earned", "tier_window": "lifetime",
        "tiers-0-id": str(silver_id), "tiers-0-name": "Silver", "tiers-0-threshold": "300",
        "tiers-0-remove": "on"})
    assert preview.moves and all(move.to_tier is None and not move.upward
                                 for move in preview.moves)
    assert preview.members_after == ((None, 4),)
    assert preview.moves == (TierMove("Silver", None, preview.members_moving, upward=False),)


def test_an_earning_preview_of_the_saved_rules_changes_nothing(app: Flask) -> None:
    merchant_id = seed(app)
    with unit_of_work(database(app)) as session:
        session.execute(update(Tier).values(multiplier=Decimal(2)))  # multipliers in play
    feed(app, SHOP, [replace(order("LATE", line("1", "77.70"), who=customer("c-ann",
                                                                              "ann@example.com")),
                             created_at=utcnow(), updated_at=utcnow())], utcnow())
    same = preview_of(app, merchant_id, earning={"points_per_unit": "1", "rounding": "down",
                                                 "award_on": "payment", "pending_days": "0"})
    assert same.proposed == same.issued and same.moves == ()


def test_earning_previews_keep_the_multiplier_each_order_was_awarded_with(app: Flask) -> None:
    """One order of 100.00 awarded in Gold (multiplier 2): 200 points. Doubling the rate
    previews 400, whatever tier the member is in today."""
    merchant_id = merchant_named(app, SHOP).id
    with unit_of_work(database(app)) as session:
        session.add(ProgramSettings(merchant_id=merchant_id))
        gold = Tier(merchant_id=merchant_id, name="Gold", threshold=Decimal(0),
                    multiplier=Decimal(2))
        session.add(gold)
        session.flush()
        session.add(Member(merchant_id=merchant_id, customer_id="c1",
                           email="shopper@example.com", tier_id=gold.id))
    placed = utcnow() - timedelta(days=10)
    feed(app, SHOP, [replace(order("X1", line("1", "100.00"), shipping=Decimal(5)),
                             created_at=placed, updated_at=placed)], utcnow())
    with unit_of_work(database(app)) as session:
        session.execute(update(Tier).values(multiplier=Decimal(1)))
    preview = preview_of(app, merchant_id, earning={**EARNING, "include_shipping": ""})
    assert (preview.issued, preview.proposed) == (200, 400)
    assert preview.moves == () and not preview.tiers_changed


def test_a_ladder_preview_counts_each_welcome_once(app: Flask) -> None:
    """A new Bronze tier with 100 welcome points: every member who climbs into it is paid
    once; a member already paid for a tier is not paid again."""
    merchant_id = seed(app, tiers=False)
    preview = preview_of(app, merchant_id, ladder={
        "tier_basis": "points_earned", "tier_window": "lifetime",
        "tiers-0-name": "Bronze", "tiers-0-threshold": "1", "tiers-0-entry_reward": "100"})
    climbing = sum(move.members for move in preview.moves if move.upward)
    assert climbing == 4 and preview.entry_rewards == 400
    assert preview.moves == (TierMove(None, "Bronze", 4, upward=True),)


def test_a_multiplier_preview_equals_a_replay_under_the_saved_rules(app: Flask) -> None:
    """Double points on product p1 (every line of the history): the preview equals what the
    same orders earn when replayed for a shop whose saved rules include that multiplier."""
    merchant_id = seed(app, tiers=False)
    change = {"points_per_unit": "1", "rounding": "down", "award_on": "payment",
              "pending_days": "0", "multipliers_shown": "1",
              "multipliers-0-target": "product", "multipliers-0-target_id": "p1",
              "multipliers-0-factor": "2"}
    preview = preview_of(app, merchant_id, earning=change)
    assert preview.proposed > preview.issued
    client = signed_in_client(app, SHOP)
    saved = client.post("/admin/program/earning", data=form_for(client, {**change,
                                                                        "mode": "save"}))
    assert saved.status_code == 200
    assert recomputed(app, merchant_id).proposed == preview.proposed
    other = merchant_named(app, OTHER_SHOP).id
    with unit_of_work(database(app)) as session:
        session.add(ProgramSettings(merchant_id=other))
        session.add(EarningRule(merchant_id=other, target="product", target_id="p1",
                                factor=Decimal(2)))
    feed(app, OTHER_SHOP, history(utcnow()), utcnow())
    assert recomputed(app, other).issued == preview.proposed
