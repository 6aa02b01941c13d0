"""WooClient against the stand-in store (FakeWooCommerce) on pytest-httpserver, over http, so
the ``woocommerce`` package signs with OAuth 1.0a as it does for real http stores."""

from __future__ import annotations

import base64
import logging
import socket
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

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


def test_orders_modified_after_a_date_in_id_order(woo: WooClient, store: FakeWooCommerce,
                                                  clock: Clock) -> None:
    ids = []
    for minute in range(5):
        clock.now = START + timedelta(minutes=minute)
        ids.append(store.add_order()["id"])
    clock.now = START + timedelta(minutes=10)
    store.update_order(ids[0], status="completed")  # modified again: in the set, at its place

    orders, total = woo.orders_window(START + timedelta(minutes=2), offset=0, limit=2)
    assert [order["id"] for order in orders] == [ids[0], ids[3]]
    assert total == 3
    orders, total = woo.orders_window(START + timedelta(minutes=2), offset=1, limit=2)
    assert [order["id"] for order in orders] == [ids[3], ids[4]]
    method, path, query = store.requests[-1]
    assert (method, path) == ("GET", "/wp-json/wc/v3/orders")
    assert query["modified_after"] == "2026-03-01T12:02:00"
    assert (query["orderby"], query["order"], query["dates_are_gmt"]) == ("id", "asc", "true")
    assert (query["offset"], query["per_page"]) == ("1", "2")
    assert "oauth_signature" not in query and query["oauth_consumer_key"]


def test_an_order_modified_mid_run_shifts_no_other_past_a_window(
        woo: WooClient, store: FakeWooCommerce, clock: Clock) -> None:
    ids = []
    for minute in range(6):
        clock.now = START + timedelta(minutes=minute)
        ids.append(store.add_order()["id"])
    since = START - timedelta(minutes=1)  # one filter for the whole run
    seen, total = woo.orders_window(since, offset=0, limit=2)
    assert total == 6
    clock.now = START + timedelta(minutes=30)
    store.update_order(seen[0]["id"], status="completed")  # first in modification order before
    for offset in (2, 4):
        seen += woo.orders_window(since, offset=offset, limit=2)[0]
    assert [order["id"] for order in seen] == ids


def test_orders_from_the_beginning_and_empty(woo: WooClient, store: FakeWooCommerce) -> None:
    assert woo.orders_window(None, offset=0) == ([], 0)
    store.add_order()
    orders, total = woo.orders_window(None, offset=0)
    assert len(orders) == 1 and total == 1
    assert "modified_after" not in store.requests[-1][2]
    with pytest.raises(ValueError, match="offset"):
        woo.orders_window(None, offset=-1)


def test_orders_in_the_trash_are_listed_only_when_asked_for(woo: WooClient,
                                                            store: FakeWooCommerce) -> None:
    kept, binned = store.add_order(), store.add_order()
    store.update_order(binned["id"], status="trash")
    assert [order["id"] for order in woo.orders_window(None, offset=0)[0]] == [kept["id"]]
    assert store.requests[-1][2]["status"] == "any"
    trash, _ = woo.orders_window(None, offset=0, status="trash")
    assert [order["id"] for order in trash] == [binned["id"]]
    with pytest.raises(ValueError, match="status"):
        woo.orders_window(None, offset=0, status="any&orderby=date")


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
    assert woo.orders_window(None, offset=0) == ([], 0)
    assert sleeps == [0.5, 1.0]


def test_server_errors_forever(store: FakeWooCommerce, keys: ApiKeys,
                               sleeps: list[float], caplog: pytest.LogCaptureFixture) -> None:
    woo = make_client(store, keys, sleeps, retries=2)
    store.fail_next = [502] * 10
    with caplog.at_level(logging.WARNING), pytest.raises(WooError) as caught:
        woo.orders_window(None, offset=0)
    assert caught.value.status == 502 and not isinstance(caught.value, WooAuthError)
    assert len(store.requests) == 3 and len(sleeps) == 2
    assert keys.consumer_secret not in caplog.text + str(caught.value) + repr(woo)


def test_revoked_keys(woo: WooClient, store: FakeWooCommerce, sleeps: list[float],
                      keys: ApiKeys) -> None:
    store.revoke_keys()
    with pytest.raises(WooAuthError) as caught:
        woo.order("1")
    assert caught.value.status == 401 and caught.value.code == "woocommerce_rest_cannot_view"
    assert sleeps == []  # not retried
    assert woo.consumer_key == keys.consumer_key  # the caller can tell which key was refused
    assert keys.consumer_key not in repr(woo) + str(caught.value)


