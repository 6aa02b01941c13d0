"""WooClient against the stand-in store (FakeWooCommerce) on pytest-httpserver, over http, so
the ``woocommerce`` package signs with OAuth 1.0a as it does for real http stores."""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from integrations.woocommerce import client as client_module
from integrations.woocommerce.auth import ApiKeys
from integrations.woocommerce.client import CouponCodeTaken, WooAuthError, WooClient, WooError
from integrations.woocommerce.simulator import FakeWooCommerce

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(httpserver: HTTPServer, clock: Clock) -> FakeWooCommerce:
    fake = FakeWooCommerce(clock=clock)
    fake.serve_with(httpserver)
    return fake


@pytest.fixture
def keys(store: FakeWooCommerce) -> ApiKeys:
    return store.issue_keys()


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_client(store: FakeWooCommerce, keys: ApiKeys, sleeps: list[float],
                **options: Any) -> WooClient:
    return WooClient(store.base_url, keys.consumer_key, keys.consumer_secret,
                     sleep=sleeps.append, **{"timeout": 2.0, **options})


@pytest.fixture
def woo(store: FakeWooCommerce, keys: ApiKeys, sleeps: list[float]) -> WooClient:
    return make_client(store, keys, sleeps)


def test_orders_paged_by_modification(woo: WooClient, store: FakeWooCommerce,
                                      clock: Clock) -> None:
    ids = []
    for minute in range(5):
        clock.now = START + timedelta(minutes=minute)
        ids.append(store.add_order()["id"])
    clock.now = START + timedelta(minutes=10)
    store.update_order(ids[0], status="completed")  # now the most recently modified

    orders, pages = woo.orders_page(START + timedelta(minutes=2), page=1, per_page=2)
    assert [order["id"] for order in orders] == [ids[3], ids[4]]
    assert pages == 2
    orders, pages = woo.orders_page(START + timedelta(minutes=2), page=2, per_page=2)
    assert [order["id"] for order in orders] == [ids[0]]
    method, path, query = store.requests[-1]
    assert (method, path) == ("GET", "/wp-json/wc/v3/orders")
    assert query["modified_after"] == "2026-03-01T12:02:00"
    assert (query["orderby"], query["order"], query["dates_are_gmt"]) == ("modified", "asc",
                                                                          "true")
    assert "oauth_signature" not in query and query["oauth_consumer_key"]


def test_orders_from_the_beginning_and_empty(woo: WooClient, store: FakeWooCommerce) -> None:
    assert woo.orders_page(None, page=1) == ([], 0)
    store.add_order()
    orders, pages = woo.orders_page(None, page=1)
    assert len(orders) == 1 and pages == 1
    assert "modified_after" not in store.requests[-1][2]


def test_order_and_refunds(woo: WooClient, store: FakeWooCommerce) -> None:
    placed = store.add_order()
    store.add_refund(placed["id"], "3.00", lines=[(placed["line_items"][0]["id"], 1, "3.00")])
    assert woo.order(str(placed["id"]))["refunds"][0]["total"] == "-3.00"
    assert [refund["amount"] for refund in woo.refunds(str(placed["id"]))] == ["3.00"]
    with pytest.raises(WooError) as caught:
        woo.order("999999")
    assert caught.value.status == 404
    assert caught.value.code == "woocommerce_rest_shop_order_invalid_id"
    with pytest.raises(ValueError, match="numeric id"):
        woo.order("../webhooks")


def test_server_errors_are_retried_then_succeed(woo: WooClient, store: FakeWooCommerce,
                                                sleeps: list[float]) -> None:
    store.fail_next = [500, 503]
    assert woo.orders_page(None, page=1) == ([], 0)
    assert sleeps == [0.5, 1.0]


def test_server_errors_forever(store: FakeWooCommerce, keys: ApiKeys,
                               sleeps: list[float], caplog: pytest.LogCaptureFixture) -> None:
    woo = make_client(store, keys, sleeps, retries=2)
    store.fail_next = [502] * 10
    with caplog.at_level(logging.WARNING), pytest.raises(WooError) as caught:
        woo.orders_page(None, page=1)
    assert caught.value.status == 502 and not isinstance(caught.value, WooAuthError)
    assert len(store.requests) == 3 and len(sleeps) == 2
    assert keys.consumer_secret not in caplog.text + str(caught.value) + repr(woo)


def test_revoked_keys(woo: WooClient, store: FakeWooCommerce, sleeps: list[float]) -> None:
    store.revoke_keys()
    with pytest.raises(WooAuthError) as caught:
        woo.order("1")
    assert caught.value.status == 401 and caught.value.code == "woocommerce_rest_cannot_view"
    assert sleeps == []  # not retried


def test_duplicate_coupon(woo: WooClient, store: FakeWooCommerce) -> None:
    body = {"code": "LOYALAB12CD34EF", "discount_type": "fixed_cart", "amount": "5.00",
            "usage_limit": 1, "email_restrictions": ["a@example.com"]}
    created = woo.create_coupon(body)
    assert created["code"] == "loyalab12cd34ef" and created["usage_limit"] == 1
    with pytest.raises(CouponCodeTaken) as caught:
        woo.create_coupon(body)
    assert caught.value.status == 400
    assert len(store.coupons) == 1


