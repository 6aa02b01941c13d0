"""The admin's connection section: status, webhook deliveries and failures over 24 hours
(counted per topic, this merchant's only), the last reconciliation, and the re-sync button."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from flask import Flask

from plugin_server.admin.connection import connection_health
from plugin_server.db import unit_of_work
from plugin_server.models import AdminActivity, InboxEvent, Merchant, utcnow
from tests.support.admin import SHOP, WOO_STORE, csrf_token, merchant_named, signed_in_client


def _deliveries(app: Flask, shop: str, *events: tuple[str, str, int]) -> None:
    """(topic, state, hours ago) for each delivery."""
    merchant_id = merchant_named(app, shop).id
    with unit_of_work(app.extensions["loyalty"].database) as session:
        for number, (topic, state, hours) in enumerate(events):
            session.add(InboxEvent(
                merchant_id=merchant_id, platform="woocommerce", topic=topic,
                event_id=f"{shop}-{number}", payload=b"{}", state=state,
                reason="unknown status 'shipped'" if state == "failed" else "",
                received_at=utcnow() - timedelta(hours=hours)))


def _connect(app: Flask, shop: str) -> None:
    with unit_of_work(app.extensions["loyalty"].database) as session:
        merchant = session.query(Merchant).filter_by(shop=shop).one()
        merchant.credentials = b"sealed"
        merchant.sync_checkpoint = utcnow() - timedelta(minutes=7)


def test_deliveries_and_failures_over_24_hours(admin_app: Flask) -> None:
    _deliveries(admin_app, WOO_STORE, ("order.updated", "processed", 1),
                ("order.updated", "failed", 2), ("order.created", "processed", 3),
                ("order.created", "received", 0), ("order.updated", "processed", 30),
                ("order.updated", "failed", 40))
    _deliveries(admin_app, SHOP, ("orders/paid", "failed", 1))  # another merchant's
    with unit_of_work(admin_app.extensions["loyalty"].database) as session:
        health = connection_health(session, merchant_named(admin_app, WOO_STORE).id)
    assert (health.deliveries, health.failed, health.waiting) == (4, 1, 1)
    assert [(t.topic, t.received, t.failed) for t in health.topics] == [
        ("order.created", 2, 0), ("order.updated", 2, 1)]
    assert [f.reason for f in health.failures] == ["unknown status 'shipped'"]
    assert not health.can_resync  # no credentials: nothing to read from


def test_the_page_and_the_resync(admin_app: Flask, monkeypatch: Any) -> None:
    _connect(admin_app, WOO_STORE)
    queued: list[tuple[str, tuple[Any, ...]]] = []
    jobs = admin_app.extensions["loyalty"].jobs
    monkeypatch.setattr(jobs, "enqueue", lambda name, *args: queued.append((name, args)))
    client = signed_in_client(admin_app, WOO_STORE)
    page = client.get("/admin/view/connection").get_data(as_text=True)
    assert "Connected" in page and "Re-sync now" in page and "disabled" not in page
    assert client.post("/admin/connection/resync").status_code == 403  # no CSRF token
    assert queued == []
    answer = client.post("/admin/connection/resync", data={"csrf_token": csrf_token(client)})
    assert answer.status_code == 200 and "Re-sync started" in answer.get_data(as_text=True)
    merchant_id = merchant_named(admin_app, WOO_STORE).id
    assert queued == [("woocommerce_reconcile", (merchant_id,))]
    with unit_of_work(admin_app.extensions["loyalty"].database) as session:
        logged = session.query(AdminActivity).filter_by(merchant_id=merchant_id).one()
        assert logged.action == "connection.resync"
        assert json.loads(logged.detail_json) == {"job": "woocommerce_reconcile"}
    japanese = client.get("/admin/view/connection?lang=ja").get_data(as_text=True)
    assert "今すぐ再同期" in japanese


def test_a_store_that_is_not_connected_cannot_resync(admin_app: Flask, monkeypatch: Any) -> None:
    queued: list[str] = []
    jobs = admin_app.extensions["loyalty"].jobs
    monkeypatch.setattr(jobs, "enqueue", lambda name, *args: queued.append(name))
    client = signed_in_client(admin_app, SHOP)
    assert "disabled" in client.get("/admin/view/connection").get_data(as_text=True)
    answer = client.post("/admin/connection/resync", data={"csrf_token": csrf_token(client)})
    assert answer.status_code == 409 and "connect it again" in answer.get_data(as_text=True)
    assert queued == []
    assert admin_app.test_client().get("/admin/view/connection").status_code == 401
