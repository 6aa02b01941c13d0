"""Concurrency on SQLite and PostgreSQL (L1, L2, L8): many threads start together on a barrier,
each with its own transaction, the way webhook workers and shoppers' requests race in real life.

No caller here retries: duplicates and lost races must be absorbed by the engine (row locks,
``INSERT ... ON CONFLICT DO NOTHING``, conditional updates), never surface as errors.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from decimal import Decimal
from typing import TypeVar

from sqlalchemy import func, select

from plugin_server.db import Database, unit_of_work
from plugin_server.loyalty.adjustments import adjust_points
from plugin_server.loyalty.audit import ledger_differences
from plugin_server.loyalty.errors import IdempotencyConflict
from plugin_server.loyalty.idempotency import StoredAnswer
from plugin_server.loyalty.inbox import store_delivery
from plugin_server.loyalty.members import member_for_customer
from plugin_server.loyalty.orders import sync_order
from plugin_server.loyalty.redeem import redeem_reward
from plugin_server.models import (
    IdempotencyRecord,
    InboxEvent,
    LedgerEntry,
    Member,
    Redemption,
    Reward,
)
from plugin_server.models import Order as OrderRow
from plugin_server.runtime import Runtime
from tests.support.builders import customer, line, order, refund, with_refunds

T = TypeVar("T")
THREADS = 10


def race(threads: int, calls_per_thread: int,
         call: Callable[[int], T]) -> list[T | BaseException]:
    """Run ``call(n)`` for n in 0..threads*calls_per_thread-1 on ``threads`` threads that start
    together on a barrier; return each call's result or the exception it raised."""
    barrier = threading.Barrier(threads)

    def worker(thread: int) -> list[T | BaseException]:
        barrier.wait(timeout=60)
        results: list[T | BaseException] = []
        for step in range(calls_per_thread):
            try:
                results.append(call(thread * calls_per_thread + step))
            except Exception as error:  # reported by the test, with its type and message
                results.append(error)
        return results

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(worker, thread) for thread in range(threads)]
        return [result for future in futures for result in future.result(timeout=300)]


def errors_in(results: list[T | BaseException]) -> list[str]:
    return [f"{type(result).__name__}: {result}" for result in results
            if isinstance(result, BaseException)]


def member_with_points(database: Database, merchant_id: int, points: int) -> int:
    with unit_of_work(database) as session:
        member = member_for_customer(session, merchant_id, customer("c-race", "race@example.com"))
        assert member is not None
        adjust_points(session, merchant_id, member.id, points, reason="starting balance",
                      actor="test")
        return member.id


def add_reward(database: Database, merchant_id: int, cost: int) -> int:
    with unit_of_work(database) as session:
        reward = Reward(merchant_id=merchant_id, name=f"{cost} points off", kind="fixed_amount",
                        points_cost=cost, value=Decimal(3))
        session.add(reward)
        session.flush()
        return reward.id


def test_duplicate_deliveries_from_many_threads_award_once(any_runtime: Runtime,
                                                           any_merchant_id: int) -> None:
    database = any_runtime.database
    placed = order("7001", line("1", "25.00"), line("2", "17.50", quantity=2))  # 60 points

    def deliver(_: int) -> int:
        with unit_of_work(database) as session:
            return sync_order(session, any_merchant_id, placed).awarded

    results = race(THREADS, 10, deliver)
    assert errors_in(results) == []
    assert Counter(results) == Counter({60: 1, 0: 99}), "exactly one delivery awards (L1)"
    with unit_of_work(database) as session:
        awards = session.execute(select(func.count()).where(
            LedgerEntry.merchant_id == any_merchant_id, LedgerEntry.kind == "award")
        ).scalar_one()
        assert awards == 1
        members = session.execute(select(Member).where(Member.merchant_id == any_merchant_id)
                                  ).scalars().all()
        assert [(m.balance, m.pending) for m in members] == [(60, 0)]
        assert session.execute(select(func.count()).select_from(OrderRow).where(
            OrderRow.merchant_id == any_merchant_id)).scalar_one() == 1
        assert ledger_differences(session, any_merchant_id) == []


def test_racing_copies_of_one_order_converge(any_runtime: Runtime,
                                             any_merchant_id: int) -> None:
    """Create, paid, refunded and duplicate copies of one order, all at once: one award and
    one reversal, as if they had arrived one by one."""
    database = any_runtime.database
    created = order("7002", line("1", "40.00"), line("2", "10.00"), paid=False)
    paid = replace(created, paid=True, updated_at=created.updated_at.replace(hour=13))
    refunded = with_refunds(paid, refund("r1", ("2", 1, "10.00"), order_id="7002"))
    copies = [created, paid, refunded, paid, refunded]

    def deliver(index: int) -> None:
        with unit_of_work(database) as session:
            sync_order(session, any_merchant_id, copies[index % len(copies)])

    assert errors_in(race(THREADS, 10, deliver)) == []
    with unit_of_work(database) as session:
        kinds = Counter(session.execute(select(LedgerEntry.kind).where(
            LedgerEntry.merchant_id == any_merchant_id)).scalars())
        assert kinds == Counter({"award": 1, "reversal": 1})
        member = session.execute(select(Member).where(Member.merchant_id == any_merchant_id)
                                 ).scalar_one()
        assert (member.balance, member.pending) == (40, 0)
        row = session.execute(select(OrderRow).where(OrderRow.merchant_id == any_merchant_id)
                              ).scalar_one()
        assert (row.awarded_points, row.reversed_points) == (50, 10)
        assert ledger_differences(session, any_merchant_id) == []


