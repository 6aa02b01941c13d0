"""Inbox → job → points (plugin_server.loyalty.inbox + plugin_server.jobs, DESIGN.md §6):
deliveries are stored once, processed once, failures are explained and never block the rest."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from integrations.canonical import order_to_dict
from plugin_server.db import unit_of_work
from plugin_server.jobs import SweepReport
from plugin_server.loyalty.audit import ledger_differences
from plugin_server.loyalty.inbox import MAX_ATTEMPTS, list_events, store_delivery
from plugin_server.models import InboxEvent, LedgerEntry, Member, Order
from plugin_server.runtime import Runtime
from tests.support.builders import customer, line, order

Change = Callable[[dict[str, Any]], None]


def order_body(order_id: str = "1001", customer_id: str = "c1",
               email: str = "shopper@example.com") -> dict[str, Any]:
    """A paid 50.50 order (50 points by the default program) in the canonical JSON form."""
    placed = order(order_id, line("1", "40.00"), line("2", "10.50"),
                   who=customer(customer_id, email))
    return order_to_dict(placed)


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def store(runtime: Runtime, merchant_id: int, topic: str, event_id: str,
          payload: bytes) -> int | None:
    with unit_of_work(runtime.database) as session:
        return store_delivery(session, merchant_id, "demo", topic, event_id, payload,
                              {"X-Demo-Topic": topic})


def deliver(runtime: Runtime, merchant_id: int, body: dict[str, Any] | bytes,
            event_id: str, topic: str = "orders/paid") -> int:
    payload = body if isinstance(body, bytes) else encode(body)
    row = store(runtime, merchant_id, topic, event_id, payload)
    assert row is not None
    return row


def process(runtime: Runtime, event_row: int) -> str:
    return runtime.jobs.run("process_inbox_event", event_row)


def event(runtime: Runtime, event_row: int) -> InboxEvent:
    with unit_of_work(runtime.database) as session:
        found = session.get(InboxEvent, event_row)
        assert found is not None
        return found


def count(session: Session, model: type) -> int:
    return session.execute(select(func.count()).select_from(model)).scalar_one()


def totals(runtime: Runtime) -> tuple[int, int, int, int]:
    """(members, orders, ledger entries, sum of balances)."""
    with unit_of_work(runtime.database) as session:
        balances = session.execute(
            select(func.coalesce(func.sum(Member.balance + Member.pending), 0))).scalar_one()
        return (count(session, Member), count(session, Order), count(session, LedgerEntry),
                int(balances))


def balance_of(runtime: Runtime, customer_id: str) -> int:
    with unit_of_work(runtime.database) as session:
        return session.execute(
            select(Member.balance).where(Member.customer_id == customer_id)).scalar_one()


# --- The happy path ---------------------------------------------------------------------


def test_valid_delivery_awards_points(any_runtime: Runtime, any_merchant_id: int) -> None:
    row = deliver(any_runtime, any_merchant_id, order_body(), "evt-1")
    assert event(any_runtime, row).state == "received"
    assert process(any_runtime, row) == "processed"
    stored = event(any_runtime, row)
    assert (stored.state, stored.reason, stored.attempts) == ("processed", "", 1)
    assert stored.processed_at is not None
    assert balance_of(any_runtime, "c1") == 50
    with unit_of_work(any_runtime.database) as session:
        assert ledger_differences(session) == []


def test_processing_twice_awards_once(any_runtime: Runtime, any_merchant_id: int) -> None:
    row = deliver(any_runtime, any_merchant_id, order_body(), "evt-1")
    assert process(any_runtime, row) == "processed"
    assert process(any_runtime, row) == "processed"
    assert event(any_runtime, row).attempts == 1
    # The same order under other topics and event ids still earns once (L1).
    again = deliver(any_runtime, any_merchant_id, order_body(), "evt-2", "orders/updated")
    assert process(any_runtime, again) == "processed"
    assert balance_of(any_runtime, "c1") == 50
    assert totals(any_runtime) == (1, 1, 1, 50)


def test_commit_enqueues_processing(runtime: Runtime, merchant_id: int) -> None:
    """As a webhook does it: store, enqueue after commit; eager jobs run at the commit."""
    with unit_of_work(runtime.database) as session:
        row = store_delivery(session, merchant_id, "demo", "orders/paid", "evt-1",
                             encode(order_body()))
        assert row is not None
        runtime.jobs.enqueue_after_commit(session, "process_inbox_event", row)
        assert count(session, Member) == 0  # nothing runs before the commit
    assert event(runtime, row).state == "processed"
    assert balance_of(runtime, "c1") == 50


def test_rolled_back_delivery_enqueues_nothing(runtime: Runtime, merchant_id: int) -> None:
    with pytest.raises(RuntimeError), unit_of_work(runtime.database) as session:
        row = store_delivery(session, merchant_id, "demo", "orders/paid", "evt-1",
                             encode(order_body()))
        runtime.jobs.enqueue_after_commit(session, "process_inbox_event", row)
        raise RuntimeError("request failed before commit")
    with unit_of_work(runtime.database) as session:
        assert list_events(session) == []
    assert totals(runtime) == (0, 0, 0, 0)


# --- Stored once ------------------------------------------------------------------------


def test_same_event_is_stored_once(any_runtime: Runtime, any_merchant_id: int) -> None:
    first = store(any_runtime, any_merchant_id, "orders/paid", "evt-1", encode(order_body()))
    assert first is not None
    assert store(any_runtime, any_merchant_id, "orders/paid", "evt-1", b"a retry") is None
    assert store(any_runtime, any_merchant_id, "orders/paid", "evt-1", encode(order_body())) \
        is None
    with unit_of_work(any_runtime.database) as session:
        (only,) = list_events(session)
        assert (only.id, only.payload) == (first, encode(order_body()))


def test_event_id_is_unique_per_merchant_and_topic(any_runtime: Runtime,
                                                   any_merchant_id: int) -> None:
    from tests.conftest import seed_merchant

    other = seed_merchant(any_runtime.database, "other-shop.example")
    rows = [store(any_runtime, any_merchant_id, "orders/paid", "evt-1", b"{}"),
            store(any_runtime, any_merchant_id, "orders/updated", "evt-1", b"{}"),
            store(any_runtime, other, "orders/paid", "evt-1", b"{}")]
    assert None not in rows and len(set(rows)) == 3


# --- Malformed deliveries ---------------------------------------------------------------


def malformed(change: Change) -> bytes:
    body = order_body()
    change(body)
    return encode(body)


MALFORMED: list[tuple[str, bytes, str]] = [
    ("not-json", b"{this is not json", "PayloadError: body is not valid JSON"),
    ("empty-body", b"", "PayloadError: body is not valid JSON"),
    ("json-array", b"[1, 2]", "PayloadError: order must be a JSON object"),
    ("missing-order-id", malformed(lambda b: b.pop("order_id")),
     "PayloadError: order.order_id is missing"),
    ("missing-line-items", malformed(lambda b: b.pop("line_items")),
     "PayloadError: order.line_items is missing"),
    ("missing-total", malformed(lambda b: b.pop("total")),
     "PayloadError: order.total is missing"),
    ("negative-total", malformed(lambda b: b.update(total="-50.50")),
     "PayloadError: order.total must not be negative"),
    ("negative-price", malformed(lambda b: b["line_items"][0].update(unit_price="-40")),
     "PayloadError: order.line_items[0].unit_price must not be negative"),
    ("non-numeric-total", malformed(lambda b: b.update(total="fifty")),
     "PayloadError: order.total must be a number"),
    ("nan-total", malformed(lambda b: b.update(total="NaN")),
     "PayloadError: order.total must be a finite number"),
    ("boolean-total", malformed(lambda b: b.update(total=True)),
     "PayloadError: order.total must be a number"),
    ("absurd-quantity", malformed(lambda b: b["line_items"][0].update(quantity=10**9)),
     "PayloadError: order.line_items[0].quantity must be between 0 and 100000"),
    ("fractional-quantity", malformed(lambda b: b["line_items"][1].update(quantity=1.5)),
     "PayloadError: order.line_items[1].quantity must be a whole number"),
    ("unknown-currency", malformed(lambda b: b.update(currency="XYZ")),
     "PayloadError: order.currency is not a known ISO 4217 currency code"),
    ("naive-timestamp", malformed(lambda b: b.update(created_at="2026-01-05T12:00:00")),
     "PayloadError: order.created_at must include a UTC offset"),
    ("discount-above-price",
     malformed(lambda b: b["line_items"][1].update(total_discount="10.51")),
     "PayloadError: order.line_items[1].total_discount is larger than the line's price"),
    # Parsed fine, refused deeper in the engine: the savepoint must undo the order row and
    # the member it had already created.
    # A guest is known only by the email, so a broken one fails the order. (With a customer
    # id the broken email is ignored instead: see test_review_regressions.)
    ("bad-email", malformed(lambda b: b["customer"].update(email="not an email",
                                                            customer_id=None)),
     "InvalidArgument: 'not an email' is not an email address"),
    ("points-over-limit",
     malformed(lambda b: b["line_items"][0].update(unit_price="1000000000", quantity=5)),
     "PayloadError: order.line_items add up to 5000000010.5000, beyond the limit of "
     "1000000000"),
]


@pytest.mark.parametrize(("payload", "reason"), [(p, r) for _, p, r in MALFORMED],
                         ids=[name for name, _, _ in MALFORMED])
def test_malformed_delivery_fails_with_its_reason_and_changes_nothing(
        any_runtime: Runtime, any_merchant_id: int, payload: bytes, reason: str) -> None:
    row = deliver(any_runtime, any_merchant_id, payload, "evt-bad")
    assert process(any_runtime, row) == "failed"
    failed = event(any_runtime, row)
    assert failed.state == "failed"
    assert failed.reason.startswith(reason), failed.reason
    assert failed.attempts == 1
    assert totals(any_runtime) == (0, 0, 0, 0)
    # A failed delivery is final: processing it again changes nothing.
    assert process(any_runtime, row) == "failed"
    assert event(any_runtime, row).attempts == 1


@pytest.mark.parametrize(("payload", "reason"), [
    (b"[" * 100_000, "PayloadError: body is not valid JSON"),
    (b'{"total": ' + b"9" * 5000 + b"}", "PayloadError: body is not valid JSON"),
    (malformed(lambda b: b.update(discount_codes=5)), "PayloadError: order.discount_codes"),
], ids=["deeply-nested-json", "5000-digit-integer", "discount-codes-not-a-list"])
def test_unusable_body_fails_at_once_not_after_crashes(runtime: Runtime, merchant_id: int,
                                                       payload: bytes, reason: str) -> None:
    """Bodies the parser chokes on with RecursionError / ValueError / TypeError are still
    just bad bodies: failed on the first attempt with a reason, not retried as crashes."""
    row = deliver(runtime, merchant_id, payload, "evt-bad")
    assert process(runtime, row) == "failed"
    failed = event(runtime, row)
    assert failed.reason.startswith(reason), failed.reason
    assert failed.attempts == 1


def test_customer_delivery_without_identity_fails(runtime: Runtime, merchant_id: int) -> None:
    row = deliver(runtime, merchant_id, {"first_name": "Nobody"}, "c-1", "customers/create")
    assert process(runtime, row) == "failed"
    assert event(runtime, row).reason == ("PayloadError: customer has neither customer_id "
                                          "nor email")


def test_unknown_topic_is_ignored(any_runtime: Runtime, any_merchant_id: int) -> None:
    row = deliver(any_runtime, any_merchant_id, order_body(), "evt-1", "orders/exploded")
    assert process(any_runtime, row) == "ignored"
    ignored = event(any_runtime, row)
    assert ignored.state == "ignored"
    assert ignored.reason == "no handler for topic 'orders/exploded'"
    assert totals(any_runtime) == (0, 0, 0, 0)


def test_unknown_event_row_is_missing(runtime: Runtime) -> None:
    assert process(runtime, 987654) == "missing"


# --- Crashes and the sweep --------------------------------------------------------------


def crash(session: Session, merchant_id: int, body: bytes | list[bytes]) -> None:
    raise RuntimeError("database went away mid-job")


def make_handlers_crash(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both the one-delivery handler and the batch handler of orders/paid crash."""
    monkeypatch.setitem(runtime.handlers, ("demo", "orders/paid"), crash)  # type: ignore[arg-type]
    monkeypatch.setitem(runtime.batch_handlers,  # type: ignore[arg-type]
                        ("demo", "orders/paid"), crash)


