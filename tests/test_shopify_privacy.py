"""Shopify's mandatory privacy topics with the published bodies: customers/data_request hands
the shopper's data to the merchant, customers/redact erases the person and keeps anonymous
ledger amounts, shop/redact erases a shop that left (and only one that left) (DESIGN §7)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from integrations.shopify.simulated_payloads import rest_order
from plugin_server.db import unit_of_work
from plugin_server.loyalty.audit import ledger_differences
from plugin_server.models import (
    DataRequest,
    InboxEvent,
    LedgerEntry,
    Member,
    Merchant,
    Order,
    Reward,
    utcnow,
)
from tests.support.builders import line, order
from tests.support.fixtures import shopify_privacy_body, shopify_webhook
from tests.support.shopify import (
    SHOP,
    ShopifyStore,
    fake_shopify,
    install_directly,
    merchant_rows,
    second_store,
    shopify_store,
)

__all__ = ["fake_shopify", "shopify_store"]  # fixtures, for pytest

ANA = {"id": "7001", "email": "ana.privacy@example.com", "first": "Ana", "last": "Quintero"}
BEA = {"id": "8002", "email": "bea.bystander@example.com", "first": "Bea", "last": "Okafor"}
PHONE = "555-625-1199"  # in the published bodies


def _buy(store: ShopifyStore, order_id: str, amount: str, who: dict[str, str]) -> None:
    from integrations.base import Customer

    now = utcnow()
    shopper = Customer(customer_id=who["id"], email=who["email"], first_name=who["first"],
                       last_name=who["last"])
    body = rest_order(order(order_id, line("11", amount), who=shopper, created_at=now,
                            updated_at=now, currency="EUR"))
    answer = store.webhook("orders/paid", body, event_id=f"paid-{store.shop}-{order_id}")
    assert answer.status_code == 200 and answer.json["status"] == "stored"


def _privacy(topic: str, who: dict[str, str], orders: list[int],
             shop: str = SHOP) -> dict[str, Any]:
    """The published body, adapted to one of our shoppers."""
    body = shopify_webhook(topic)
    body["shop_domain"] = shop
    body["customer"] = {**body["customer"], "id": int(who["id"]), "email": who["email"]}
    body["orders_requested" if topic == "customers/data_request" else "orders_to_redact"] = orders
    return body


def _member(store: ShopifyStore, member_id: int) -> Member:
    with unit_of_work(store.runtime.database) as session:
        member = session.get(Member, member_id)
        assert member is not None
        session.expunge(member)
        return member


def _member_id(store: ShopifyStore, who: dict[str, str]) -> int:
    with unit_of_work(store.runtime.database) as session:
        return int(session.execute(select(Member.id).where(
            Member.merchant_id == store.merchant_id,
            Member.customer_id == who["id"])).scalar_one())


def _inbox(store: ShopifyStore) -> list[InboxEvent]:
    with unit_of_work(store.runtime.database) as session:
        rows = list(session.execute(select(InboxEvent).order_by(InboxEvent.id)).scalars())
        session.expunge_all()
        return rows


def _ledger(store: ShopifyStore, member_id: int) -> list[tuple[str, int, int]]:
    with unit_of_work(store.runtime.database) as session:
        return [(kind, points, pending) for kind, points, pending in session.execute(
            select(LedgerEntry.kind, LedgerEntry.points, LedgerEntry.pending_points)
            .where(LedgerEntry.member_id == member_id).order_by(LedgerEntry.id))]


# -- customers/data_request --------------------------------------------------------------------

def test_data_request_records_the_shoppers_balance_and_ledger(store: ShopifyStore) -> None:
    install_directly(store)
    _buy(store, "5001", "120.00", ANA)
    _buy(store, "5002", "30.00", BEA)
    answer = store.webhook("customers/data_request",
                           _privacy("customers/data_request", ANA, [5001]))
    assert answer.status_code == 200
    with unit_of_work(store.runtime.database) as session:
        (request,) = session.execute(select(DataRequest)).scalars()
        assert request.merchant_id == store.merchant_id
        assert request.platform_request_id == "9999"  # data_request.id in the published body
        assert (request.customer_id, request.email) == (ANA["id"], ANA["email"])
        data = json.loads(request.payload)
    (member,) = data["members"]
    assert member["customer_id"] == ANA["id"] and member["email"] == ANA["email"]
    assert (member["first_name"], member["last_name"]) == (ANA["first"], ANA["last"])
    assert member["balance"] == 120 and member["pending"] == 0
    assert [(e["kind"], e["points"]) for e in member["ledger"]] == [("award", 120)]
    assert [o["order_id"] for o in data["orders"]] == ["5001"]
    assert BEA["email"] not in json.dumps(data)


def test_data_request_with_the_published_body_as_is(store: ShopifyStore) -> None:
    """The fixture's bytes untouched (its shop_domain is a placeholder: the header decides)."""
    install_directly(store)
    body = shopify_privacy_body("customers/data_request", store.shop)
    assert store.webhook("customers/data_request", body).status_code == 200
    (event,) = _inbox(store)
    assert event.state == "processed", event.reason
    with unit_of_work(store.runtime.database) as session:
        (request,) = session.execute(select(DataRequest)).scalars()
        assert request.customer_id == "191167"
        assert json.loads(request.payload)["members"] == []


