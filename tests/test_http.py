"""HTTP entry points of the foundation: GET /healthz and the landing page GET /."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

from plugin_server.db import unit_of_work
from plugin_server.demo import OrderSimulator, open_demo_store, push_orders
from plugin_server.demo_shopify import DemoShopify
from plugin_server.models import Member, Merchant, Order
from plugin_server.runtime import Runtime


def test_healthz_ok(any_app: Flask) -> None:
    answer = any_app.test_client().get("/healthz")
    assert answer.status_code == 200
    assert answer.get_json() == {"status": "ok"}
    assert answer.mimetype == "application/json"


def test_healthz_503_when_the_sqlite_file_cannot_be_opened(
        app: Flask, runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    unreachable = create_engine(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.sqlite3'}")
    monkeypatch.setattr(runtime.database, "engine", unreachable)
    answer = app.test_client().get("/healthz")
    assert answer.status_code == 503
    body = answer.get_json()
    assert body["status"] != "ok"
    assert str(tmp_path) not in answer.get_data(as_text=True)  # no internals leaked
    unreachable.dispose()


def test_healthz_503_when_postgres_refuses(app: Flask, runtime: Runtime,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    unreachable = create_engine("postgresql+psycopg://nobody:hunter2@127.0.0.1:1/loyalty",
                                connect_args={"connect_timeout": 2})
    monkeypatch.setattr(runtime.database, "engine", unreachable)
    answer = app.test_client().get("/healthz")
    assert answer.status_code == 503
    assert answer.get_json()["status"] != "ok"
    assert "hunter2" not in answer.get_data(as_text=True)
    unreachable.dispose()


def test_healthz_503_when_connect_raises(app: Flask, runtime: Runtime,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise OperationalError("SELECT 1", {}, Exception("disk I/O error"))

    monkeypatch.setattr(runtime.database.engine, "raw_connection", refuse)
    answer = app.test_client().get("/healthz")
    assert answer.status_code == 503
    monkeypatch.undo()
    assert app.test_client().get("/healthz").status_code == 200


def test_landing_page_without_a_demo_merchant(app: Flask, tmp_path: Path) -> None:
    answer = app.test_client().get("/")
    assert answer.status_code == 200
    assert answer.mimetype == "text/html"
    page = answer.get_data(as_text=True)
    assert "Loyalty server" in page
    assert "No demo merchant" in page
    assert "<code>test</code>" in page and "<code>sqlite</code>" in page
    assert str(tmp_path) not in page  # the database location is not shown


@pytest.fixture
def demo_store(app: Flask) -> Any:
    """The demo's Shopify stand-in, the demo shop installed through the real routes."""
    from plugin_server.web.demo_store import register_demo_store

    shopify = DemoShopify(app)
    shopify.start()
    register_demo_store(app, shopify)
    merchant_id = open_demo_store(shopify, reinstall=True)
    yield shopify, merchant_id
    shopify.stop()


def test_landing_page_shows_the_demo_program(app: Flask, runtime: Runtime,
                                             demo_store: Any) -> None:
    shopify, merchant_id = demo_store
    stored = push_orders(shopify, OrderSimulator(seed=3).orders(12, "T-"))
    assert stored >= 12
    with unit_of_work(runtime.database) as session:
        orders = session.query(Order).filter_by(merchant_id=merchant_id).count()
        members = session.query(Member).filter_by(merchant_id=merchant_id).count()
    assert orders == 12 and members > 0

    answer = app.test_client().get("/")
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    assert "Demo Tea House" in page
    assert "No demo merchant" not in page
    assert re.search(rf"<b>{orders}</b><span>orders</span>", page)
    assert re.search(rf"<b>{members}</b><span>members</span>", page)
    assert "Members by tier" in page and "Bronze" in page
    assert "Latest ledger entries" in page and "order #T-" in page
    assert "Storefront, as a shopper sees it" in page and 'href="/store"' in page
    # One click into the merchant admin (development only: refused in production).
    assert 'action="/admin/demo-login"' in page
    client = app.test_client()
    assert client.post("/admin/demo-login").status_code == 303
    assert "Demo Tea House" in client.get("/admin").get_data(as_text=True)


def test_landing_page_escapes_merchant_text(app: Flask, runtime: Runtime,
                                            demo_store: Any) -> None:
    shopify, merchant_id = demo_store
    with unit_of_work(runtime.database) as session:
        merchant = session.get(Merchant, merchant_id)
        assert merchant is not None
        merchant.name = '<script>alert("owned")</script>'
    evil = {"order_id": "1", "created_at": "2026-11-20T12:00:00Z",
            "updated_at": "2026-11-20T12:00:00Z", "currency": "USD", "total": "20",
            "paid": True, "customer": {"customer_id": "9", "email": "x@example.com",
                                       "first_name": "<img src=x onerror=alert(1)>"},
            "line_items": [{"line_id": "1", "quantity": 1, "unit_price": "20"}]}
    assert push_orders(shopify, iter([("orders/paid", "e1", evil)])) == 1
    page = app.test_client().get("/").get_data(as_text=True)
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert" in page
    assert "<img src=x" not in page
    with unit_of_work(runtime.database) as session:
        assert session.get(Merchant, merchant_id) is not None


def test_the_demo_opens_again_on_the_same_database(app: Flask, runtime: Runtime) -> None:
    """A second `loyalty demo` finds the shop installed: its new stand-in Shopify honours the
    token the first run got, so codes are still created through the Admin API."""
    from plugin_server.loyalty.adjustments import adjust_points

    first = DemoShopify(app)
    first.start()
    merchant_id = open_demo_store(first, reinstall=True)
    first.stop()
    second = DemoShopify(app)
    second.start()
    try:
        assert open_demo_store(second, reinstall=True) == merchant_id
        push_orders(second, OrderSimulator(seed=5).orders(1, "AGAIN-"))
        with unit_of_work(runtime.database) as session:
            member = session.query(Member).filter_by(merchant_id=merchant_id).first()
            assert member is not None and member.customer_id is not None
            customer = member.customer_id
        status, body = second.storefront("GET", "/api/program", customer)
        assert status == 200
        shipping = next(r for r in body["rewards"] if r["kind"] == "free_shipping")
        with unit_of_work(runtime.database) as session:
            adjust_points(session, merchant_id, member.id, shipping["points_cost"],
                          reason="test", actor="test")
        status, answer = second.storefront("POST", "/api/redeem", customer,
                                           {"reward_id": shipping["id"]},
                                           {"Idempotency-Key": "again-1"})
        assert status == 200, answer
        assert answer["redemption"]["code"]
    finally:
        second.stop()