@pytest.mark.parametrize(("status", "body", "refused_keys"), [
    (401, {"code": "woocommerce_rest_authentication_error", "message": "Consumer key is "
           "invalid."}, True),
    (401, {"code": "rest_not_logged_in"}, True),
    (403, {"code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot list"}, True),
    (403, {"code": "rest_forbidden"}, True),
    (403, {"code": "rest_cannot_edit"}, True),
    (403, "<html><title>Attention Required! | Cloudflare</title></html>", False),
    (401, "<html>401 Authorization Required</html>", False),  # a staging site's htpasswd
    (403, {"code": "wordfence_blocked"}, False),
    (403, {"title": "Error 1020: Access denied", "status": 403}, False),
    (401, {"code": 401}, False),
])
def test_only_wordpress_refusing_the_keys_is_an_auth_error(
        httpserver: HTTPServer, sleeps: list[float], status: int, body: Any,
        refused_keys: bool) -> None:
    if isinstance(body, dict):
        httpserver.expect_request("/wp-json/wc/v3/orders/1").respond_with_json(body, status)
    else:
        httpserver.expect_request("/wp-json/wc/v3/orders/1").respond_with_data(
            body, status, content_type="text/html")
    woo = WooClient(httpserver.url_for("/").rstrip("/"), "ck_x", "cs_y", sleep=sleeps.append)
    with pytest.raises(WooError) as caught:
        woo.order("1")
    assert isinstance(caught.value, WooAuthError) is refused_keys
    assert caught.value.status == status
    if not refused_keys:
        assert caught.value.code == "blocked" and "firewall" in str(caught.value)
    assert len(httpserver.log) == 1 and sleeps == []  # not retried either way


def test_duplicate_coupon(woo: WooClient, store: FakeWooCommerce) -> None:
    body = {"code": "LOYALAB12CD34EF", "discount_type": "fixed_cart", "amount": "5.00",
            "usage_limit": 1, "email_restrictions": ["a@example.com"]}
    created = woo.create_coupon(body)
    assert created["code"] == "loyalab12cd34ef" and created["usage_limit"] == 1
    for code in ("LOYALAB12CD34EF", "loyalab12cd34ef"):  # codes compare without case
        with pytest.raises(CouponCodeTaken) as caught:
            woo.create_coupon({**body, "code": code})
        assert caught.value.status == 400
    assert len(store.coupons) == 1


def test_coupon_by_code(woo: WooClient, store: FakeWooCommerce) -> None:
    marker = [{"key": "_loyalty_redemption", "value": "7"}]
    woo.create_coupon({"code": "LOYAL-OTHER", "amount": "1.00"})
    created = woo.create_coupon({"code": "LOYAL-AB12", "amount": "5.00", "meta_data": marker})
    for asked in ("LOYAL-AB12", "loyal-ab12"):
        found = woo.coupon_by_code(asked)
        assert found is not None and found["id"] == created["id"]
        assert found["meta_data"] == marker
        assert store.requests[-1][2]["code"] == asked
    assert woo.coupon_by_code("LOYAL-NONE") is None


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
    store.delay = 0.3
    with pytest.raises(WooError) as caught:
        woo.orders_window(None, offset=0)
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


def test_cookies_a_store_sets_are_not_sent_back(httpserver: HTTPServer,
                                                sleeps: list[float]) -> None:
    httpserver.expect_request("/wp-json/wc/v3/orders/1").respond_with_json(
        {"id": 1}, headers={"Set-Cookie": "wordpress_logged_in=x; Path=/"})
    woo = WooClient(httpserver.url_for("/").rstrip("/"), "ck_x", "cs_y", sleep=sleeps.append)
    woo.order("1")
    woo.order("1")
    assert [request.headers.get("Cookie") for request, _ in httpserver.log] == [None, None]


# ---- public addresses only (production) ------------------------------------------------------

def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> None:
    """``getaddrinfo`` answers ``answers`` for those names (as a hostile DNS would)."""
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in answers:
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, int(port), 0, 0))
                if ":" in address else
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))
                for address in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_a_public_name_resolving_to_loopback_is_refused(
        store: FakeWooCommerce, keys: ApiKeys, sleeps: list[float], httpserver: HTTPServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {"shop.example.com": ["127.0.0.1"]})
    url = f"http://shop.example.com:{urlsplit(store.base_url).port}"
    placed = store.add_order()
    pinned = WooClient(url, keys.consumer_key, keys.consumer_secret, sleep=sleeps.append,
                       public_only=True)
    with pytest.raises(WooError) as caught:
        pinned.order(str(placed["id"]))
    assert caught.value.code == "forbidden_address" and caught.value.status is None
    assert "shop.example.com" in str(caught.value)
    assert "127.0.0.1 is a loopback address" in str(caught.value)
    assert httpserver.log == [] and store.requests == [] and sleeps == []
    # The same name, allowed to resolve anywhere (development), reaches the fake store.
    anywhere = WooClient(url, keys.consumer_key, keys.consumer_secret, sleep=sleeps.append)
    assert anywhere.order(str(placed["id"]))["id"] == placed["id"]
    assert len(store.requests) == 1


def test_one_private_address_among_public_ones_is_refused(
        keys: ApiKeys, sleeps: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {"shop.example.com": ["93.184.215.14", "10.0.0.5"]})
    pinned = WooClient("https://shop.example.com", keys.consumer_key, keys.consumer_secret,
                       sleep=sleeps.append, public_only=True, timeout=1.0)
    with pytest.raises(WooError, match=r"10\.0\.0\.5 is a private address") as caught:
        pinned.order("1")
    assert caught.value.code == "forbidden_address" and sleeps == []


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