# -- customers/redact --------------------------------------------------------------------------

def test_redact_erases_the_person_and_keeps_the_amounts(store: ShopifyStore) -> None:
    install_directly(store)
    _buy(store, "5001", "1000.00", ANA)
    _buy(store, "5002", "30.00", BEA)
    ana, bea = _member_id(store, ANA), _member_id(store, BEA)
    reward = next(r["id"] for r in store.proxy("GET", "/api/program", None).json["rewards"]
                  if r["kind"] == "fixed_amount")
    redeemed = store.proxy("POST", "/api/redeem", ANA["id"], json={"reward_id": reward},
                           headers={"Idempotency-Key": "k-ana"})
    assert redeemed.status_code == 200, redeemed.json
    store.webhook("customers/data_request", _privacy("customers/data_request", ANA, [5001]))
    ledger_before = _ledger(store, ana)
    assert sum(points for _, points, _ in ledger_before) == 500

    answer = store.webhook("customers/redact", _privacy("customers/redact", ANA, [5001]))
    assert answer.status_code == 200

    member = _member(store, ana)
    assert member.customer_id is None and member.email is None
    assert member.first_name in ("", None) and member.last_name in ("", None)
    assert member.redacted_at is not None
    assert member.balance == 500
    assert _ledger(store, ana) == ledger_before
    with unit_of_work(store.runtime.database) as session:
        assert ledger_differences(session) == []
        (ana_order,) = session.execute(select(Order).where(
            Order.platform_order_id == "5001")).scalars()
        assert ana_order.email is None and ana_order.customer_id is None
        assert ana_order.awarded_points == 1000  # the amounts stay
        snapshot_customer = json.loads(ana_order.snapshot)["customer"]
        assert not any(snapshot_customer.values()), snapshot_customer
        assert ANA["email"] not in ana_order.snapshot and ANA["last"] not in ana_order.snapshot
        # The data gathered for her earlier goes too.
        assert session.execute(select(func.count()).select_from(DataRequest)).scalar_one() == 0
    # The stored deliveries that named her are blanked; Bea's are untouched.
    events = {event.event_id: event for event in _inbox(store)}
    assert events[f"paid-{store.shop}-5001"].payload == b"{}"
    assert BEA["email"].encode() in events[f"paid-{store.shop}-5002"].payload
    bystander = _member(store, bea)
    assert (bystander.customer_id, bystander.email, bystander.balance) == (
        BEA["id"], BEA["email"], 30)
    # Her account no longer leads to the old member: a sign-in starts from nothing.
    assert store.proxy("GET", "/api/me", ANA["id"]).json["balance"] == 0


def test_after_redact_no_stored_delivery_names_the_shopper(store: ShopifyStore) -> None:
    """Every finished delivery that mentions her is blanked, the erasure request itself
    included (it carries her email and phone)."""
    install_directly(store)
    _buy(store, "5001", "100.00", ANA)
    store.webhook("customers/data_request", _privacy("customers/data_request", ANA, [5001]))
    store.webhook("customers/redact", _privacy("customers/redact", ANA, [5001]))
    events = _inbox(store)
    assert [e.state for e in events] == ["processed"] * 3, [(e.topic, e.reason) for e in events]
    for event in events:
        payload = event.payload.lower()
        for needle in (ANA["email"], PHONE, ANA["last"].lower()):
            assert needle.encode() not in payload, (event.topic, needle)
        assert ANA["email"] not in event.headers_json


