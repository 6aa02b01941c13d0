"""sync_order at the service layer: when points are awarded, how refunds and cancels reverse
them (from the award snapshot), multipliers, guests, rounding and tenant isolation."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from integrations.base import Customer
from plugin_server.db import Database, unit_of_work
from plugin_server.loyalty.audit import ledger_differences
from plugin_server.loyalty.orders import OrderOutcome, sync_order
from plugin_server.models import EarningRule, LedgerEntry, Member, OrderRefund
from plugin_server.models import Order as OrderRow
from plugin_server.runtime import Runtime
from tests.conftest import seed_merchant
from tests.support.builders import T0, customer, line, order, refund, with_refunds
from tests.support.program import add_multipliers, configure


def sync(database: Database, merchant_id: int, placed: Any, **kwargs: Any) -> OrderOutcome:
    with unit_of_work(database) as session:
        return sync_order(session, merchant_id, placed, **kwargs)


def member_state(database: Database, merchant_id: int,
                 customer_id: str = "c1") -> tuple[int, int]:
    with unit_of_work(database) as session:
        member = session.execute(
            select(Member).where(Member.merchant_id == merchant_id,
                                 Member.customer_id == customer_id)
        ).scalar_one()
        return member.balance, member.pending


def order_row(session: Session, merchant_id: int, order_id: str) -> OrderRow:
    return session.execute(
        select(OrderRow).where(OrderRow.merchant_id == merchant_id,
                               OrderRow.platform_order_id == order_id)
    ).scalar_one()


def entries(database: Database, merchant_id: int) -> list[tuple[str, int, int]]:
    with unit_of_work(database) as session:
        rows = session.execute(
            select(LedgerEntry.kind, LedgerEntry.points, LedgerEntry.pending_points)
            .where(LedgerEntry.merchant_id == merchant_id).order_by(LedgerEntry.id)
        ).all()
        return [(kind, points, pending) for kind, points, pending in rows]


def assert_ledger_consistent(database: Database) -> None:
    with unit_of_work(database) as session:
        assert ledger_differences(session) == []


# --- When points are awarded --------------------------------------------------------------


def test_award_on_payment_is_the_default(runtime: Runtime, merchant_id: int) -> None:
    db = runtime.database
    unpaid = order("1001", line("1", "42.00"), paid=False)
    outcome = sync(db, merchant_id, unpaid)
    assert (outcome.awarded, outcome.note) == (0, "waiting for payment")
    assert member_state(db, merchant_id) == (0, 0)

    paid = replace(unpaid, paid=True, updated_at=T0 + timedelta(hours=1))
    outcome = sync(db, merchant_id, paid)
    assert (outcome.awarded, outcome.note) == (42, "awarded")
    assert member_state(db, merchant_id) == (42, 0)
    # A duplicate delivery changes nothing.
    assert sync(db, merchant_id, paid).awarded == 0
    assert entries(db, merchant_id) == [("award", 42, 0)]
    assert_ledger_consistent(db)


def test_award_on_fulfilment_waits_for_fulfilment(runtime: Runtime, merchant_id: int) -> None:
    db = runtime.database
    configure(db, merchant_id, award_on="fulfilment")
    placed = order("1001", line("1", "30.00"), paid=True)
    outcome = sync(db, merchant_id, placed)
    assert (outcome.awarded, outcome.note) == (0, "waiting for fulfilment")
    assert member_state(db, merchant_id) == (0, 0)

    shipped = replace(placed, fulfilled=True, updated_at=T0 + timedelta(days=2))
    assert sync(db, merchant_id, shipped, now=T0 + timedelta(days=2)).awarded == 30
    assert member_state(db, merchant_id) == (30, 0)
    with unit_of_work(db) as session:
        row = order_row(session, merchant_id, "1001")
        assert row.awarded_at == T0 + timedelta(days=2)
        assert (row.paid, row.fulfilled) == (True, True)


def test_award_on_fulfilment_does_not_need_payment(runtime: Runtime, merchant_id: int) -> None:
    db = runtime.database
    configure(db, merchant_id, award_on="fulfilment")
    assert sync(db, merchant_id, order("1001", line("1", "12.00"), paid=False,
                                       fulfilled=True)).awarded == 12


def test_test_orders_earn_nothing_by_default(runtime: Runtime, merchant_id: int) -> None:
    db = runtime.database
    outcome = sync(db, merchant_id, order("1001", line("1", "50.00"), test=True))
    assert (outcome.awarded, outcome.note) == (0, "test orders do not earn")
    assert entries(db, merchant_id) == []
    # A later copy that no longer says "test" does not launder it: facts stay true.
    later = order("1001", line("1", "50.00"), test=False, updated=T0 + timedelta(hours=1))
    assert sync(db, merchant_id, later).awarded == 0
    assert entries(db, merchant_id) == []


def test_test_orders_earn_when_the_merchant_opts_in(runtime: Runtime, merchant_id: int) -> None:
    db = runtime.database
    configure(db, merchant_id, award_test_orders=True)
    assert sync(db, merchant_id, order("1001", line("1", "50.00"), test=True)).awarded == 50
    assert member_state(db, merchant_id) == (50, 0)


# --- Snapshots and stale copies -------------------------------------------------------------


def test_reversal_uses_the_award_snapshot_not_todays_rate(runtime: Runtime,
                                                          merchant_id: int) -> None:
    db = runtime.database
    placed = order("1001", line("1", "60.00"), line("2", "40.00"))
    assert sync(db, merchant_id, placed).awarded == 100
    configure(db, merchant_id, points_per_unit=Decimal(5), rounding="up")

    partial = with_refunds(placed, refund("r1", ("2", 1, "40.00")))
    outcome = sync(db, merchant_id, partial)
    assert outcome.reversed == 40  # 40 at the old rate of 1, not 200 at today's 5
    cancelled = replace(with_refunds(partial), cancelled=True)
    assert sync(db, merchant_id, cancelled).reversed == 60
    assert member_state(db, merchant_id) == (0, 0)
    # A new order does use today's rate.
    assert sync(db, merchant_id, order("1002", line("1", "10.00"))).awarded == 50
    assert_ledger_consistent(db)


def test_stale_update_keeps_the_snapshot_but_its_facts_count(runtime: Runtime,
                                                             merchant_id: int) -> None:
    db = runtime.database
    newer = order("1001", line("1", "50.00"), paid=False, updated=T0 + timedelta(hours=2),
                  name="#1001-v2")
    assert sync(db, merchant_id, newer).awarded == 0
    # The platform's older copy arrives late; it says paid and had other lines.
    stale = order("1001", line("1", "30.00"), paid=True, updated=T0 + timedelta(hours=1),
                  name="#1001-v1")
    outcome = sync(db, merchant_id, stale)
    assert outcome.awarded == 50  # paid counts, the amounts come from the newer copy
    with unit_of_work(db) as session:
        row = order_row(session, merchant_id, "1001")
        assert row.paid is True
        assert row.name == "#1001-v2"
        assert row.platform_updated_at == T0 + timedelta(hours=2)
        assert row.subtotal == Decimal("50")
        snapshot = json.loads(row.snapshot)
        assert snapshot["updated_at"] == (T0 + timedelta(hours=2)).isoformat()
        assert snapshot["line_items"][0]["unit_price"] == "50.00"
        assert snapshot["paid"] is False  # the snapshot is the newer copy as delivered


def test_stale_copy_after_award_changes_nothing(runtime: Runtime, merchant_id: int) -> None:
    db = runtime.database
    current = order("1001", line("1", "50.00"), updated=T0 + timedelta(hours=2))
    assert sync(db, merchant_id, current).awarded == 50
    stale = order("1001", line("1", "80.00"), updated=T0 + timedelta(hours=1))
    outcome = sync(db, merchant_id, stale)
    assert (outcome.awarded, outcome.reversed) == (0, 0)
    with unit_of_work(db) as session:
        assert order_row(session, merchant_id, "1001").subtotal == Decimal("50")
    assert member_state(db, merchant_id) == (50, 0)


# --- Refunds and cancels ------------------------------------------------------------------


def test_refund_before_payment_is_reversed_once_paid(runtime: Runtime, merchant_id: int) -> None:
    db = runtime.database
    unpaid = order("1001", line("1", "30.00"), line("2", "20.00"), paid=False)
    refunded = with_refunds(unpaid, refund("r1", ("2", 1, "20.00")))
    outcome = sync(db, merchant_id, refunded)
    assert (outcome.awarded, outcome.reversed) == (0, 0)
    with unit_of_work(db) as session:
        row = order_row(session, merchant_id, "1001")
        stored = session.execute(
            select(OrderRefund).where(OrderRefund.order_id == row.id)).scalar_one()
        assert (stored.platform_refund_id, stored.applied) == ("r1", False)

    # The "paid" copy comes without the refund (deliveries out of order): it is remembered.
    paid = replace(unpaid, paid=True, updated_at=T0 + timedelta(days=2))
    outcome = sync(db, merchant_id, paid)
    assert (outcome.awarded, outcome.reversed) == (50, 20)
    assert member_state(db, merchant_id) == (30, 0)
    # Redelivering the refunded copy does not reverse again.
    assert sync(db, merchant_id, replace(refunded, paid=True)).reversed == 0
    assert entries(db, merchant_id) == [("award", 50, 0), ("reversal", -20, 0)]
    assert_ledger_consistent(db)


def test_cancel_before_payment_nets_nothing(runtime: Runtime, merchant_id: int) -> None:
    """The cancel arrives first; the payment (or a copy that forgot the cancel) afterwards.
    The award and its cancellation are then written together: the same history as when the
    deliveries come in time order, and the shopper never holds the points."""
    db = runtime.database
    cancelled = order("1001", line("1", "30.00"), paid=False, cancelled=True)
    assert sync(db, merchant_id, cancelled).note == "waiting for payment"
    assert entries(db, merchant_id) == []
    paid = order("1001", line("1", "30.00"), paid=True, updated=T0 + timedelta(hours=1))
    outcome = sync(db, merchant_id, paid)
    assert (outcome.awarded, outcome.reversed) == (30, 30)
    assert member_state(db, merchant_id) == (0, 0)
    with unit_of_work(db) as session:
        row = order_row(session, merchant_id, "1001")
        assert (row.cancelled, row.awarded_points, row.reversed_points) == (True, 30, 30)


def test_cancel_after_partial_refund_reverses_exactly_the_rest(runtime: Runtime,
                                                               merchant_id: int) -> None:
    db = runtime.database
    configure(db, merchant_id, points_per_unit=Decimal("1.5"))
    placed = order("1001", line("1", "23.33"), line("2", "10.00"))
    assert sync(db, merchant_id, placed).awarded == 49  # 33.33 * 1.5 = 49.995, rounded down
    partial = with_refunds(placed, refund("r1", ("2", 1, "10.00")))
    # The shopper keeps 23.33 * 1.5 = 34.995 -> 34 points, so 15 come back.
    assert sync(db, merchant_id, partial).reversed == 15
    cancelled = replace(with_refunds(partial), cancelled=True)
    outcome = sync(db, merchant_id, cancelled)
    assert outcome.reversed == 34
    assert entries(db, merchant_id) == [("award", 49, 0), ("reversal", -15, 0),
                                        ("cancellation", -34, 0)]
    # A refund of the remainder after the cancel takes nothing more.
    late = with_refunds(cancelled, refund("r2", ("1", 1, "23.33")))
    assert sync(db, merchant_id, late).reversed == 0
    assert member_state(db, merchant_id) == (0, 0)
    with unit_of_work(db) as session:
        row = order_row(session, merchant_id, "1001")
        assert (row.awarded_points, row.reversed_points) == (49, 49)
    assert_ledger_consistent(db)


def test_amount_only_refund_reverses_in_proportion(runtime: Runtime, merchant_id: int) -> None:
    db = runtime.database
    placed = order("1001", line("1", "100.00"))
    assert sync(db, merchant_id, placed).awarded == 100
    partial = with_refunds(placed, refund("r1", amount="25.00"))
    assert sync(db, merchant_id, partial).reversed == 25
    assert member_state(db, merchant_id) == (75, 0)


# --- Multipliers and rounding -------------------------------------------------------------


def test_product_and_collection_multipliers(runtime: Runtime, merchant_id: int) -> None:
    db = runtime.database
    with unit_of_work(db) as session:
        add_multipliers(session, merchant_id, ("product", "p2", 2), ("collection", "sale", 3),
                        ("collection", "new", "1.5"))
    placed = order(
        "1001",
        line("1", "10.00", product_id="p1"),                                    # x1   -> 10
        line("2", "10.00", product_id="p2", collections=("sale",)),             # product wins
        line("3", "10.00", product_id="p3", collections=("new", "sale")),       # largest: x3
        line("4", "10.00", product_id="p4", collections=("new",)),              # x1.5 -> 15
    )
    assert sync(db, merchant_id, placed).awarded == 10 + 20 + 30 + 15
    # The merchant drops the rules; the refund still uses the weights of the award.
    with unit_of_work(db) as session:
        for rule in session.execute(select(EarningRule)).scalars():
            session.delete(rule)
    partial = with_refunds(placed, refund("r1", ("3", 1, "10.00")))
    assert sync(db, merchant_id, partial).reversed == 30
    assert member_state(db, merchant_id) == (45, 0)
    # A new order earns at the plain rate now.
    assert sync(db, merchant_id, order("1002", line("1", "10.00", product_id="p2"))).awarded == 10


def test_multiplier_applies_per_line_after_discounts(runtime: Runtime, merchant_id: int) -> None:
    db = runtime.database
    with unit_of_work(db) as session:
        session.add(EarningRule(merchant_id=merchant_id, target="product", target_id="p2",
                                factor=Decimal(2)))
    placed = order("1001", line("1", "20.00", quantity=2, discount="5.00", product_id="p2"),
                   line("2", "9.99", product_id="p1"))
    # (40 - 5) * 2 + 9.99 = 79.99 -> 79
    assert sync(db, merchant_id, placed).awarded == 79


@pytest.mark.parametrize(("rounding", "amount", "expected"), [
    ("down", "10.50", 10), ("nearest", "10.50", 11), ("up", "10.50", 11),
    ("down", "10.49", 10), ("nearest", "10.49", 10), ("up", "10.01", 11),
    ("down", "10.00", 10), ("nearest", "10.00", 10), ("up", "10.00", 10),
])
def test_rounding_modes(runtime: Runtime, merchant_id: int, rounding: str, amount: str,
                        expected: int) -> None:
    db = runtime.database
    configure(db, merchant_id, rounding=rounding)
    assert sync(db, merchant_id, order("1001", line("1", amount))).awarded == expected


def test_rounding_with_a_fractional_rate(runtime: Runtime, merchant_id: int) -> None:
    db = runtime.database
    configure(db, merchant_id, points_per_unit=Decimal("0.1"), rounding="nearest")
    assert sync(db, merchant_id, order("1001", line("1", "24.99"))).awarded == 2
    assert sync(db, merchant_id, order("1002", line("1", "25.00"))).awarded == 3


# --- Who earns ------------------------------------------------------------------------------


def test_guest_order_earns_to_a_guest_member(runtime: Runtime, merchant_id: int) -> None:
    db = runtime.database
    guest = customer(None, "  Guest@Example.COM ")
    outcome = sync(db, merchant_id, order("1001", line("1", "25.00"), who=guest))
    assert outcome.awarded == 25
    assert outcome.member_id is not None
    with unit_of_work(db) as session:
        member = session.get(Member, outcome.member_id)
        assert member is not None
        assert (member.customer_id, member.email) == (None, "guest@example.com")
        assert member.is_guest
        assert (member.balance, member.pending) == (25, 0)
        assert order_row(session, merchant_id, "1001").member_id == member.id
    # A second guest order with the same email (other case) goes to the same member.
    again = sync(db, merchant_id, order("1002", line("1", "5.00"),
                                        who=customer(None, "guest@example.com")))
    assert again.member_id == outcome.member_id
    with unit_of_work(db) as session:
        assert session.query(Member).count() == 1


def test_order_without_id_or_email_is_recorded_without_member(runtime: Runtime,
                                                              merchant_id: int) -> None:
    db = runtime.database
    anonymous = order("1001", line("1", "25.00"), who=Customer(customer_id=None, email=None))
    outcome = sync(db, merchant_id, anonymous)
    assert (outcome.member_id, outcome.awarded) == (None, 0)
    assert outcome.note == "no customer or email to award"
    # Redelivery, a refund and a cancel change nothing either.
    later = replace(with_refunds(anonymous, refund("r1", ("1", 1, "25.00"))), cancelled=True)
    assert sync(db, merchant_id, later).member_id is None
    with unit_of_work(db) as session:
        row = order_row(session, merchant_id, "1001")
        assert (row.member_id, row.award_snapshot, row.awarded_points) == (None, None, 0)
        assert row.status_note == "no customer or email to award"
        assert session.query(Member).count() == 0
        assert session.query(LedgerEntry).count() == 0


def test_two_merchants_never_touch_each_others_members(runtime: Runtime,
                                                       merchant_id: int) -> None:
    db = runtime.database
    other_id = seed_merchant(db, "other-shop.example")
    configure(db, other_id, points_per_unit=Decimal(2))
    same = order("1001", line("1", "40.00"), who=customer("c1", "shared@example.com"))
    mine = sync(db, merchant_id, same)
    theirs = sync(db, other_id, same)
    assert (mine.awarded, theirs.awarded) == (40, 80)
    assert mine.member_id != theirs.member_id
    assert mine.order_id != theirs.order_id

    # A refund and a cancel in one shop leave the other alone.
    sync(db, merchant_id, replace(with_refunds(same, refund("r1", ("1", 1, "40.00"))),
                                  cancelled=True))
    assert member_state(db, merchant_id) == (0, 0)
    assert member_state(db, other_id) == (80, 0)
    with unit_of_work(db) as session:
        members = session.execute(select(Member).order_by(Member.id)).scalars().all()
        assert [(m.merchant_id, m.customer_id, m.email) for m in members] == [
            (merchant_id, "c1", "shared@example.com"), (other_id, "c1", "shared@example.com")]
        for entry in session.execute(select(LedgerEntry)).scalars():
            member = session.get(Member, entry.member_id)
            assert member is not None and member.merchant_id == entry.merchant_id
        assert order_row(session, other_id, "1001").reversed_points == 0
    # Guests by email are per merchant too.
    guest = order("2001", line("1", "10.00"), who=customer(None, "guest@example.com"))
    assert sync(db, merchant_id, guest).member_id != sync(db, other_id, guest).member_id
    assert_ledger_consistent(db)
