"""The burst path (sync_orders) ends in exactly the state that syncing the same deliveries one
by one, in delivery order, gives: same balances, tiers, entries and orders."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from itertools import count
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from integrations.base import Order
from plugin_server.db import Database, unit_of_work
from plugin_server.loyalty.bulk_orders import sync_orders
from plugin_server.loyalty.orders import sync_order
from plugin_server.models import LedgerEntry, Member, Tier
from plugin_server.models import Order as OrderRow
from tests.conftest import seed_merchant
from tests.support.builders import T0, customer, line, order, refund, with_refunds

SHOPPERS = [("c1", "a@example.com"), ("c2", "b@example.com"), (None, "guest@example.com"),
            ("c3", "guest@example.com"), ("c4", None), (None, "other@example.com"),
            # one member reached through different keys, and an email written differently
            ("c1", None), (None, "a@example.com"), ("c2", " B@Example.com ")]

shops = count()


@st.composite
def deliveries(draw: st.DrawFn) -> list[Order]:
    """New orders (some for the same shopper), then follow-ups: duplicates, refunds, cancels,
    stale copies, unpaid-then-paid."""
    placed: list[Order] = []
    out: list[Order] = []
    for number in range(draw(st.integers(1, 10))):
        cid, email = draw(st.sampled_from(SHOPPERS))
        lines = [line(str(i), str(draw(st.integers(1, 400))), draw(st.integers(1, 3)))
                 for i in range(1, draw(st.integers(1, 3)) + 1)]
        paid = draw(st.booleans()) or number % 3 == 0
        new = order(f"o{number}", *lines, who=customer(cid, email), paid=paid,
                    updated=T0 + timedelta(minutes=number))
        placed.append(new)
        out.append(new)
        follow_up = draw(st.sampled_from(["none", "dup", "refund", "cancel", "pay", "stale"]))
        if follow_up == "dup":
            out.append(new)
        elif follow_up == "refund":
            out.append(with_refunds(replace(new, paid=True), refund(
                f"r{number}", ("1", 1, lines[0].unit_price.to_eng_string()),
                order_id=new.order_id)))
        elif follow_up == "cancel":
            out.append(replace(new, cancelled=True, updated_at=new.updated_at + timedelta(1)))
        elif follow_up == "pay":
            out.append(replace(new, paid=True, updated_at=new.updated_at + timedelta(hours=1)))
        elif follow_up == "stale":
            out.append(replace(new, paid=True, updated_at=new.updated_at - timedelta(hours=1)))
    return draw(st.permutations(out)) if draw(st.booleans()) else out


def _add_tiers(database: Database, merchant_id: int) -> None:
    with unit_of_work(database) as session:
        session.add_all([
            Tier(merchant_id=merchant_id, name="Bronze", threshold=Decimal(0)),
            Tier(merchant_id=merchant_id, name="Silver", threshold=Decimal(300),
                 retention_threshold=Decimal(250), multiplier=Decimal("1.5"),
                 entry_reward_points=50),
            Tier(merchant_id=merchant_id, name="Gold", threshold=Decimal(900),
                 multiplier=Decimal(2), entry_reward_points=100),
        ])


def _portable_source(entry: LedgerEntry, tiers: dict[int, str]) -> str:
    """tier_reward ids are "<member id>:<tier id>", guest claims carry the guest's id."""
    if entry.source_kind == "tier_reward":
        return tiers[int(entry.source_id.split(":")[1])]
    if entry.source_kind.startswith("guest_claim"):
        return "guest"
    return entry.source_id


