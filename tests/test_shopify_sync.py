"""History import (bulk operation) and reconciliation against the fake Shopify, and the
operator commands that show and run them: ``imports``, ``reconcile``, ``merchant``."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from integrations.shopify.simulated_payloads import graphql_order
from plugin_server.db import unit_of_work
from plugin_server.loyalty.program import ensure_settings, get_merchant
from plugin_server.models import ImportRun, Order, utcnow
from tests.support.builders import customer, line, order
from tests.support.shopify import SHOP, ShopifyStore, fake_shopify, shopify_store

__all__ = ["fake_shopify", "shopify_store"]


def cli(store: ShopifyStore, *args: str) -> Any:
    with store.app.app_context():
        return store.app.test_cli_runner().invoke(args=list(args))


def past_order(order_id: str, amount: str, customer_id: str, days_ago: int = 10):
    placed = utcnow() - timedelta(days=days_ago)
    return order(order_id, line("1", amount), who=customer(customer_id, f"{customer_id}@ex.com"),
                 created_at=placed, updated_at=placed, currency="EUR")


def test_history_import_records_past_orders_without_points(store: ShopifyStore) -> None:
    store.fake.orders = [graphql_order(past_order(str(4000 + i), "25.00", f"80{i % 2}"))
                         for i in range(5)]
    store.fake.orders.append({"id": "gid://shopify/Order/4999", "name": "#broken"})
    merchant_id = store.install()
    with unit_of_work(store.runtime.database) as session:
        run = session.execute(select(ImportRun)).scalar_one()
        assert (run.state, run.processed, run.failed, run.award_points) == (
            "completed", 5, 1, False)
        assert session.execute(select(func.count(Order.id)).where(
            Order.merchant_id == merchant_id)).scalar_one() == 5
    assert store.proxy("GET", "/api/me", "800").json["balance"] == 0
    # The bulk query asked only for orders placed before the install.
    bulk = next(data for kind, _shop, data in store.fake.requests
                if kind == "graphql" and "bulkOperationRunQuery" in data["query"])
    assert "created_at:<" in json.dumps(bulk["variables"])

    shown = cli(store, "imports", SHOP, "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)[0] | {"started_at": None, "finished_at": None} == {
        "id": run.id, "merchant": merchant_id, "kind": "history", "state": "completed",
        "award_points": False, "total": 6, "processed": 5, "failed": 1, "percent": 100,
        "error": "", "started_at": None, "finished_at": None}


def test_merchant_may_choose_to_award_past_orders(store: ShopifyStore) -> None:
    store.fake.orders = [graphql_order(past_order("4100", "40.00", "810"))]
    merchant_id = store.install()
    assert store.proxy("GET", "/api/me", "810").json["balance"] == 0
    started = cli(store, "imports", SHOP, "--award-past-orders", "yes", "--start", "--json")
    assert started.exit_code == 0, started.output
    assert [row["state"] for row in json.loads(started.output)] == ["completed", "completed"]
    assert store.proxy("GET", "/api/me", "810").json["balance"] == 40
    with unit_of_work(store.runtime.database) as session:
        assert ensure_settings(session, get_merchant(session, merchant_id)).award_past_orders


def test_reconcile_heals_a_missed_delivery(store: ShopifyStore) -> None:
    store.install()
    now = utcnow()
    missed = replace(past_order("4200", "55.00", "820"), created_at=now, updated_at=now,
                     paid=True)
    store.fake.orders = [graphql_order(missed)]
    first = cli(store, "reconcile", SHOP, "--json")
    assert first.exit_code == 0, first.output
    report = json.loads(first.output)["reconciled"][0]
    assert (report["merchant"], report["seen"], report["healed"]) == (SHOP, 1, 1)
    assert store.proxy("GET", "/api/me", "820").json["balance"] == 55
    again = json.loads(cli(store, "reconcile", "--json").output)["reconciled"][0]
    assert (again["seen"], again["healed"]) == (1, 0)
    # The search asked for orders changed since the checkpoint.
    page = [data for kind, _shop, data in store.fake.requests
            if kind == "graphql" and "orders(" in data["query"]][-1]
    assert page["variables"]["search"].startswith("updated_at:>=")


def test_merchant_command_and_failures(store: ShopifyStore) -> None:
    merchant_id = store.install()
    shown = cli(store, "merchant", SHOP, "--json")
    assert shown.exit_code == 0, shown.output
    details = json.loads(shown.output)
    assert details["id"] == merchant_id and details["platform"] == "shopify"
    assert details["status"] == "active" and details["connected"] is True
    assert details["currency"] == "EUR" and details["installed_at"]
    unknown = cli(store, "merchant", "nowhere.myshopify.com", "--json")
    assert unknown.exit_code == 1 and "no merchant" in unknown.output
    store.webhook("app/uninstalled", {"id": 1})
    broken = cli(store, "reconcile", str(merchant_id))
    assert broken.exit_code == 1 and "install" in broken.output


def test_data_request_is_handed_to_the_merchant_as_json(store: ShopifyStore) -> None:
    store.install()
    now = utcnow()
    bought = replace(past_order("4300", "12.00", "830"), created_at=now, updated_at=now)
    from integrations.shopify.simulated_payloads import rest_order
    from tests.support.fixtures import shopify_webhook

    store.webhook("orders/paid", rest_order(bought))
    request = shopify_webhook("customers/data_request")
    request["shop_domain"] = SHOP
    request["customer"] = {"id": 830, "email": "830@ex.com", "phone": None}
    request["orders_requested"] = [4300]
    assert store.webhook("customers/data_request", request).status_code == 200
    shown = cli(store, "data-requests", SHOP, "--json")
    assert shown.exit_code == 0, shown.output
    (row,) = json.loads(shown.output)
    assert row["customer_id"] == "830" and row["email"] == "830@ex.com"
    assert row["data"]["members"][0]["balance"] == 12
    assert row["data"]["members"][0]["ledger"][0]["kind"] == "award"
    assert row["data"]["orders"][0]["order_id"] == "4300"


def test_an_order_reconcile_cannot_read_keeps_the_checkpoint(store: ShopifyStore) -> None:
    merchant_id = store.install()
    with unit_of_work(store.runtime.database) as session:
        before = get_merchant(session, merchant_id).sync_checkpoint
    store.fake.orders = [{"id": "gid://shopify/Order/4400", "name": "#broken"}]
    report = json.loads(cli(store, "reconcile", SHOP, "--json").output)["reconciled"][0]
    assert (report["seen"], report["failed"]) == (1, 1)
    with unit_of_work(store.runtime.database) as session:
        assert get_merchant(session, merchant_id).sync_checkpoint == before
