"""Pending points (pending_days > 0): awards wait, refunds inside the window come out of
pending, the release happens once, and later refunds come out of the available balance."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from integrations.base import IssuedCode
from plugin_server.db import Database, unit_of_work
from plugin_server.jobs import sweep
from plugin_server.loyalty.audit import ledger_differences
from plugin_server.loyalty.errors import InsufficientPoints
from plugin_server.loyalty.orders import OrderOutcome, release_due_points, sync_order
from plugin_server.loyalty.rewards import confirm_redemption, hold_redemption
from plugin_server.models import LedgerEntry, Member, Reward, utcnow
from plugin_server.models import Order as OrderRow
from plugin_server.runtime import Runtime
from tests.support.builders import T0, line, order, refund, with_refunds
from tests.support.program import set_program

DAY = timedelta(days=1)


@pytest.fixture
def pending_merchant(runtime: Runtime, merchant_id: int) -> int:
    with unit_of_work(runtime.database) as session:
        set_program(session, merchant_id, pending_days=14)
    return merchant_id


def sync(database: Database, merchant_id: int, placed: Any, **kwargs: Any) -> OrderOutcome:
    with unit_of_work(database) as session:
        return sync_order(session, merchant_id, placed, **kwargs)


def release(database: Database, merchant_id: int, now: Any) -> int:
    with unit_of_work(database) as session:
        return release_due_points(session, merchant_id, now=now)


def state(database: Database) -> tuple[int, int]:
    with unit_of_work(database) as session:
        member = session.execute(select(Member)).scalar_one()
        assert ledger_differences(session) == []
        return member.balance, member.pending


def kinds(database: Database) -> list[tuple[str, int, int]]:
    with unit_of_work(database) as session:
        rows = session.execute(
            select(LedgerEntry.kind, LedgerEntry.points, LedgerEntry.pending_points)
            .order_by(LedgerEntry.id)).all()
        return [(kind, points, pending) for kind, points, pending in rows]


def test_award_goes_to_pending(runtime: Runtime, pending_merchant: int) -> None:
    db = runtime.database
    outcome = sync(db, pending_merchant, order("1001", line("1", "100.00")), now=T0)
    assert outcome.awarded == 100
    assert state(db) == (0, 100)
    with unit_of_work(db) as session:
        row = session.execute(select(OrderRow)).scalar_one()
        assert row.pending_until == T0 + 14 * DAY
        assert row.released_at is None
        assert row.points_are_pending
    assert kinds(db) == [("award", 0, 100)]


def test_refund_inside_window_reverses_from_pending_then_release_once(
        runtime: Runtime, pending_merchant: int) -> None:
    db = runtime.database
    placed = order("1001", line("1", "60.00"), line("2", "40.00"))
    sync(db, pending_merchant, placed, now=T0)
    partial = with_refunds(placed, refund("r1", ("2", 1, "40.00"), at=T0 + 3 * DAY))
    assert sync(db, pending_merchant, partial, now=T0 + 3 * DAY).reversed == 40
    assert state(db) == (0, 60)

    assert release(db, pending_merchant, T0 + 13 * DAY) == 0  # not due yet
    assert state(db) == (0, 60)
    assert release(db, pending_merchant, T0 + 15 * DAY) == 60
    assert state(db) == (60, 0)
    assert release(db, pending_merchant, T0 + 16 * DAY) == 0  # exactly once
    assert release(db, pending_merchant, T0 + 400 * DAY) == 0
    assert state(db) == (60, 0)
    assert kinds(db) == [("award", 0, 100), ("reversal", 0, -40), ("release", 60, -60)]
    with unit_of_work(db) as session:
        row = session.execute(select(OrderRow)).scalar_one()
        assert row.released_at == T0 + 15 * DAY
        assert not row.points_are_pending


def test_release_is_due_exactly_at_the_end_of_the_window(runtime: Runtime,
                                                         pending_merchant: int) -> None:
    db = runtime.database
    sync(db, pending_merchant, order("1001", line("1", "10.00")), now=T0)
    assert release(db, pending_merchant, T0 + 14 * DAY - timedelta(seconds=1)) == 0
    assert release(db, pending_merchant, T0 + 14 * DAY) == 10


def test_cancel_inside_window_leaves_nothing_to_release(runtime: Runtime,
                                                        pending_merchant: int) -> None:
    db = runtime.database
    placed = order("1001", line("1", "50.00"))
    sync(db, pending_merchant, placed, now=T0)
    cancelled = replace(placed, cancelled=True, updated_at=T0 + DAY)
    assert sync(db, pending_merchant, cancelled, now=T0 + DAY).reversed == 50
    assert state(db) == (0, 0)
    assert release(db, pending_merchant, T0 + 15 * DAY) == 0
    assert state(db) == (0, 0)
    assert kinds(db) == [("award", 0, 50), ("cancellation", 0, -50)]


def test_refund_after_release_comes_out_of_the_balance_and_may_go_negative(
        runtime: Runtime, pending_merchant: int) -> None:
    db = runtime.database
    placed = order("1001", line("1", "100.00"))
    sync(db, pending_merchant, placed, now=T0)
    assert release(db, pending_merchant, T0 + 15 * DAY) == 100
    assert state(db) == (100, 0)

    # The shopper spends 80 of the released points.
    with unit_of_work(db) as session:
        reward = Reward(merchant_id=pending_merchant, name="$8 off", kind="fixed_amount",
                        points_cost=80, value=Decimal(8))
        session.add(reward)
        session.flush()
        reward_id = reward.id
        member_id = session.execute(select(Member.id)).scalar_one()
        held = hold_redemption(session, pending_merchant, member_id, reward_id,
                               now=T0 + 16 * DAY)
        confirm_redemption(session, pending_merchant, held.id, IssuedCode("LOY-TESTCODE00001"))
    assert state(db) == (20, 0)
    # A redemption can never overdraw.
    with pytest.raises(InsufficientPoints), unit_of_work(db) as session:
        hold_redemption(session, pending_merchant, member_id, reward_id, now=T0 + 17 * DAY)
    assert state(db) == (20, 0)

    # The whole order is refunded after the release: the reversal takes the balance negative.
    refunded = with_refunds(placed, refund("r1", ("1", 1, "100.00"), at=T0 + 20 * DAY),
                            later=20 * DAY)
    assert sync(db, pending_merchant, refunded, now=T0 + 20 * DAY).reversed == 100
    assert state(db) == (-80, 0)
    assert kinds(db) == [("award", 0, 100), ("release", 100, -100), ("redemption", -80, 0),
                         ("reversal", -100, 0)]
    # Only the reversal ever took the running balance below zero.
    running = 0
    for kind, points, _pending in kinds(db):
        running += points
        if running < 0:
            assert kind == "reversal"
    # Nothing is left to release, now or later.
    assert release(db, pending_merchant, T0 + 60 * DAY) == 0
    assert state(db) == (-80, 0)


def test_several_orders_release_independently(runtime: Runtime, pending_merchant: int) -> None:
    db = runtime.database
    sync(db, pending_merchant, order("1001", line("1", "10.00")), now=T0)
    sync(db, pending_merchant, order("1002", line("1", "20.00")), now=T0 + 5 * DAY)
    assert state(db) == (0, 30)
    assert release(db, pending_merchant, T0 + 15 * DAY) == 10
    assert state(db) == (10, 20)
    assert release(db, pending_merchant, T0 + 19 * DAY) == 20
    assert release(db, pending_merchant, T0 + 19 * DAY) == 0
    assert state(db) == (30, 0)


def test_sweep_job_releases_due_points(runtime: Runtime, pending_merchant: int) -> None:
    db = runtime.database
    now = utcnow()
    sync(db, pending_merchant, order("1001", line("1", "70.00")), now=now - 15 * DAY)
    sync(db, pending_merchant, order("1002", line("1", "5.00")), now=now - 2 * DAY)
    assert state(db) == (0, 75)
    report = sweep(runtime)
    assert report.released_points == 70
    assert report.voided_holds == 0
    assert state(db) == (70, 5)
    assert runtime.jobs.run("sweep").released_points == 0  # through the job registry
    assert state(db) == (70, 5)