def test_first_orders_of_a_new_shopper_in_parallel_make_one_member(
        any_runtime: Runtime, any_merchant_id: int) -> None:
    database = any_runtime.database
    shopper = customer("c-new", "new@example.com")

    def deliver(index: int) -> int:
        with unit_of_work(database) as session:
            return sync_order(session, any_merchant_id,
                              order(f"80{index:02d}", line("1", "5.00"), who=shopper)).awarded

    results = race(THREADS, 4, deliver)
    assert errors_in(results) == []
    assert results == [5] * 40
    with unit_of_work(database) as session:
        members = session.execute(select(Member).where(Member.merchant_id == any_merchant_id)
                                  ).scalars().all()
        assert [(m.customer_id, m.email, m.balance) for m in members] == [
            ("c-new", "new@example.com", 200)]
        assert ledger_differences(session, any_merchant_id) == []


def test_concurrent_redemptions_never_overdraw(any_runtime: Runtime,
                                               any_merchant_id: int) -> None:
    """200 redemptions with distinct keys race for a balance that covers 7 (L2)."""
    database, cost, covered = any_runtime.database, 30, 7
    member_id = member_with_points(database, any_merchant_id, covered * cost + cost - 1)
    reward_id = add_reward(database, any_merchant_id, cost)
    issuer = any_runtime.code_issuers["demo"]
    done = threading.Event()
    seen: list[int] = []

    def watch_balance() -> None:
        while not done.is_set():
            with unit_of_work(database) as session:
                seen.append(session.execute(select(Member.balance).where(
                    Member.id == member_id)).scalar_one())
            done.wait(0.005)

    def redeem(index: int) -> StoredAnswer:
        return redeem_reward(database, any_merchant_id, member_id, reward_id, f"key-{index}",
                             issuer)

    watcher = threading.Thread(target=watch_balance)
    watcher.start()
    try:
        results = race(20, 10, redeem)
    finally:
        done.set()
        watcher.join()
    assert errors_in(results) == []
    statuses = Counter(result.status_code for result in results
                       if isinstance(result, StoredAnswer))
    assert statuses == Counter({200: covered, 409: 200 - covered})
    assert seen and min(seen) >= 0, "the balance went below zero during the race (L2)"
    with unit_of_work(database) as session:
        balance = session.execute(select(Member.balance).where(Member.id == member_id)
                                  ).scalar_one()
        assert balance == cost - 1
        assert ledger_differences(session, any_merchant_id) == []
        states = Counter(session.execute(select(Redemption.state).where(
            Redemption.merchant_id == any_merchant_id)).scalars())
        debits = session.execute(select(func.count()).where(
            LedgerEntry.merchant_id == any_merchant_id, LedgerEntry.kind == "redemption")
        ).scalar_one()
        assert debits == covered
        # Refused redemptions must leave nothing behind: a "held" row without a debit would
        # be voided by the sweep later and credit points that were never taken (L2, L7).
        assert states == Counter({"issued": covered}), states


def test_same_key_from_many_threads_redeems_once(any_runtime: Runtime,
                                                 any_merchant_id: int) -> None:
    """50 identical requests (same Idempotency-Key, same body) at once: one redemption; every
    caller gets the first answer, or 409 while the first request is still in progress (L8)."""
    database = any_runtime.database
    member_id = member_with_points(database, any_merchant_id, 100)
    reward_id = add_reward(database, any_merchant_id, 30)
    issuer = any_runtime.code_issuers["demo"]

    def redeem(_: int) -> StoredAnswer:
        try:
            return redeem_reward(database, any_merchant_id, member_id, reward_id, "same-key",
                                 issuer)
        except IdempotencyConflict as conflict:  # what the HTTP layer answers with 409
            return StoredAnswer(409, {"error": conflict.code, "message": str(conflict)})

    results = race(25, 2, redeem)
    assert errors_in(results) == []
    answers = [result for result in results if isinstance(result, StoredAnswer)]
    successes = [answer for answer in answers if answer.status_code == 200]
    busy = [answer for answer in answers if answer.status_code == 409]
    assert len(successes) + len(busy) == 50, Counter(a.status_code for a in answers)
    assert successes, "nobody got the redemption"
    assert all(answer == successes[0] for answer in successes)
    assert all("in progress" in answer.body["message"] for answer in busy), busy[:1]
    replay = redeem_reward(database, any_merchant_id, member_id, reward_id, "same-key", issuer)
    assert replay == successes[0]
    with unit_of_work(database) as session:
        redemptions = session.execute(select(Redemption).where(
            Redemption.merchant_id == any_merchant_id)).scalars().all()
        assert [(r.state, r.id) for r in redemptions] == [
            ("issued", successes[0].body["redemption"]["id"])]
        assert session.execute(select(Member.balance).where(Member.id == member_id)
                               ).scalar_one() == 70
        assert session.execute(select(func.count()).select_from(IdempotencyRecord).where(
            IdempotencyRecord.merchant_id == any_merchant_id)).scalar_one() == 1
        assert ledger_differences(session, any_merchant_id) == []


def test_one_delivery_stored_from_many_threads_is_stored_once(any_runtime: Runtime,
                                                              any_merchant_id: int) -> None:
    database = any_runtime.database
    payload = b'{"order_id": "9001"}'

    def store(_: int) -> int | None:
        with unit_of_work(database) as session:
            return store_delivery(session, any_merchant_id, "demo", "orders/paid", "evt-9001",
                                  payload, {"X-Demo-Event-Id": "evt-9001"})

    results = race(12, 5, store)
    assert errors_in(results) == []
    stored = [result for result in results if result is not None]
    assert len(stored) == 1 and isinstance(stored[0], int)
    with unit_of_work(database) as session:
        rows = session.execute(select(InboxEvent.id).where(
            InboxEvent.merchant_id == any_merchant_id, InboxEvent.event_id == "evt-9001")
        ).scalars().all()
        assert rows == stored