def test_crash_leaves_the_event_received_then_fails_after_max_attempts(
        any_runtime: Runtime, any_merchant_id: int, monkeypatch: pytest.MonkeyPatch) -> None:
    make_handlers_crash(any_runtime, monkeypatch)
    row = deliver(any_runtime, any_merchant_id, order_body(), "evt-1")
    for attempt in range(1, MAX_ATTEMPTS):
        assert process(any_runtime, row) == "received"
        crashed = event(any_runtime, row)
        assert (crashed.state, crashed.attempts) == ("received", attempt)
        assert crashed.reason == "RuntimeError: database went away mid-job"
    process(any_runtime, row)
    final = event(any_runtime, row)
    assert (final.state, final.attempts) == ("failed", MAX_ATTEMPTS)
    assert final.reason == "RuntimeError: database went away mid-job"
    assert totals(any_runtime) == (0, 0, 0, 0)
    # Failed for good: even once the handler works again.
    monkeypatch.undo()
    assert process(any_runtime, row) == "failed"
    assert totals(any_runtime) == (0, 0, 0, 0)


def test_sweep_redispatches_events_left_received(any_runtime: Runtime, any_merchant_id: int,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    lost = deliver(any_runtime, any_merchant_id, order_body("1001", "c1", "a@example.com"),
                   "evt-lost")  # stored, job never ran
    make_handlers_crash(any_runtime, monkeypatch)
    crashed = deliver(any_runtime, any_merchant_id, order_body("1002", "c2", "b@example.com"),
                      "evt-crashed")
    assert process(any_runtime, crashed) == "received"
    monkeypatch.undo()
    done = deliver(any_runtime, any_merchant_id, order_body("1003", "c3", "c@example.com"),
                   "evt-done")
    assert process(any_runtime, done) == "processed"

    # Fresh deliveries are left to their own jobs for a while.
    report = any_runtime.jobs.run("sweep")
    assert isinstance(report, SweepReport) and report.redispatched == 0
    assert event(any_runtime, lost).state == "received"

    report = any_runtime.jobs.run("sweep", 0)
    assert report.redispatched == 2
    assert report.as_dict() == {"redispatched": 2, "released_points": 0, "voided_holds": 0}
    assert [event(any_runtime, r).state for r in (lost, crashed, done)] == ["processed"] * 3
    assert event(any_runtime, crashed).attempts == 2
    assert [balance_of(any_runtime, c) for c in ("c1", "c2", "c3")] == [50, 50, 50]
    # Nothing left: a second sweep does nothing.
    assert any_runtime.jobs.run("sweep", 0).redispatched == 0
    with unit_of_work(any_runtime.database) as session:
        assert ledger_differences(session) == []


def test_valid_deliveries_survive_invalid_ones_in_between(any_runtime: Runtime,
                                                          any_merchant_id: int) -> None:
    rows = [
        deliver(any_runtime, any_merchant_id, order_body("1", "c1", "a@example.com"), "e1"),
        deliver(any_runtime, any_merchant_id, b"garbage", "e2"),
        deliver(any_runtime, any_merchant_id, order_body("2", "c2", "b@example.com"), "e3"),
        deliver(any_runtime, any_merchant_id,
                malformed(lambda b: b.update(order_id="3", total="-1")), "e4"),
        deliver(any_runtime, any_merchant_id, order_body("4", "c1", "a@example.com"), "e5"),
        deliver(any_runtime, any_merchant_id, order_body("5", "c3", "c@example.com"), "e6",
                "orders/unknown"),
        deliver(any_runtime, any_merchant_id, order_body("6", "c3", "c@example.com"), "e7"),
    ]
    states = [process(any_runtime, row) for row in rows]
    assert states == ["processed", "failed", "processed", "failed", "processed", "ignored",
                      "processed"]
    assert [balance_of(any_runtime, c) for c in ("c1", "c2", "c3")] == [100, 50, 50]
    with unit_of_work(any_runtime.database) as session:
        assert ledger_differences(session) == []
        failed = list_events(session, failed_only=True)
        assert sorted(e.event_id for e in failed) == ["e2", "e4"]


def test_guest_then_account_delivery_claims_the_points(runtime: Runtime,
                                                       merchant_id: int) -> None:
    guest = order_body("1", "c1", "sam@example.com")
    guest["customer"]["customer_id"] = None
    assert process(runtime, deliver(runtime, merchant_id, guest, "e1")) == "processed"
    account = {"customer_id": "c1", "email": "Sam@Example.com"}
    assert process(runtime, deliver(runtime, merchant_id, account, "c1",
                                    "customers/create")) == "processed"
    assert balance_of(runtime, "c1") == 50
    assert totals(runtime)[0] == 1
