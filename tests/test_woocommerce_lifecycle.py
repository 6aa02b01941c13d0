"""WooCommerce orders over their life, against the stand-in store: statuses that go back
(failed → processing, cancelled → processing, trash → restored), deletions and refunds read
from the store instead of trusted from a body, guests' points, custom statuses, and the
reconciliation that heals what deliveries missed (DESIGN §8)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from integrations.woocommerce.client import WooError
from plugin_server.db import unit_of_work
from plugin_server.exclusive import exclusive
from plugin_server.loyalty.audit import ledger_differences
from plugin_server.models import InboxEvent, LedgerEntry, Member
from plugin_server.woocommerce.jobs import (
    ReconcileBusy,
    reconcile,
    run_reconcile,
    woocommerce_sweep,
)
from tests.support.woo_store import CUSTOMER, Woo, open_woo

GUEST = {"customer_id": 0, "billing": {**CUSTOMER["billing"], "email": "guest@example.com"}}


@pytest.fixture
def woo(tmp_path: Path, httpserver: HTTPServer) -> Iterator[Woo]:
    yield from open_woo(tmp_path, httpserver)


def _step(woo: Woo, order_id: int, second: int, **changes: Any) -> dict[str, Any]:
    """The order changed at its own second: WooCommerce's dates have whole seconds, and two
    changes back to the same state within one second give the same body."""
    woo.fake.update_order(order_id, **changes)
    stored = woo.fake.orders[order_id]
    stored["date_modified"] = stored["date_modified_gmt"] = f"2030-01-01T00:00:{second:02d}"
    return dict(stored)


def _retitled(headers: dict[str, str], topic: str) -> dict[str, str]:
    """A captured delivery's headers with another topic: only the body is signed."""
    resource, event = topic.split(".")
    return {**headers, "X-WC-Webhook-Topic": topic, "X-WC-Webhook-Resource": resource,
            "X-WC-Webhook-Event": event}


def _entries(woo: Woo, source_kind: str) -> list[int]:
    with unit_of_work(woo.runtime.database) as session:
        return [entry.points + entry.pending_points for entry in session.query(LedgerEntry)
                .filter_by(merchant_id=woo.merchant().id, source_kind=source_kind)
                .order_by(LedgerEntry.id)]


def _consistent(woo: Woo) -> None:
    with unit_of_work(woo.runtime.database) as session:
        assert ledger_differences(session, woo.merchant().id) == []


def _member(woo: Woo, **criteria: Any) -> Member | None:
    with unit_of_work(woo.runtime.database) as session:
        found = session.query(Member).filter_by(merchant_id=woo.merchant().id,
                                                **criteria).one_or_none()
        if found is not None:
            session.expunge(found)
        return found


def test_a_failed_payment_retried_successfully_earns(woo: Woo) -> None:
    woo.connect()
    order = woo.fake.add_order(status="pending", **CUSTOMER)
    woo.deliver("order.created", order)
    woo.deliver("order.updated", woo.fake.update_order(order["id"], status="failed"))
    assert woo.balance() == 0
    woo.deliver("order.updated", woo.fake.update_order(order["id"], status="processing"))
    assert woo.balance() == 18
    _consistent(woo)


def test_a_cancelled_order_reopened_gives_the_points_back_and_cancels_again(woo: Woo) -> None:
    woo.connect()
    order = woo.fake.add_order(status="processing", **CUSTOMER)
    woo.deliver("order.created", order)
    assert woo.balance() == 18
    woo.deliver("order.updated", _step(woo, order["id"], 1, status="cancelled"))
    assert woo.balance() == 0
    woo.deliver("order.updated", _step(woo, order["id"], 2, status="processing"))
    assert woo.balance() == 18
    woo.deliver("order.updated", _step(woo, order["id"], 3, status="cancelled"))
    assert woo.balance() == 0
    # Each effect is its own ledger entry: two cancellations, one reinstatement.
    assert _entries(woo, "cancellation") == [-18, -18]
    assert _entries(woo, "reinstatement") == [18]
    _consistent(woo)


def _refund_first_line(woo: Woo, order_id: int) -> int:
    """Refund the order's first line in the store; returns the points that line earned."""
    first = woo.fake.orders[order_id]["line_items"][0]
    woo.fake.add_refund(order_id, first["total"], lines=[(first["id"], first["quantity"],
                                                          first["total"])])
    return int(float(first["total"]))


