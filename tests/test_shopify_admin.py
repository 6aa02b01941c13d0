"""The Admin API client against a local fake of Shopify (pytest-httpserver on loopback)."""

from __future__ import annotations

import importlib
import socket
import time
import types
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from integrations.shopify.admin import (
    MIN_THROTTLE_WAIT,
    AdminClient,
    AdminError,
    AdminForbidden,
    AdminQueryError,
    AdminThrottled,
    AdminUnauthorized,
    AdminUnavailable,
    InvalidShop,
    ShopifyConfig,
    http_client,
    throttle_wait,
)
from integrations.shopify.shop import WEBHOOK_TOPICS, ShopInfo, fetch_shop, register_webhooks

SHOP = "loyal-test.myshopify.com"
TOKEN = "shpat_secret_token_value"
GRAPHQL = "/admin/api/2026-01/graphql.json"


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def make_config(httpserver: HTTPServer, **overrides: Any) -> ShopifyConfig:
    values: dict[str, Any] = {
        "api_key": "app-key", "api_secret": "app-secret",
        "url_override": httpserver.url_for("/").rstrip("/"), "timeout": 2.0, "max_retries": 3,
    }
    values.update(overrides)
    return ShopifyConfig(**values)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def admin(httpserver: HTTPServer, sleeps: Sleeps) -> Any:
    with AdminClient(make_config(httpserver), SHOP, TOKEN, sleep=sleeps) as client:
        yield client


def throttled_body(requested: int, available: int, restore_rate: float) -> dict[str, Any]:
    return {
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
        "extensions": {"cost": {
            "requestedQueryCost": requested, "actualQueryCost": None,
            "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": available,
                               "restoreRate": restore_rate},
        }},
    }


def test_override_sends_graphql_to_the_fake(httpserver: HTTPServer, admin: AdminClient) -> None:
    httpserver.expect_request(
        GRAPHQL, method="POST", headers={"X-Shopify-Access-Token": TOKEN},
        json={"query": "query { shop { id } }", "variables": {"a": 1}},
    ).respond_with_json({"data": {"shop": {"id": "gid://shopify/Shop/1"}}})

    data = admin.execute("query { shop { id } }", {"a": 1})

    assert data == {"shop": {"id": "gid://shopify/Shop/1"}}
    request, _ = httpserver.log[0]
    assert request.headers["X-Forwarded-Host"] == SHOP
    httpserver.check_assertions()


def test_override_keeps_path_and_query_under_a_prefix(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/fake/admin/oauth/x", query_string="a=1&b=%20").respond_with_data(
        "ok")
    config = make_config(httpserver, url_override=httpserver.url_for("/fake/"))
    with http_client(config) as client:
        response = client.get(f"https://{SHOP}/admin/oauth/x?a=1&b=%20")
    assert response.text == "ok"
    httpserver.check_assertions()


def test_override_must_be_an_http_base() -> None:
    with pytest.raises(ValueError, match="url_override"):
        ShopifyConfig(api_key="k", api_secret="s", url_override="ftp://example")
    with pytest.raises(ValueError, match="query"):
        ShopifyConfig(api_key="k", api_secret="s", url_override="http://127.0.0.1:1/?x=1")


def test_graphql_errors_raise_query_error(httpserver: HTTPServer, admin: AdminClient) -> None:
    errors = [{"message": "Field 'nope' doesn't exist on type 'Shop'",
               "extensions": {"code": "undefinedField"}}]
    httpserver.expect_request(GRAPHQL).respond_with_json({"errors": errors})

    with pytest.raises(AdminQueryError) as caught:
        admin.execute("query { shop { nope } }")

    assert caught.value.errors == errors
    assert "doesn't exist" in str(caught.value)
    assert len(httpserver.log) == 1  # a wrong query is never retried


