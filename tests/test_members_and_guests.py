"""Members: guests known by email, claimed by their account when it appears, and the demo
platform's customers/* topics through the inbox."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from integrations.base import Customer
from plugin_server.db import Database, unit_of_work
from plugin_server.loyalty.audit import ledger_differences
from plugin_server.loyalty.errors import InvalidArgument
from plugin_server.loyalty.inbox import store_delivery
from plugin_server.loyalty.members import find_member, member_for_customer, normalise_email
from plugin_server.loyalty.orders import OrderOutcome, sync_order
from plugin_server.models import InboxEvent, LedgerEntry, Member, ProgramSettings
from plugin_server.models import Order as OrderRow
from plugin_server.runtime import Runtime
from tests.conftest import seed_merchant
from tests.support.builders import customer, line, order, refund, with_refunds


def sync(database: Database, merchant_id: int, placed: Any) -> OrderOutcome:
    with unit_of_work(database) as session:
        return sync_order(session, merchant_id, placed)


def claim(database: Database, merchant_id: int, who: Customer) -> int:
    with unit_of_work(database) as session:
        member = member_for_customer(session, merchant_id, who)
        assert member is not None
        return member.id


def members(database: Database) -> list[tuple[int, str | None, str | None, int, int]]:
    with unit_of_work(database) as session:
        rows = session.execute(select(Member).order_by(Member.id)).scalars()
        return [(m.id, m.customer_id, m.email, m.balance, m.pending) for m in rows]


def deliver(runtime: Runtime, merchant_id: int, topic: str, event_id: str,
            body: dict[str, Any]) -> InboxEvent:
    """Store a demo delivery, run it through the inbox job, and return the stored row."""
    with unit_of_work(runtime.database) as session:
        stored = store_delivery(session, merchant_id, "demo", topic, event_id,
                                json.dumps(body).encode())
    assert stored is not None
    runtime.jobs.run("process_inbox_event", stored)
    with unit_of_work(runtime.database) as session:
        event = session.get(InboxEvent, stored)
        assert event is not None
        session.expunge(event)
        return event


def test_guest_earns_by_normalised_email(runtime: Runtime, merchant_id: int) -> None:
    db = runtime.database
    first = sync(db, merchant_id, order("1001", line("1", "20.00"),
                                        who=customer(None, "  Sam.Shopper@Example.COM\t")))
    second = sync(db, merchant_id, order("1002", line("1", "5.00"),
                                         who=customer(None, "sam.shopper@example.com")))
    assert first.member_id == second.member_id
    assert members(db) == [(first.member_id, None, "sam.shopper@example.com", 25, 0)]
    with unit_of_work(db) as session:
        assert find_member(session, merchant_id, " SAM.SHOPPER@example.com").id == first.member_id


def test_account_claims_the_guest_row(runtime: Runtime, merchant_id: int) -> None:
    db = runtime.database
    guest = sync(db, merchant_id, order("1001", line("1", "30.00"),
                                        who=customer(None, "sam@example.com")))
    body = {"customer_id": "c77", "email": "SAM@example.com ", "first_name": "Sam"}
    event = deliver(runtime, merchant_id, "customers/create", "evt-1", body)
    assert (event.state, event.reason) == ("processed", "")
    # Same row, now with the account id, points kept; no second member, no claim entries.
    assert members(db) == [(guest.member_id, "c77", "sam@example.com", 30, 0)]
    with unit_of_work(db) as session:
        assert [e.kind for e in session.execute(select(LedgerEntry)).scalars()] == ["award"]
    # Later orders of the account and refunds of the guest order land on the same member.
    assert sync(db, merchant_id, order("1002", line("1", "10.00"),
                                       who=customer("c77", "sam@example.com"))).member_id \
        == guest.member_id
    guest_order = order("1001", line("1", "30.00"), who=customer(None, "sam@example.com"))
    sync(db, merchant_id, with_refunds(guest_order, refund("r1", ("1", 1, "30.00"))))
    assert members(db) == [(guest.member_id, "c77", "sam@example.com", 10, 0)]


def test_guest_points_and_orders_move_to_an_existing_account(runtime: Runtime,
                                                             merchant_id: int) -> None:
    db = runtime.database
    # The account exists first, without an email.
    account_id = claim(db, merchant_id, Customer(customer_id="c1", email=None))
    sync(db, merchant_id, order("1001", line("1", "100.00"), who=customer("c1", None)))
    # The same shopper checks out as a guest twice.
    guest = sync(db, merchant_id, order("2001", line("1", "30.00"),
                                        who=customer(None, "sam@example.com")))
    sync(db, merchant_id, order("2002", line("1", "12.00"),
                                who=customer(None, "Sam@Example.com")))
    guest_id = guest.member_id
    assert guest_id is not None and guest_id != account_id

    # The account gets the guest's email: the guest is merged into it.
    event = deliver(runtime, merchant_id, "customers/update", "evt-2",
                    {"customer_id": "c1", "email": "sam@example.com"})
    assert event.state == "processed"
    assert members(db) == [(account_id, "c1", "sam@example.com", 142, 0),
                           (guest_id, None, None, 0, 0)]
    with unit_of_work(db) as session:
        claims = session.execute(
            select(LedgerEntry.member_id, LedgerEntry.kind, LedgerEntry.points,
                   LedgerEntry.source_kind)
            .where(LedgerEntry.source_kind.like("guest_claim%")).order_by(LedgerEntry.id)
        ).all()
        assert [tuple(row) for row in claims] == [
            (guest_id, "adjustment", -42, "guest_claim_out"),
            (account_id, "adjustment", 42, "guest_claim_in")]
        owners = dict(session.execute(
            select(OrderRow.platform_order_id, OrderRow.member_id)).all())
        assert owners == {"1001": account_id, "2001": account_id, "2002": account_id}
        assert ledger_differences(session) == []
    # A second delivery of the same update is harmless.
    again = deliver(runtime, merchant_id, "customers/update", "evt-3",
                    {"customer_id": "c1", "email": "sam@example.com"})
    assert again.state == "processed"
    assert members(db)[0] == (account_id, "c1", "sam@example.com", 142, 0)
    # A refund of a former guest order now comes out of the account.
    guest_order = order("2001", line("1", "30.00"), who=customer(None, "sam@example.com"))
    sync(db, merchant_id, with_refunds(guest_order, refund("r1", ("1", 1, "30.00"))))
    assert members(db)[0] == (account_id, "c1", "sam@example.com", 112, 0)
    # New guest orders with that email go straight to the account.
    assert sync(db, merchant_id, order("2003", line("1", "1.00"),
                                       who=customer(None, "sam@example.com"))).member_id \
        == account_id
    with unit_of_work(db) as session:
        assert ledger_differences(session) == []


def test_merging_a_guest_moves_pending_points_too(runtime: Runtime, merchant_id: int) -> None:
    db = runtime.database
    with unit_of_work(db) as session:
        session.execute(select(ProgramSettings)).scalar_one().pending_days = 7
    account_id = claim(db, merchant_id, Customer(customer_id="c1", email=None))
    sync(db, merchant_id, order("2001", line("1", "30.00"),
                                who=customer(None, "sam@example.com")))
    claim(db, merchant_id, Customer(customer_id="c1", email="sam@example.com"))
    rows = members(db)
    assert rows[0] == (account_id, "c1", "sam@example.com", 0, 30)
    assert rows[1][1:] == (None, None, 0, 0)
    with unit_of_work(db) as session:
        assert ledger_differences(session) == []


def test_account_with_an_old_email_claims_a_guest_with_its_new_email(
        runtime: Runtime, merchant_id: int) -> None:
    """The shopper changed their account email; the guest points under the new email are
    claimed, and from then on the account is known by its current email."""
    db = runtime.database
    account_id = claim(db, merchant_id, Customer(customer_id="c1", email="old@example.com"))
    guest = sync(db, merchant_id, order("2001", line("1", "30.00"),
                                        who=customer(None, "new@example.com")))
    event = deliver(runtime, merchant_id, "customers/update", "evt-1",
                    {"customer_id": "c1", "email": "new@example.com"})
    assert event.state == "processed"
    rows = {row[0]: row[1:] for row in members(db)}
    assert rows[guest.member_id] == (None, None, 0, 0)
    assert rows[account_id][2:] == (30, 0)
    assert rows[account_id][:2] == ("c1", "new@example.com")
    # The next guest checkout with the account's current email earns for the account.
    later = sync(db, merchant_id, order("2002", line("1", "5.00"),
                                        who=customer(None, "new@example.com")))
    assert later.member_id == account_id


@pytest.mark.parametrize("email", ["not-an-email", "sam smith@example.com", "a" * 330 + "@x.io"])
def test_invalid_emails_are_refused(runtime: Runtime, merchant_id: int, email: str) -> None:
    with pytest.raises(InvalidArgument):
        normalise_email(email)
    with pytest.raises(InvalidArgument), unit_of_work(runtime.database) as session:
        member_for_customer(session, merchant_id, Customer(customer_id=None, email=email))
    assert members(runtime.database) == []
    # With an account id the broken email is ignored, not allowed to block the account.
    with unit_of_work(runtime.database) as session:
        member = member_for_customer(session, merchant_id, Customer(customer_id="c9",
                                                                    email=email))
        assert member is not None and (member.customer_id, member.email) == ("c9", None)


def test_blank_email_counts_as_none(runtime: Runtime, merchant_id: int) -> None:
    assert normalise_email("   ") is None
    with unit_of_work(runtime.database) as session:
        assert member_for_customer(session, merchant_id, Customer(None, "  ")) is None


def test_customer_topic_failures_are_recorded(runtime: Runtime, merchant_id: int) -> None:
    bad_email = deliver(runtime, merchant_id, "customers/create", "evt-1",
                        {"email": "nobody"})
    assert bad_email.state == "failed"
    assert bad_email.reason.startswith("InvalidArgument")
    nobody = deliver(runtime, merchant_id, "customers/create", "evt-2", {"first_name": "X"})
    assert nobody.state == "failed"
    assert "neither customer_id nor email" in nobody.reason
    assert members(runtime.database) == []
    # A good one afterwards works, and a duplicate event id is not stored twice.
    good = deliver(runtime, merchant_id, "customers/create", "evt-3",
                   {"customer_id": 42, "email": "x@example.com", "last_name": "Y"})
    assert good.state == "processed"
    with unit_of_work(runtime.database) as session:
        assert store_delivery(session, merchant_id, "demo", "customers/create", "evt-3",
                              b"{}") is None
        member = session.execute(select(Member)).scalar_one()
        assert (member.customer_id, member.email, member.last_name) == ("42", "x@example.com",
                                                                         "Y")


def test_customers_are_per_merchant(runtime: Runtime, merchant_id: int) -> None:
    db = runtime.database
    other = seed_merchant(db, "other.example")
    sync(db, other, order("1001", line("1", "30.00"), who=customer(None, "sam@example.com")))
    event = deliver(runtime, merchant_id, "customers/create", "evt-1",
                    {"customer_id": "c1", "email": "sam@example.com"})
    assert event.state == "processed"
    with unit_of_work(db) as session:
        theirs = session.execute(select(Member).where(Member.merchant_id == other)).scalar_one()
        mine = session.execute(
            select(Member).where(Member.merchant_id == merchant_id)).scalar_one()
        assert (theirs.customer_id, theirs.email, theirs.balance) == (None, "sam@example.com", 30)
        assert (mine.customer_id, mine.email, mine.balance) == ("c1", "sam@example.com", 0)