def test_webhooks(woo: WooClient, store: FakeWooCommerce,
                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "WEBHOOKS_PER_PAGE", 2)
    made = [woo.create_webhook(topic=topic, delivery_url="https://app.test/webhooks/woocommerce/1",
                               secret="s3cret", name=f"Loyalty {topic}")
            for topic in ("order.created", "order.updated", "order.deleted")]
    assert store.webhook_secrets[made[0]["id"]] == "s3cret"
    assert store.pings[0] == ("https://app.test/webhooks/woocommerce/1",
                              f"webhook_id={made[0]['id']}".encode())
    assert [hook["topic"] for hook in woo.webhooks()] == ["order.created", "order.updated",
                                                         "order.deleted"]
    updated = woo.update_webhook(made[1]["id"], status="active", secret="n3w")
    assert updated["status"] == "active" and store.webhook_secrets[made[1]["id"]] == "n3w"


def test_webhook_creation_retries_only_sure_failures(woo: WooClient, store: FakeWooCommerce,
                                                     sleeps: list[float]) -> None:
    store.fail_next = [500]
    with pytest.raises(WooError):
        woo.create_webhook(topic="order.created", delivery_url="https://app.test/x",
                           secret="s", name="n")
    assert sleeps == [] and store.webhooks == {}
    store.fail_next = [503]  # WordPress in maintenance: nothing was created
    woo.create_webhook(topic="order.created", delivery_url="https://app.test/x", secret="s",
                       name="n")
    assert sleeps == [0.5] and len(store.webhooks) == 1


def test_timeouts(store: FakeWooCommerce, keys: ApiKeys, sleeps: list[float]) -> None:
    woo = make_client(store, keys, sleeps, timeout=0.1, retries=1)
    assert woo._api.timeout == 0.1  # handed to every requests call by the package
    store.delay = 0.3
    with pytest.raises(WooError) as caught:
        woo.orders_page(None, page=1)
    assert caught.value.code == "network_error" and caught.value.status is None
    assert sleeps == [0.5]
    with pytest.raises(ValueError, match="timeout"):
        WooClient(store.base_url, keys.consumer_key, keys.consumer_secret, timeout=0)


def test_unreachable_store(keys: ApiKeys, sleeps: list[float]) -> None:
    woo = WooClient("http://127.0.0.1:9", keys.consumer_key, keys.consumer_secret,
                    timeout=1.0, retries=1, sleep=sleeps.append)
    with pytest.raises(WooError, match="could not reach") as caught:
        woo.order("1")
    assert caught.value.code == "network_error" and sleeps == [0.5]


def test_answers_that_are_not_json(httpserver: HTTPServer, sleeps: list[float]) -> None:
    httpserver.expect_request("/wp-json/wc/v3/orders/1").respond_with_data(
        "<html>Maintenance</html>", content_type="text/html")
    woo = WooClient(httpserver.url_for("/").rstrip("/"), "ck_x", "cs_y", sleep=sleeps.append)
    with pytest.raises(WooError, match="not JSON") as caught:
        woo.order("1")
    assert caught.value.code == "not_json"


def test_redirects_are_not_followed(httpserver: HTTPServer, sleeps: list[float]) -> None:
    httpserver.expect_request("/wp-json/wc/v3/orders/1").respond_with_data(
        "", status=301, headers={"Location": "https://elsewhere.example/wp-json/wc/v3/orders/1"})
    woo = WooClient(httpserver.url_for("/").rstrip("/"), "ck_x", "cs_y", sleep=sleeps.append)
    with pytest.raises(WooError, match=r"elsewhere\.example") as caught:
        woo.order("1")
    assert caught.value.code == "redirect" and len(httpserver.log) == 1


# ---- the fake's other ways in ----------------------------------------------------------------

def test_fake_accepts_basic_and_query_string_keys(store: FakeWooCommerce,
                                                  keys: ApiKeys) -> None:
    basic = base64.b64encode(f"{keys.consumer_key}:{keys.consumer_secret}".encode()).decode()
    status, _, _ = store.handle("GET", "/wp-json/wc/v3/orders", {},
                                {"Authorization": f"Basic {basic}"}, b"")
    assert status == 200
    query = {"consumer_key": keys.consumer_key, "consumer_secret": keys.consumer_secret}
    assert store.handle("GET", "/wp-json/wc/v3/orders", query, {}, b"")[0] == 200
    assert "consumer_secret" not in store.requests[-1][2]
    wrong = base64.b64encode(f"{keys.consumer_key}:cs_wrong".encode()).decode()
    status, _, body = store.handle("GET", "/wp-json/wc/v3/orders", {},
                                   {"authorization": f"basic {wrong}"}, b"")
    assert (status, body["code"]) == (401, "woocommerce_rest_cannot_view")
    assert store.handle("GET", "/wp-json/wc/v3/orders", {}, {}, b"")[0] == 401


def test_fake_as_wsgi(store: FakeWooCommerce, keys: ApiKeys) -> None:
    from werkzeug.test import Client

    store.add_order()
    response = Client(store.wsgi).get(
        "/wp-json/wc/v3/orders", query_string={"consumer_key": keys.consumer_key,
                                               "consumer_secret": keys.consumer_secret})
    assert response.status_code == 200 and response.headers["X-WP-Total"] == "1"
    assert len(response.get_json()) == 1