def test_redact_of_an_unknown_shopper_changes_nothing(store: ShopifyStore) -> None:
    install_directly(store)
    _buy(store, "5001", "100.00", ANA)
    before = merchant_rows(store)
    body = shopify_privacy_body("customers/redact", store.shop)  # customer 191167
    assert store.webhook("customers/redact", body).status_code == 200
    assert _inbox(store)[-1].state == "processed"
    after = merchant_rows(store)
    assert {**after, "inbox_events": before["inbox_events"]} == before
    assert _member(store, _member_id(store, ANA)).email == ANA["email"]


# -- shop/redact -------------------------------------------------------------------------------

def _fill(store: ShopifyStore, order_id: str, who: dict[str, str]) -> None:
    _buy(store, order_id, "1000.00", who)
    reward = next(r["id"] for r in store.proxy("GET", "/api/program", None).json["rewards"]
                  if r["kind"] == "fixed_amount")
    assert store.proxy("POST", "/api/redeem", who["id"], json={"reward_id": reward},
                       headers={"Idempotency-Key": f"k-{order_id}"}).status_code == 200
    store.webhook("customers/data_request", _privacy("customers/data_request", who,
                                                     [int(order_id)], store.shop))


def test_shop_redact_after_uninstall_erases_that_shop_only(store: ShopifyStore) -> None:
    install_directly(store)
    other = second_store(store, "other.myshopify.com", name="Other", currency="EUR")
    _fill(store, "5001", ANA)
    _fill(other, "6001", BEA)
    ours_before, theirs_before = merchant_rows(store), merchant_rows(other)
    for table in ("members", "ledger_entries", "orders", "rewards", "redemptions",
                  "data_requests", "program_settings"):
        assert ours_before[table] > 0 and theirs_before[table] > 0, table

    assert store.webhook("app/uninstalled", {"id": 1}).status_code == 200
    answer = store.webhook("shop/redact", shopify_privacy_body("shop/redact", store.shop),
                           event_id="evt-shop-redact")
    assert answer.status_code == 200

    ours = merchant_rows(store)
    assert {table: count for table, count in ours.items() if table != "inbox_events"} == {
        table: 0 for table in ours if table != "inbox_events"}, ours
    for model in (Member, LedgerEntry, Order, Reward):
        with unit_of_work(store.runtime.database) as session:
            assert session.execute(select(func.count()).select_from(model).where(
                model.merchant_id == store.merchant_id)).scalar_one() == 0, model.__name__
    (kept,) = [e for e in _inbox(store) if e.merchant_id == store.merchant_id]
    assert kept.topic == "shop/redact" and kept.payload == b"{}"
    assert merchant_rows(other) == theirs_before
    with unit_of_work(store.runtime.database) as session:
        merchant = session.get(Merchant, store.merchant_id)
        assert merchant is not None
        assert merchant.status == "purging" and merchant.credentials is None
        assert merchant.name == ""
        assert ledger_differences(session) == []
    # The other shop carries on.
    assert other.proxy("GET", "/api/me", BEA["id"]).json["balance"] == 500
    # The erased shop's storefront is closed, and a late delivery brings nothing back.
    assert store.proxy("GET", "/api/program", None).status_code == 404
    _buy(store, "5009", "10.00", ANA)
    assert merchant_rows(store)["members"] == 0


def test_shop_redact_for_an_installed_shop_fails_and_deletes_nothing(store: ShopifyStore) -> None:
    install_directly(store)
    _fill(store, "5001", ANA)
    before = merchant_rows(store)
    answer = store.webhook("shop/redact", shopify_privacy_body("shop/redact", store.shop),
                           event_id="evt-early-redact")
    assert answer.status_code == 200
    (event,) = [e for e in _inbox(store) if e.event_id == "evt-early-redact"]
    assert event.state == "failed" and "reinstalled" in event.reason
    after = merchant_rows(store)
    assert after == {**before, "inbox_events": before["inbox_events"] + 1}
    with unit_of_work(store.runtime.database) as session:
        merchant = session.get(Merchant, store.merchant_id)
        assert merchant is not None and merchant.status == "active"
        assert merchant.credentials is not None
    assert store.proxy("GET", "/api/me", ANA["id"]).json["balance"] == 500