@pytest.mark.parametrize("refunded_while_cancelled", [False, True])
def test_a_reopened_order_keeps_what_its_refunds_took(woo: Woo,
                                                      refunded_while_cancelled: bool) -> None:
    woo.connect()
    order = woo.fake.add_order(status="processing", **CUSTOMER)
    woo.deliver("order.created", order)
    assert woo.balance() == 18
    if not refunded_while_cancelled:
        refunded = _refund_first_line(woo, order["id"])
        woo.deliver("order.updated", _step(woo, order["id"], 1))
        assert woo.balance() == 18 - refunded
    woo.deliver("order.updated", _step(woo, order["id"], 2, status="cancelled"))
    assert woo.balance() == 0
    if refunded_while_cancelled:
        refunded = _refund_first_line(woo, order["id"])
        woo.deliver("order.updated", _step(woo, order["id"], 3))
        assert woo.balance() == 0
    woo.deliver("order.updated", _step(woo, order["id"], 4, status="processing"))
    assert woo.balance() == 18 - refunded
    # Cancelled again: what is left goes, and reopening once more gives back only that.
    woo.deliver("order.updated", _step(woo, order["id"], 5, status="cancelled"))
    assert woo.balance() == 0
    woo.deliver("order.updated", _step(woo, order["id"], 6, status="processing"))
    assert woo.balance() == 18 - refunded
    _consistent(woo)


def test_a_stale_cancelled_copy_does_not_cancel_the_reopened_order(woo: Woo) -> None:
    woo.connect()
    order = woo.fake.add_order(status="processing", **CUSTOMER)
    woo.deliver("order.created", order)
    cancelled = woo.fake.update_order(order["id"], status="cancelled")
    reopened = woo.fake.update_order(order["id"], status="processing")
    reopened["date_modified_gmt"] = "2099-01-01T00:00:00"  # a later second
    woo.deliver("order.updated", reopened)
    woo.deliver("order.updated", cancelled)  # older, arriving late
    assert woo.balance() == 18
    _consistent(woo)


def test_trash_is_read_from_the_store_and_a_restore_gives_the_points_back(woo: Woo) -> None:
    woo.connect()
    order = woo.fake.add_order(status="completed", **CUSTOMER)
    woo.deliver("order.created", order)
    assert woo.balance() == 18
    _step(woo, order["id"], 1, status="trash")
    assert woo.deliver("order.deleted", {"id": order["id"]}).status_code == 200
    assert woo.balance() == 0
    woo.deliver("order.restored", _step(woo, order["id"], 2, status="completed"))
    assert woo.balance() == 18
    # Trashed a second time: the same body, a new delivery, read again.
    _step(woo, order["id"], 3, status="trash")
    assert woo.deliver("order.deleted", {"id": order["id"]}).json["status"] == "stored"
    assert woo.balance() == 0
    _consistent(woo)


def test_a_replayed_deletion_does_not_cancel_a_restored_order(woo: Woo) -> None:
    woo.connect()
    order = woo.fake.add_order(status="processing", **CUSTOMER)
    woo.deliver("order.created", order)
    _step(woo, order["id"], 1, status="trash")
    body, headers = woo.fake.signed_delivery("order.deleted", {"id": order["id"]}, woo.secret())
    url = f"/webhooks/woocommerce/{woo.merchant().store_id}"
    assert woo.client.post(url, data=body, headers=headers).status_code == 200
    assert woo.balance() == 0
    woo.deliver("order.restored", _step(woo, order["id"], 2, status="processing"))
    assert woo.balance() == 18
    # The captured deletion sent again, under a new delivery id: the store says otherwise.
    replayed = {**headers, "X-WC-Webhook-Delivery-ID": "999999"}
    assert woo.client.post(url, data=body, headers=replayed).json["status"] == "stored"
    assert woo.balance() == 18
    # A captured order body sent as a deletion reads the order too: nothing changes.
    order_body, order_headers = woo.fake.signed_delivery(
        "order.updated", woo.fake.orders[order["id"]], woo.secret())
    forged = woo.client.post(url, data=order_body, headers=_retitled(order_headers,
                                                                     "order.deleted"))
    assert forged.json["status"] == "stored" and woo.balance() == 18


def test_an_order_deleted_for_good_takes_its_points_back(woo: Woo) -> None:
    woo.connect()
    order = woo.fake.add_order(status="processing", **CUSTOMER)
    woo.deliver("order.created", order)
    del woo.fake.orders[order["id"]]  # "Delete permanently": the store answers 404
    woo.deliver("order.deleted", {"id": order["id"]})
    assert woo.balance() == 0
    _consistent(woo)


