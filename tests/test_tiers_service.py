"""Tiers at the service layer: moving up as orders are awarded, entry rewards once per tier,
the tier multiplier on the next order, retention thresholds, history, basis and window."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from integrations.base import Order
from plugin_server.db import Database, unit_of_work
from plugin_server.loyalty.audit import ledger_differences
from plugin_server.loyalty.orders import OrderOutcome, sync_order
from plugin_server.models import LedgerEntry, Member, Tier, TierChange
from plugin_server.runtime import Runtime
from tests.support.builders import T0, line, order, refund, with_refunds
from tests.support.program import set_program

LADDER = (
    # name, threshold, retention, multiplier, entry reward
    ("Bronze", "0", None, "1", 0),
    ("Silver", "300", "250", "1.25", 50),
    ("Gold", "800", "700", "1.5", 150),
)


def make_tiers(database: Database, merchant_id: int,
               ladder: tuple[tuple[str, str, str | None, str, int], ...] = LADDER,
               **settings: Any) -> dict[str, int]:
    with unit_of_work(database) as session:
        set_program(session, merchant_id, **settings)
        ids = {}
        for name, threshold, retention, multiplier, reward in ladder:
            tier = Tier(merchant_id=merchant_id, name=name, threshold=Decimal(threshold),
                        retention_threshold=None if retention is None else Decimal(retention),
                        multiplier=Decimal(multiplier), entry_reward_points=reward)
            session.add(tier)
            session.flush()
            ids[name] = tier.id
        return ids


def sync(database: Database, merchant_id: int, placed: Order, **kwargs: Any) -> OrderOutcome:
    with unit_of_work(database) as session:
        return sync_order(session, merchant_id, placed, **kwargs)


def member(database: Database) -> tuple[int | None, Decimal, int]:
    """(tier id, tier progress, balance) of the only member."""
    with unit_of_work(database) as session:
        row = session.execute(select(Member)).scalar_one()
        assert ledger_differences(session) == []
        return row.tier_id, row.tier_progress, row.balance


def history(database: Database) -> list[tuple[int | None, int | None, Decimal]]:
    with unit_of_work(database) as session:
        rows = session.execute(
            select(TierChange.from_tier_id, TierChange.to_tier_id, TierChange.progress)
            .order_by(TierChange.id)).all()
        return [(a, b, c) for a, b, c in rows]


def tier_rewards(database: Database) -> list[tuple[str, int]]:
    with unit_of_work(database) as session:
        rows = session.execute(
            select(LedgerEntry.source_id, LedgerEntry.points)
            .where(LedgerEntry.kind == "tier_reward").order_by(LedgerEntry.id)).all()
        return [(source, points) for source, points in rows]


def test_points_earned_ladder(runtime: Runtime, merchant_id: int) -> None:
    db = runtime.database
    tiers = make_tiers(db, merchant_id)
    bronze, silver, gold = tiers["Bronze"], tiers["Silver"], tiers["Gold"]

    o1 = order("1", line("1", "100.00"))
    assert sync(db, merchant_id, o1).awarded == 100
    assert member(db) == (bronze, Decimal(100), 100)

    # Crossing 300 moves to Silver; that order itself still earns at Bronze's x1.
    o2 = order("2", line("1", "150.00"), line("2", "100.00"))
    assert sync(db, merchant_id, o2).awarded == 250
    assert member(db) == (silver, Decimal(350), 100 + 250 + 50)

    # The next order earns at Silver's x1.25.
    o3 = order("3", line("1", "100.00"))
    assert sync(db, merchant_id, o3).awarded == 125
    assert member(db) == (silver, Decimal(475), 525)

    # Its refund uses the x1.25 of its award: 40 of 100 back -> 75 kept, 50 reversed.
    o3r = with_refunds(o3, refund("r3", ("1", 1, "40.00"), order_id="3"))
    assert sync(db, merchant_id, o3r).reversed == 50
    assert member(db) == (silver, Decimal(425), 475)

    # Cancel order 3 and refund part of order 2: progress 270 is above Silver's retention.
    assert sync(db, merchant_id, replace(with_refunds(o3r), cancelled=True)).reversed == 75
    o2r = with_refunds(o2, refund("r2a", ("2", 1, "80.00"), order_id="2"))
    assert sync(db, merchant_id, o2r).reversed == 80
    assert member(db) == (silver, Decimal(270), 320)

    # 30 more back: 240 is below 250, the member drops to Bronze (the reward is not taken back).
    o2r2 = with_refunds(o2r, refund("r2b", ("2", 1, "20.00"), order_id="2"))
    o2r2 = with_refunds(o2r2, refund("r2c", ("1", 1, "10.00"), order_id="2"))
    assert sync(db, merchant_id, o2r2).reversed == 30
    assert member(db) == (bronze, Decimal(240), 290)

    # Back over 300: Silver again, no second entry reward; the order earns at Bronze's rate.
    assert sync(db, merchant_id, order("4", line("1", "70.00"))).awarded == 70
    assert member(db) == (silver, Decimal(310), 360)
    assert tier_rewards(db) == [(f"{_member_id(db)}:{silver}", 50)]

    # Straight on to Gold (x1.25 applies now): 400 * 1.25 = 500 -> 810.
    assert sync(db, merchant_id, order("5", line("1", "400.00"))).awarded == 500
    assert member(db) == (gold, Decimal(810), 360 + 500 + 150)
    assert sync(db, merchant_id, order("6", line("1", "10.00"))).awarded == 15  # x1.5
    assert tier_rewards(db) == [(f"{_member_id(db)}:{silver}", 50),
                                (f"{_member_id(db)}:{gold}", 150)]

    assert history(db) == [
        (None, bronze, Decimal(100)),
        (bronze, silver, Decimal(350)),
        (silver, bronze, Decimal(240)),
        (bronze, silver, Decimal(310)),
        (silver, gold, Decimal(810)),
    ]


def _member_id(database: Database) -> int:
    with unit_of_work(database) as session:
        return session.execute(select(Member.id)).scalar_one()


def test_gold_keeps_above_retention_then_falls_to_silver(runtime: Runtime,
                                                         merchant_id: int) -> None:
    db = runtime.database
    tiers = make_tiers(db, merchant_id)
    big = order("1", line("1", "500.00"), line("2", "350.00"))
    sync(db, merchant_id, big)
    assert member(db)[:2] == (tiers["Gold"], Decimal(850))
    # 850 -> 720: still Gold (retention 700).
    first = with_refunds(big, refund("r1", ("2", 1, "130.00"), order_id="1"))
    sync(db, merchant_id, first)
    assert member(db)[:2] == (tiers["Gold"], Decimal(720))
    # 720 -> 650: below Gold's retention, Silver's retention still met.
    second = with_refunds(first, refund("r2", ("2", 1, "70.00"), order_id="1"))
    sync(db, merchant_id, second)
    assert member(db)[:2] == (tiers["Silver"], Decimal(650))
    # Entering Gold directly from nothing granted Gold's reward only once; no Silver
    # reward on the way down.
    assert [points for _, points in tier_rewards(db)] == [150]
    assert [(a, b) for a, b, _ in history(db)] == [
        (None, tiers["Gold"]), (tiers["Gold"], tiers["Silver"])]
    # Re-entering Gold pays nothing more.
    sync(db, merchant_id, order("2", line("1", "200.00")))
    assert member(db)[0] == tiers["Gold"]
    assert [points for _, points in tier_rewards(db)] == [150]


def test_amount_spent_basis(any_runtime: Runtime, any_merchant_id: int) -> None:
    """Also on PostgreSQL: the amount is summed in SQL from scaled integer columns."""
    db, merchant_id = any_runtime.database, any_merchant_id
    tiers = make_tiers(db, merchant_id, tier_basis="amount_spent",
                       points_per_unit=Decimal("0.1"))
    o1 = order("1", line("1", "200.00"))
    assert sync(db, merchant_id, o1).awarded == 20
    assert member(db)[:2] == (tiers["Bronze"], Decimal(200))
    o2 = order("2", line("1", "120.00"), line("2", "30.50"))
    sync(db, merchant_id, o2)
    assert member(db)[:2] == (tiers["Silver"], Decimal("350.50"))
    # Refunding money lowers the amount spent: 350.50 - 120 = 230.50 < 250.
    sync(db, merchant_id, with_refunds(o2, refund("r1", ("1", 1, "120.00"), order_id="2")))
    assert member(db)[:2] == (tiers["Bronze"], Decimal("230.50"))


def test_orders_basis_counts_orders_not_fully_refunded(runtime: Runtime,
                                                       merchant_id: int) -> None:
    db = runtime.database
    ladder = (("Member", "0", None, "1", 0), ("Regular", "3", "2", "2", 10),
              ("VIP", "5", None, "3", 20))
    tiers = make_tiers(db, merchant_id, ladder, tier_basis="orders")
    for number in ("1", "2"):
        sync(db, merchant_id, order(number, line("1", "10.00")))
    assert member(db)[:2] == (tiers["Member"], Decimal(2))
    third = order("3", line("1", "10.00"))
    sync(db, merchant_id, third)
    assert member(db) == (tiers["Regular"], Decimal(3), 30 + 10)
    assert sync(db, merchant_id, order("4", line("1", "10.00"))).awarded == 20  # x2
    # A partial refund keeps the order counted; a full refund or a cancel does not.
    sync(db, merchant_id, with_refunds(third, refund("r1", amount="4.00", order_id="3")))
    assert member(db)[1] == Decimal(4)
    sync(db, merchant_id, with_refunds(third, refund("r2", amount="6.00", order_id="3")))
    assert member(db)[:2] == (tiers["Regular"], Decimal(3))
    sync(db, merchant_id, replace(order("4", line("1", "10.00")), cancelled=True,
                                  updated_at=T0 + timedelta(days=1)))
    assert member(db)[:2] == (tiers["Regular"], Decimal(2))  # retention 2 keeps Regular
    sync(db, merchant_id, replace(order("1", line("1", "10.00")), cancelled=True,
                                  updated_at=T0 + timedelta(days=1)))
    assert member(db)[:2] == (tiers["Member"], Decimal(1))


@pytest.mark.parametrize(("window", "expected_progress", "expected_tier"), [
    ("lifetime", Decimal(425), "Silver"),  # 150 + 150, then x1.25 on 100
    ("calendar_year", Decimal(100), "Bronze"),
    ("rolling_12_months", Decimal(250), "Bronze"),
])
def test_tier_windows_exclude_old_orders(runtime: Runtime, merchant_id: int, window: str,
                                         expected_progress: Decimal, expected_tier: str) -> None:
    db = runtime.database
    tiers = make_tiers(db, merchant_id, tier_window=window)
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)

    def placed(number: str, amount: str, when: datetime) -> Order:
        return order(number, line("1", amount), created_at=when, updated=when)

    # Placed 14 months ago: only lifetime counts it.
    sync(db, merchant_id, placed("1", "150.00", datetime(2025, 1, 1, tzinfo=UTC)), now=now)
    # Placed last year, 9 months ago: lifetime and rolling 12 months count it.
    sync(db, merchant_id, placed("2", "150.00", datetime(2025, 6, 1, tzinfo=UTC)), now=now)
    # Placed this year.
    sync(db, merchant_id, placed("3", "100.00", datetime(2026, 2, 1, tzinfo=UTC)), now=now)
    tier_id, progress, _ = member(db)
    assert (tier_id, progress) == (tiers[expected_tier], expected_progress)


def test_rolling_window_moves_with_now(runtime: Runtime, merchant_id: int) -> None:
    db = runtime.database
    tiers = make_tiers(db, merchant_id, tier_window="rolling_12_months")
    old = datetime(2025, 1, 10, tzinfo=UTC)
    sync(db, merchant_id, order("1", line("1", "280.00"), created_at=old, updated=old),
         now=old)
    assert member(db)[:2] == (tiers["Bronze"], Decimal(280))
    # Eleven months later a small order takes the member over 300.
    later = datetime(2025, 12, 10, tzinfo=UTC)
    sync(db, merchant_id, order("2", line("1", "30.00"), created_at=later, updated=later),
         now=later)
    assert member(db)[:2] == (tiers["Silver"], Decimal(310))
    # Fourteen months after the first order, it no longer counts: 30 + 10 < 250.
    latest = datetime(2026, 3, 10, tzinfo=UTC)
    sync(db, merchant_id, order("3", line("1", "8.00"), created_at=latest, updated=latest),
         now=latest)
    assert member(db)[:2] == (tiers["Bronze"], Decimal(40))  # 30 + 8 * 1.25 = 40