def test_a_reinstall_after_shop_redact_starts_a_fresh_program(store: ShopifyStore) -> None:
    merchant_id = store.install()
    _fill(store, "5001", ANA)
    store.webhook("app/uninstalled", {"id": 1})
    store.webhook("shop/redact", shopify_privacy_body("shop/redact", store.shop))
    assert merchant_rows(store)["members"] == 0
    hooks_before = len(store.fake.webhooks)

    assert store.install() == merchant_id
    with unit_of_work(store.runtime.database) as session:
        merchant = session.get(Merchant, merchant_id)
        assert merchant is not None and merchant.status == "active"
        assert merchant.name == "Tea House" and merchant.currency == "EUR"
    assert len(store.fake.webhooks) > hooks_before  # subscribed again
    program = store.proxy("GET", "/api/program", None)
    assert program.status_code == 200
    assert sorted(r["kind"] for r in program.json["rewards"]) == [
        "fixed_amount", "free_shipping", "percentage"]
    assert store.proxy("GET", "/api/me", ANA["id"]).json["balance"] == 0
    # The new program works end to end.
    _buy(store, "5101", "40.00", ANA)
    assert store.proxy("GET", "/api/me", ANA["id"]).json["balance"] == 40
    with unit_of_work(store.runtime.database) as session:
        assert ledger_differences(session) == []


def test_a_short_customer_id_marks_only_where_a_customer_id_goes() -> None:
    from plugin_server.loyalty.privacy import _needles

    pattern = _needles("1", set())
    assert pattern is not None
    others = [b'{"id": 5, "line_items": [{"id": 1, "quantity": 1}], "customer": {"id": 2}}',
              b'{"id": 10, "customer": {"id": 11}}', b'{"customer_id": 12}']
    assert not any(pattern.search(body) for body in others)
    mine = [b'{"id": 5, "customer": {"id": 1, "email": null}}', b'{"id": 1, "email": null}',
            b'{"address": {"customer_id": "1"}}']
    assert all(pattern.search(body) for body in mine)


def test_a_privacy_body_for_another_shop_changes_nothing(store: ShopifyStore) -> None:
    """The body names its shop; filed under another shop's header, it fails with the reason."""
    install_directly(store)
    _buy(store, "5001", "10.00", ANA)
    answer = store.webhook("customers/redact",
                           _privacy("customers/redact", ANA, [5001], "other.myshopify.com"))
    assert answer.status_code == 200
    (failed,) = [e for e in _inbox(store) if e.state == "failed"]
    assert "shop_domain" in failed.reason
    with unit_of_work(store.runtime.database) as session:
        member = session.execute(select(Member).where(
            Member.merchant_id == store.merchant_id)).scalar_one()
        assert member.email == ANA["email"] and member.redacted_at is None


def test_redact_reaches_the_guest_record_of_a_listed_order(store: ShopifyStore) -> None:
    """An order in orders_to_redact placed as a guest under another email: that guest member
    is the same person and is erased too."""
    install_directly(store)
    _buy(store, "5001", "10.00", ANA)
    guest = {"id": "", "email": "ana.work@example.com", "first": "Ana", "last": "Lima"}
    from integrations.base import Customer
    from integrations.shopify.simulated_payloads import rest_order

    now = utcnow()
    placed = order("5002", line("1", "20.00"), created_at=now, updated_at=now,
                   who=Customer(customer_id=None, email=guest["email"], first_name="Ana",
                                last_name="Lima"))
    store.webhook("orders/paid", rest_order(placed))
    store.webhook("customers/redact", _privacy("customers/redact", ANA, [5001, 5002]))
    with unit_of_work(store.runtime.database) as session:
        members = list(session.execute(select(Member).where(
            Member.merchant_id == store.merchant_id)).scalars())
        assert len(members) == 2
        assert all(m.email is None and m.redacted_at is not None for m in members)
        assert sorted(m.balance for m in members) == [10, 20]  # amounts kept, anonymous