def _state(database: Database, merchant_id: int) -> dict[str, Any]:
    with unit_of_work(database) as session:
        tiers = dict(session.execute(select(Tier.id, Tier.name)
                                     .where(Tier.merchant_id == merchant_id)).all())
        members = {
            (m.customer_id, m.email): (m.balance, m.pending, tiers.get(m.tier_id),
                                       str(m.tier_progress))
            for m in session.execute(select(Member).where(Member.merchant_id == merchant_id))
            .scalars()
        }
        ids = {m.id: (m.customer_id, m.email) for m in session.execute(
            select(Member).where(Member.merchant_id == merchant_id)).scalars()}
        entries = sorted((
            (ids[e.member_id], e.kind, e.points, e.pending_points, e.source_kind,
             # ids of rows that differ between the two merchants: compare what they stand for
             _portable_source(e, tiers))
            for e in session.execute(select(LedgerEntry)
                                     .where(LedgerEntry.merchant_id == merchant_id)).scalars()
        ), key=repr)
        orders = sorted((
            (o.platform_order_id, ids.get(o.member_id) if o.member_id else None,
             o.awarded_points, o.reversed_points, o.paid, o.cancelled, o.award_snapshot)
            for o in session.execute(select(OrderRow)
                                     .where(OrderRow.merchant_id == merchant_id)).scalars()
        ), key=repr)
    return {"members": members, "entries": entries, "orders": orders}


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(batch=deliveries(), with_tiers=st.booleans())
def test_burst_path_equals_one_by_one(runtime, batch: list[Order], with_tiers: bool) -> None:
    database = runtime.database
    bulk_shop = seed_merchant(database, f"bulk-{next(shops)}.example")
    single_shop = seed_merchant(database, f"single-{next(shops)}.example")
    if with_tiers:
        _add_tiers(database, bulk_shop)
        _add_tiers(database, single_shop)
    now = T0 + timedelta(days=3)
    with unit_of_work(database) as session:
        assert sync_orders(session, bulk_shop, batch, now=now) == [None] * len(batch)
    for delivery in batch:
        with unit_of_work(database) as session:
            sync_order(session, single_shop, delivery, now=now)
    assert _state(database, bulk_shop) == _state(database, single_shop)


def test_burst_path_takes_new_orders_in_few_statements(runtime, merchant_id) -> None:
    """Fifty new paid orders from fifty shoppers: a constant number of statements, not 50x."""
    from sqlalchemy import event

    statements: list[str] = []
    engine = runtime.database.engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    batch = [order(f"n{i}", line("1", "20.00"), who=customer(f"s{i}", f"s{i}@example.com"))
             for i in range(50)]
    event.listen(engine, "before_cursor_execute", listener)
    try:
        with unit_of_work(runtime.database) as session:
            sync_orders(session, merchant_id, batch)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert len(statements) < 30, statements
    with unit_of_work(runtime.database) as session:
        balances = session.execute(select(Member.balance)).scalars().all()
    assert sorted(balances) == [20] * 50


def test_one_member_reached_through_two_keys_in_one_batch(runtime) -> None:
    """An account's customer id on one order, its email on the next: the second order must
    see the tier the first one earned, as it would one by one."""
    database = runtime.database
    known = order("o0", line("1", "10"), who=customer("c1", "a@example.com"))
    batch = [known,
             order("o1", line("1", "400"), who=customer("c1", None)),
             order("o2", line("1", "400"), who=customer(None, "a@example.com"))]
    bulk_shop = seed_merchant(database, "alias-bulk.example")
    single_shop = seed_merchant(database, "alias-single.example")
    for shop in (bulk_shop, single_shop):
        _add_tiers(database, shop)
    now = T0 + timedelta(days=1)
    with unit_of_work(database) as session:
        sync_orders(session, bulk_shop, batch[:1], now=now)
    with unit_of_work(database) as session:
        assert sync_orders(session, bulk_shop, batch[1:], now=now) == [None, None]
    for delivery in batch:
        with unit_of_work(database) as session:
            sync_order(session, single_shop, delivery, now=now)
    assert _state(database, bulk_shop) == _state(database, single_shop)
    members = _state(database, bulk_shop)["members"]
    # 10 + 400 (Bronze), +50 Silver reward, 400 x 1.5 = 600, +100 Gold reward
    assert members[("c1", "a@example.com")][:3] == (1160, 0, "Gold")
