"""The member an order belongs to is the one its newest delivery names (L6)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from plugin_server.db import unit_of_work
from plugin_server.loyalty.audit import ledger_differences
from plugin_server.loyalty.orders import sync_order
from plugin_server.models import Member
from tests.conftest import seed_merchant
from tests.support.builders import T0, customer, line, order


def balances(database, merchant_id) -> dict[tuple[str | None, str | None], int]:
    with unit_of_work(database) as session:
        rows = session.execute(select(Member).where(Member.merchant_id == merchant_id)).scalars()
        return {(m.customer_id, m.email): m.balance for m in rows if m.balance}


def test_a_newer_delivery_naming_another_customer_takes_the_points(runtime) -> None:
    database = runtime.database
    as_guest = order("1", line("1", "50.00"), who=customer(None, "guest@x.com"))
    as_account = order("1", line("1", "50.00"), who=customer("c9", "c9@x.com"),
                       updated=T0 + timedelta(hours=1))
    results = []
    for name, sequence in (("time order", [as_guest, as_account]),
                           ("reversed", [as_account, as_guest])):
        shop = seed_merchant(database, f"{name.replace(' ', '-')}.example")
        for delivery in sequence:
            with unit_of_work(database) as session:
                sync_order(session, shop, delivery)
        results.append(balances(database, shop))
    assert results[0] == results[1] == {("c9", "c9@x.com"): 50}
    with unit_of_work(database) as session:
        assert ledger_differences(session) == []


def test_points_move_once_and_follow_back(runtime, merchant_id) -> None:
    database = runtime.database
    first = order("1", line("1", "30.00"), who=customer("a", "a@x.com"))
    second = order("1", line("1", "30.00"), who=customer("b", "b@x.com"),
                   updated=T0 + timedelta(hours=1))
    third = order("1", line("1", "30.00"), who=customer("a", "a@x.com"),
                  updated=T0 + timedelta(hours=2))
    for delivery in (first, second, second, third, second):  # the last is stale now
        with unit_of_work(database) as session:
            sync_order(session, merchant_id, delivery)
    assert balances(database, merchant_id) == {("a", "a@x.com"): 30}
    with unit_of_work(database) as session:
        assert ledger_differences(session) == []