def test_refunds_take_back_by_their_lines_and_never_for_shipping(woo: Woo) -> None:
    woo.connect()
    order = woo.fake.add_order(status="processing", shipping_total="10.00", **CUSTOMER)
    woo.deliver("order.created", order)
    assert woo.balance() == 18
    # Shipping alone given back: the order's refund total is 10, the points stay.
    woo.fake.add_refund(order["id"], "10.00", shipping="10.00")
    woo.deliver("order.updated", woo.fake.orders[order["id"]])
    assert woo.balance() == 18
    # The first line (10.00 of the 18.00 earning) given back: 10 points.
    first = woo.fake.orders[order["id"]]["line_items"][0]
    woo.fake.add_refund(order["id"], first["total"], lines=[(first["id"], first["quantity"],
                                                             first["total"])])
    woo.deliver("order.updated", woo.fake.orders[order["id"]])
    assert woo.balance() == 18 - int(float(first["total"]))
    _consistent(woo)


def test_a_refund_whose_delivery_was_lost_is_healed_by_reconciliation(woo: Woo) -> None:
    woo.connect()
    order = woo.fake.add_order(status="processing", **CUSTOMER)
    woo.deliver("order.created", order)
    first = woo.fake.orders[order["id"]]["line_items"][0]
    woo.fake.add_refund(order["id"], first["total"], lines=[(first["id"], first["quantity"],
                                                             first["total"])])
    report = reconcile(woo.runtime, woo.merchant().id)
    assert report.failed == 0
    assert woo.balance() == 18 - int(float(first["total"]))


def test_guest_points_are_claimed_by_the_account_email_not_a_billing_email(woo: Woo) -> None:
    woo.connect()
    guest_order = woo.fake.add_order(status="processing", **GUEST)
    woo.deliver("order.created", guest_order)
    guest = _member(woo, email="guest@example.com")
    assert guest is not None and guest.balance == 18 and guest.customer_id is None
    # A registered shopper typing the guest's address at checkout claims nothing.
    other = {"customer_id": 9, "billing": {**CUSTOMER["billing"], "email": "guest@example.com"}}
    woo.deliver("order.created", woo.fake.add_order(status="processing", **other))
    assert woo.balance("9") == 18
    guest = _member(woo, email="guest@example.com")
    assert guest is not None and guest.customer_id is None and guest.balance == 18
    # The account that owns the address does.
    account = {"id": 11, "email": "guest@example.com", "first_name": "G", "last_name": "U",
               "role": "customer", "username": "gu", "billing": {}}
    assert woo.deliver("customer.created", account).status_code == 200
    assert woo.balance("11") == 18
    _consistent(woo)


def test_a_registered_customers_billing_email_never_becomes_their_members(woo: Woo) -> None:
    woo.connect()
    # Both paths: a single order (sync_order) and a burst (the set-based award path).
    other = {"customer_id": 9, "billing": {**CUSTOMER["billing"], "email": "typed@example.com"}}
    woo.deliver("order.created", woo.fake.add_order(status="processing", **other))
    burst = [woo.fake.add_order(status="processing", customer_id=20 + n,
                                billing={**CUSTOMER["billing"], "email": f"b{n}@example.com"})
             for n in range(3)]
    reconcile(woo.runtime, woo.merchant().id)
    for customer_id in ("9", "20", "21", "22"):
        member = _member(woo, customer_id=customer_id)
        assert member is not None and member.balance == 18 and member.email is None
    # So a later guest order with that address is the guest's own, not the account's.
    woo.deliver("order.created", woo.fake.add_order(
        status="processing", customer_id=0,
        billing={**CUSTOMER["billing"], "email": "typed@example.com"}))
    assert woo.balance("9") == 18
    guest = _member(woo, email="typed@example.com")
    assert guest is not None and guest.customer_id is None and guest.balance == 18
    assert len(burst) == 3
    _consistent(woo)


def test_an_order_body_sent_as_a_new_customer_changes_no_member(woo: Woo) -> None:
    woo.connect()
    order = woo.fake.add_order(status="processing", **CUSTOMER)
    woo.deliver("order.created", order)
    before = _member(woo, customer_id="7")
    body, headers = woo.fake.signed_delivery("order.updated", order, woo.secret())
    sent = woo.client.post(f"/webhooks/woocommerce/{woo.merchant().store_id}", data=body,
                           headers=_retitled(headers, "customer.created"))
    assert sent.json["status"] == "stored"
    with unit_of_work(woo.runtime.database) as session:
        event = session.query(InboxEvent).filter_by(topic="customer.created").one()
        assert event.state == "failed" and "not a customer" in event.reason
    assert _member(woo, customer_id=str(order["id"])) is None
    after = _member(woo, customer_id="7")
    assert before is not None and after is not None and after.email == before.email