def test_throttled_waits_the_computed_time_then_succeeds(
        httpserver: HTTPServer, admin: AdminClient, sleeps: Sleeps) -> None:
    httpserver.expect_ordered_request(GRAPHQL).respond_with_json(throttled_body(50, 10, 50.0))
    httpserver.expect_ordered_request(GRAPHQL).respond_with_json({"data": {"ok": True}})

    assert admin.execute("query { ok }") == {"ok": True}
    assert sleeps.calls == [pytest.approx(0.8)]
    httpserver.check_assertions()


def test_throttled_until_the_retries_run_out(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    httpserver.expect_request(GRAPHQL).respond_with_json(throttled_body(100, 100, 50.0))
    config = make_config(httpserver, max_retries=2)
    with AdminClient(config, SHOP, TOKEN, sleep=sleeps) as client, \
            pytest.raises(AdminThrottled):
        client.execute("query { ok }")
    assert len(httpserver.log) == 3
    # Nothing is missing from the bucket, yet the wait never drops to a busy loop.
    assert sleeps.calls == [MIN_THROTTLE_WAIT, MIN_THROTTLE_WAIT]


def test_throttle_wait_without_figures_falls_back() -> None:
    assert throttle_wait({}) == 1.0
    assert throttle_wait(throttled_body(1000, 0, 50.0)) == 20.0
    assert throttle_wait(throttled_body(10**6, 0, 1.0)) == 30.0  # capped


def test_http_500_is_retried(httpserver: HTTPServer, admin: AdminClient, sleeps: Sleeps) -> None:
    httpserver.expect_ordered_request(GRAPHQL).respond_with_data("oops", status=500)
    httpserver.expect_ordered_request(GRAPHQL).respond_with_json({"data": {"ok": 1}})

    assert admin.execute("query { ok }") == {"ok": 1}
    assert sleeps.calls == [0.5]
    httpserver.check_assertions()


def test_http_500_forever_is_unavailable(httpserver: HTTPServer, admin: AdminClient,
                                         sleeps: Sleeps) -> None:
    httpserver.expect_request(GRAPHQL).respond_with_data("oops", status=500)

    with pytest.raises(AdminUnavailable) as caught:
        admin.execute("query { ok }")

    assert caught.value.code == "http_error_500"
    assert len(httpserver.log) == 4  # one try and max_retries=3 retries
    assert sleeps.calls == [0.5, 1.0, 2.0]


def test_http_503_uses_the_package_retries(httpserver: HTTPServer, admin: AdminClient,
                                           sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    package_sleeps = Sleeps()
    module = importlib.import_module("shopify_app.graphql.admin_graphql")
    monkeypatch.setattr(module, "time", types.SimpleNamespace(sleep=package_sleeps))
    httpserver.expect_request(GRAPHQL).respond_with_data("down", status=503)

    with pytest.raises(AdminUnavailable) as caught:
        admin.execute("query { ok }")

    assert caught.value.code == "http_error_503"
    assert len(httpserver.log) == 4
    assert len(package_sleeps.calls) == 3
    assert sleeps.calls == []  # not retried a second time on top of the package


def test_401_is_unauthorized(httpserver: HTTPServer, admin: AdminClient) -> None:
    httpserver.expect_request(GRAPHQL).respond_with_json(
        {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"},
        status=401)
    with pytest.raises(AdminUnauthorized) as caught:
        admin.execute("query { ok }")
    assert TOKEN not in str(caught.value)
    assert TOKEN not in repr(admin)


def test_403_is_forbidden(httpserver: HTTPServer, admin: AdminClient) -> None:
    httpserver.expect_request(GRAPHQL).respond_with_data("Forbidden", status=403)
    with pytest.raises(AdminForbidden):
        admin.execute("query { ok }")
    assert len(httpserver.log) == 1


def test_other_http_errors_are_admin_errors(httpserver: HTTPServer, admin: AdminClient) -> None:
    httpserver.expect_request(GRAPHQL).respond_with_data("Payment Required", status=402)
    with pytest.raises(AdminError) as caught:
        admin.execute("query { ok }")
    assert caught.value.code == "http_error_402"


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_network_error_is_unavailable_quickly(sleeps: Sleeps) -> None:
    config = ShopifyConfig(api_key="k", api_secret="s", timeout=1.0, max_retries=2,
                           url_override=f"http://127.0.0.1:{closed_port()}")
    started = time.monotonic()
    with AdminClient(config, SHOP, TOKEN, sleep=sleeps) as client, \
            pytest.raises(AdminUnavailable) as caught:
        client.execute("query { ok }")
    assert caught.value.code == "network_error"
    assert time.monotonic() - started < 5
    assert sleeps.calls == [0.5, 1.0]


def test_timeout_is_honoured(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    def slow(_request: Any) -> Response:
        time.sleep(0.6)
        return Response("{}", content_type="application/json")

    httpserver.expect_request(GRAPHQL).respond_with_handler(slow)
    config = make_config(httpserver, timeout=0.1, max_retries=0)
    started = time.monotonic()
    with AdminClient(config, SHOP, TOKEN, sleep=sleeps) as client, \
            pytest.raises(AdminUnavailable):
        client.execute("query { ok }")
    assert time.monotonic() - started < 0.5
    # Let the slow handler finish so its log entry cannot land in the next test's log.
    deadline = time.monotonic() + 3
    while not httpserver.log and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.parametrize("shop", ["evil.com", "a.myshopify.com.evil.com", "a.myshopify.com/x",
                                  "https://a.myshopify.com"])
def test_client_refuses_a_bad_shop(httpserver: HTTPServer, shop: str) -> None:
    with pytest.raises(InvalidShop):
        AdminClient(make_config(httpserver), shop, TOKEN)


def test_fetch_shop(httpserver: HTTPServer, admin: AdminClient) -> None:
    httpserver.expect_request(GRAPHQL).respond_with_json({"data": {"shop": {
        "name": "Loyal Test", "currencyCode": "JPY", "ianaTimezone": "Asia/Tokyo",
        "email": "owner@example.com", "myshopifyDomain": SHOP,
    }}})
    assert fetch_shop(admin) == ShopInfo(name="Loyal Test", currency="JPY",
                                         iana_timezone="Asia/Tokyo", email="owner@example.com",
                                         domain=SHOP)
    query = httpserver.log[0][0].get_json()["query"]
    for field in ("name", "currencyCode", "ianaTimezone", "email", "myshopifyDomain"):
        assert field in query


def test_register_webhooks(httpserver: HTTPServer, admin: AdminClient) -> None:
    url = "https://loyalty.example.com/webhooks/shopify"
    for number, topic in enumerate(WEBHOOK_TOPICS.values()):
        if topic == "ORDERS_PAID":
            payload = {"webhookSubscription": None, "userErrors": [
                {"field": ["webhookSubscription", "uri"],
                 "message": "Address for this topic has already been taken"}]}
        else:
            payload = {"webhookSubscription": {"id": f"gid://shopify/WebhookSubscription/{number}"},
                       "userErrors": []}
        httpserver.expect_ordered_request(GRAPHQL).respond_with_json(
            {"data": {"webhookSubscriptionCreate": payload}})

    ids = register_webhooks(admin, url)

    assert len(ids) == len(WEBHOOK_TOPICS) - 1
    sent = [request.get_json()["variables"] for request, _ in httpserver.log]
    assert sent == [{"topic": topic, "webhookSubscription": {"uri": url, "format": "JSON"}}
                    for topic in WEBHOOK_TOPICS.values()]
    httpserver.check_assertions()


def test_register_webhooks_raises_other_user_errors(httpserver: HTTPServer,
                                                    admin: AdminClient) -> None:
    httpserver.expect_request(GRAPHQL).respond_with_json({"data": {"webhookSubscriptionCreate": {
        "webhookSubscription": None,
        "userErrors": [{"field": ["webhookSubscription", "uri"], "message": "Address is invalid"}],
    }}})
    with pytest.raises(AdminQueryError) as caught:
        register_webhooks(admin, "http://insecure.example.com/hooks")
    assert caught.value.errors[0]["message"] == "Address is invalid"
