"""Two inbox jobs racing on the burst path (SQLite and PostgreSQL): each job takes its delivery
through ``sync_orders`` in a transaction of its own, both start together on a barrier. A lost
race (the other job inserted the order or the member first) must end like a delivery that came
second, never as a crash left "received" for the sweep."""

from __future__ import annotations

import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from integrations.base import Order
from integrations.canonical import order_to_dict
from plugin_server.db import unit_of_work
from plugin_server.loyalty.audit import ledger_differences
from plugin_server.loyalty.inbox import store_delivery
from plugin_server.models import InboxEvent, LedgerEntry, Member
from plugin_server.runtime import Runtime
from tests.support.builders import customer, line, order

ROUNDS = 20


def store(runtime: Runtime, merchant_id: int, deliveries: list[tuple[str, str, Order]]
          ) -> list[int]:
    """(topic, event id, order) deliveries stored in the inbox, not processed yet."""
    rows = []
    with unit_of_work(runtime.database) as session:
        for topic, event_id, placed in deliveries:
            row = store_delivery(session, merchant_id, "demo", topic, event_id,
                                 json.dumps(order_to_dict(placed)).encode())
            assert row is not None
            rows.append(row)
    return rows


def race_jobs(runtime: Runtime, rows: list[int]) -> list[str]:
    """Run process_inbox_event for each row, one thread per row, started on a barrier."""
    barrier = threading.Barrier(len(rows))

    def job(row: int) -> str:
        barrier.wait(timeout=30)
        return str(runtime.jobs.run("process_inbox_event", row))

    with ThreadPoolExecutor(max_workers=len(rows)) as pool:
        return list(pool.map(job, rows, timeout=120))


def test_racing_burst_jobs_never_crash_and_award_once(any_runtime: Runtime,
                                                      any_merchant_id: int) -> None:
    runtime, merchant_id = any_runtime, any_merchant_id
    rows: list[int] = []
    answers: list[str] = []
    for n in range(ROUNDS):
        # One new paid order delivered twice (orders/create and orders/paid): both jobs see a
        # new order and would insert its row.
        placed = order(f"same-{n}", line("1", "30.00"),
                       who=customer(f"solo-{n}", f"solo-{n}@example.com"))
        same_order = store(runtime, merchant_id, [("orders/create", f"create-{n}", placed),
                                                  ("orders/paid", f"paid-{n}", placed)])
        answers += race_jobs(runtime, same_order)
        # Two first orders of one new shopper: both jobs see a new member and would insert it.
        shopper = customer(f"new-{n}", f"new-{n}@example.com")
        first_orders = store(runtime, merchant_id, [
            ("orders/paid", f"first-a-{n}", order(f"first-a-{n}", line("1", "10.00"),
                                                  who=shopper)),
            ("orders/paid", f"first-b-{n}", order(f"first-b-{n}", line("1", "20.00"),
                                                  who=shopper)),
        ])
        answers += race_jobs(runtime, first_orders)
        rows += same_order + first_orders
    with unit_of_work(runtime.database) as session:
        events = session.execute(select(InboxEvent).where(InboxEvent.id.in_(rows))).scalars()
        left = [(e.event_id, e.state, e.attempts, e.reason) for e in events
                if e.state != "processed"]
        assert left == [], "every delivery is processed at its first attempt"
        assert Counter(answers) == Counter({"processed": 4 * ROUNDS})
        awards = Counter(session.execute(
            select(LedgerEntry.source_id).where(LedgerEntry.merchant_id == merchant_id,
                                                LedgerEntry.kind == "award")).scalars())
        expected = {f"same-{n}" for n in range(ROUNDS)} | {
            f"first-{part}-{n}" for n in range(ROUNDS) for part in "ab"}
        assert awards == Counter(expected), "exactly one award per order"
        members = {m.customer_id: m.balance for m in session.execute(
            select(Member).where(Member.merchant_id == merchant_id)).scalars()}
        assert members == {**{f"solo-{n}": 30 for n in range(ROUNDS)},
                           **{f"new-{n}": 30 for n in range(ROUNDS)}}
        assert ledger_differences(session, merchant_id) == []