def test_an_unknown_status_is_kept_as_failed_and_does_not_pin_the_checkpoint(woo: Woo) -> None:
    woo.connect()
    woo.fake.add_order(status="shipped", **CUSTOMER)  # a plugin's custom status
    woo.fake.add_order(status="processing", **CUSTOMER)
    report = reconcile(woo.runtime, woo.merchant().id)
    assert report.failed == 1 and woo.balance() == 18
    with unit_of_work(woo.runtime.database) as session:
        failed = session.query(InboxEvent).filter_by(state="failed").one()
        assert "unknown status 'shipped'" in failed.reason
        assert json.loads(failed.payload)["status"] == "shipped"
    assert woo.merchant().sync_checkpoint is not None
    # The next run does not keep a second copy of the same failure.
    reconcile(woo.runtime, woo.merchant().id)
    with unit_of_work(woo.runtime.database) as session:
        assert session.query(InboxEvent).filter_by(state="failed").count() == 1


def test_two_reconciliations_of_one_store_never_overlap(woo: Woo) -> None:
    woo.connect()
    merchant_id = woo.merchant().id
    with exclusive(woo.runtime.database, f"woocommerce-reconcile:{merchant_id}") as mine:
        assert mine
        with pytest.raises(ReconcileBusy):
            reconcile(woo.runtime, merchant_id)
        assert "skipped" in run_reconcile(woo.runtime, merchant_id)
    assert "seen" in run_reconcile(woo.runtime, merchant_id)


def test_the_sweep_reconciles_only_stores_that_are_due(woo: Woo, monkeypatch: Any) -> None:
    woo.connect()
    queued: list[tuple[str, tuple[Any, ...]]] = []
    monkeypatch.setattr(woo.runtime.jobs, "enqueue", lambda name, *args: queued.append(
        (name, args)))
    checkpoint = woo.merchant().sync_checkpoint
    assert checkpoint is not None
    woocommerce_sweep(woo.runtime, checkpoint)
    assert queued == []
    woocommerce_sweep(woo.runtime, checkpoint.replace(year=checkpoint.year + 1))
    assert queued == [("woocommerce_reconcile", (woo.merchant().id,))]


def test_a_store_failing_during_the_first_sync_still_gets_its_keys_kept(woo: Woo,
                                                                        monkeypatch: Any) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the store's REST API crashed")

    monkeypatch.setattr("plugin_server.woocommerce.jobs.ensure_webhooks", broken)
    woo.connect()  # asserts the callback answered 200: WooCommerce keeps the keys
    assert woo.merchant().status == "active"


def test_a_refusal_of_replaced_keys_does_not_disconnect_the_new_ones(woo: Woo) -> None:
    from plugin_server.woocommerce.store_client import refused

    woo.connect()
    refused(woo.runtime, woo.merchant().id, "ck_an_older_key")
    assert woo.merchant().status == "active"


def test_a_firewall_page_does_not_disconnect_the_store(woo: Woo,
                                                       httpserver: HTTPServer) -> None:
    from integrations.woocommerce.client import WooError
    from plugin_server.woocommerce.connect import api_keys

    woo.connect()
    httpserver.clear_all_handlers()
    httpserver.expect_request(re.compile(".*")).respond_with_data(
        "<html><body>Access denied by the firewall</body></html>", status=403,
        content_type="text/html")
    with pytest.raises(WooError) as refused:
        reconcile(woo.runtime, woo.merchant().id)
    assert refused.value.code == "blocked"
    merchant = woo.merchant()
    assert merchant.status == "active"
    assert api_keys(merchant, woo.runtime.settings.ENCRYPTION_KEY) is not None


def test_production_connects_to_stores_only_at_public_addresses(tmp_path: Path) -> None:
    from plugin_server.woocommerce.store_client import client_for
    from tests.conftest import make_app

    settings = {"APP_URL": "https://loyalty.test", "SHOPIFY_API_KEY": "k",
                "SHOPIFY_API_SECRET": "s"}
    production = make_app(f"sqlite:///{tmp_path / 'p.sqlite3'}", LOYALTY_ENV="production",
                          **settings)
    development = make_app(f"sqlite:///{tmp_path / 'd.sqlite3'}", **settings)
    for app, public_only in ((production, True), (development, False)):
        client = client_for(app.extensions["loyalty"], "https://shop.example.com", "ck", "cs")
        assert client.public_only is public_only
        app.extensions["loyalty"].database.dispose()


def test_a_404_that_is_not_woocommerces_leaves_the_order_alone(woo: Woo,
                                                               httpserver: HTTPServer) -> None:
    from plugin_server.woocommerce.orders import refresh_order

    woo.connect()
    order = woo.fake.add_order(status="processing", **CUSTOMER)
    woo.deliver("order.created", order)
    httpserver.clear_all_handlers()  # a proxy in front of the store: "no route"
    httpserver.expect_request(re.compile(".*")).respond_with_json(
        {"code": "rest_no_route", "message": "No route was found"}, status=404)
    with pytest.raises(WooError):
        refresh_order(woo.runtime, woo.merchant().id, str(order["id"]))
    assert woo.balance() == 18


def test_a_store_down_while_a_deletion_is_read_still_acknowledges_it(woo: Woo) -> None:
    woo.connect()
    order = woo.fake.add_order(status="processing", **CUSTOMER)
    woo.deliver("order.created", order)
    woo.fake.fail_next = [503] * 10  # every retry of the read-back fails
    answer = woo.deliver("order.deleted", {"id": order["id"]})
    assert answer.status_code == 200 and answer.json["status"] == "stored"
    assert woo.balance() == 18  # nothing taken back on a guess
    woo.fake.fail_next = []
    _step(woo, order["id"], 1, status="trash")
    reconcile(woo.runtime, woo.merchant().id)  # the next period heals it
    assert woo.balance() == 0


def test_orders_leaving_the_listing_mid_run_shift_none_past_a_window(
        woo: Woo, monkeypatch: Any) -> None:
    from integrations.woocommerce.client import WooClient

    woo.connect()
    monkeypatch.setattr("plugin_server.woocommerce.jobs.PAGE_SIZE", 3)
    monkeypatch.setattr("plugin_server.woocommerce.jobs.WINDOW_OVERLAP", 1)
    ids = [woo.fake.add_order(status="processing", **CUSTOMER)["id"] for _ in range(10)]
    original = WooClient.orders_window
    windows: list[list[int]] = []

    def trashing_after_the_first(self: WooClient, *args: Any, **kwargs: Any) -> Any:
        documents, total = original(self, *args, **kwargs)
        windows.append([document["id"] for document in documents])
        if len(windows) == 1:  # two orders of the first window binned: more than the overlap
            for order_id in ids[:2]:
                woo.fake.update_order(order_id, status="trash")
        return documents, total

    monkeypatch.setattr(WooClient, "orders_window", trashing_after_the_first)
    report = reconcile(woo.runtime, woo.merchant().id)
    assert report.failed == 0
    assert woo.balance() == 18 * 8  # every order awarded once; the two binned taken back
    assert windows[0] == ids[:3]
    _consistent(woo)


def test_an_order_whose_refunds_cannot_be_read_fails_alone(woo: Woo, monkeypatch: Any) -> None:
    from integrations.woocommerce.client import WooClient

    woo.connect()
    broken = woo.fake.add_order(status="processing", **CUSTOMER)
    _refund_first_line(woo, broken["id"])
    woo.fake.add_order(status="processing", **CUSTOMER)
    original = WooClient.refunds

    def refunds(self: WooClient, order_id: str) -> Any:
        if order_id == str(broken["id"]):
            raise WooError("a plugin broke this order's refunds", status=400, code="bad")
        return original(self, order_id)

    monkeypatch.setattr(WooClient, "refunds", refunds)
    report = reconcile(woo.runtime, woo.merchant().id)
    assert (report.seen, report.failed) == (2, 1) and woo.balance() == 18
    with unit_of_work(woo.runtime.database) as session:
        failed = session.query(InboxEvent).filter_by(state="failed").one()
        assert "refunds cannot be read" in failed.reason
    # A store that is down stops the run instead: the checkpoint stays where it was.
    checkpoint = woo.merchant().sync_checkpoint

    def down(self: WooClient, order_id: str) -> Any:
        raise WooError("the store is down", status=503, code="woo_error")

    monkeypatch.setattr(WooClient, "refunds", down)
    _step(woo, broken["id"], 9)
    with pytest.raises(WooError):
        reconcile(woo.runtime, woo.merchant().id)
    assert woo.merchant().sync_checkpoint == checkpoint
