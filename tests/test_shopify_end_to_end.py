"""The Shopify app from the outside, against a local fake Shopify: install, orders/paid,
balance through the App Proxy, redeem (the exact mutation input Shopify received),
refunds/create, the reversal, app/uninstalled, and a reinstall that keeps everything."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select

from integrations.shopify.simulated_payloads import rest_order, rest_refund
from integrations.shopify.simulator import FakeShopify
from plugin_server.db import unit_of_work
from plugin_server.loyalty.audit import ledger_differences
from plugin_server.models import Merchant, utcnow
from tests.conftest import make_app
from tests.support.builders import customer, line, order, refund
from tests.support.shopify import ShopifyStore, fake_shopify, shopify_overrides

__all__ = ["fake_shopify"]  # the fixture, for pytest


@pytest.fixture
def store(any_database: str, httpserver: HTTPServer,
          fake_shopify: FakeShopify) -> Iterator[ShopifyStore]:
    """The app on SQLite, then on PostgreSQL, talking to the fake Shopify."""
    app = make_app(any_database, **shopify_overrides(httpserver))
    yield ShopifyStore(app=app, client=app.test_client(), fake=fake_shopify)
    app.extensions["loyalty"].database.dispose()


def paid_order(order_id: str, amount: str, customer_id: str = "7001"):
    now = utcnow()
    return order(order_id, line("11", amount), line("12", "20.00"),
                 who=customer(customer_id, "ana@example.com"),
                 created_at=now, updated_at=now, currency="EUR")


def test_install_to_reinstall(store: ShopifyStore) -> None:
    fake = store.fake
    merchant_id = store.install()

    # The install exchanged the code for an expiring offline token, stored it encrypted,
    # read the shop and subscribed to every topic.
    grant = next(data for kind, _shop, data in fake.requests if kind == "token")
    assert grant["expiring"] in (1, "1") and grant["client_id"] == "test-api-key"
    with unit_of_work(store.runtime.database) as session:
        merchant = session.get(Merchant, merchant_id)
        assert merchant is not None
        assert (merchant.name, merchant.currency, merchant.timezone) == (
            "Tea House", "EUR", "Europe/Paris")
        assert merchant.credentials is not None and b"shpat_" not in merchant.credentials
    assert {hook["topic"] for hook in fake.webhooks} >= {"ORDERS_PAID", "REFUNDS_CREATE",
                                                         "APP_UNINSTALLED"}
    assert all(hook["webhookSubscription"]["uri"] == "https://loyalty.test/webhooks/shopify"
               for hook in fake.webhooks)

    # A guest sees the program but not a balance.
    program = store.proxy("GET", "/api/program", None)
    assert program.status_code == 200 and program.json["program"]["currency"] == "EUR"
    guest = store.proxy("GET", "/api/me", None)
    assert guest.status_code == 401 and guest.json["error"] == "sign_in_required"

    # orders/paid: 80 + 20 EUR -> 100 points.
    bought = paid_order("5001", "80.00")
    assert store.webhook("orders/paid", rest_order(bought)).status_code == 200
    me = store.proxy("GET", "/api/me", "7001")
    assert me.status_code == 200
    assert (me.json["balance"], me.json["pending"]) == (100, 0)
    assert me.json["history"][0]["kind"] == "award"

    # Redeem the free-shipping reward is too dear; the 5 EUR off costs 500: too few points.
    rewards = {reward["kind"]: reward for reward in program.json["rewards"]}
    short = store.proxy("POST", "/api/redeem", "7001", json={"reward_id":
                                                             rewards["fixed_amount"]["id"]},
                        headers={"Idempotency-Key": "k-1"})
    assert short.status_code == 409 and short.json["shortfall"] == 400

    # A bigger order, then a redemption that creates a real code restricted to the shopper.
    store.webhook("orders/paid", rest_order(paid_order("5002", "480.00")))
    redeemed = store.proxy("POST", "/api/redeem", "7001",
                           json={"reward_id": rewards["fixed_amount"]["id"]},
                           headers={"Idempotency-Key": "k-2"})
    assert redeemed.status_code == 200, redeemed.json
    code = redeemed.json["redemption"]["code"]
    sent = fake.discounts[-1]
    assert sent["mutation"] == "discountCodeBasicCreate"
    fields = sent["fields"]
    assert fields["code"] == code and fields["title"] == "€5 off your order"
    assert fields["context"] == {"customers": {"add": ["gid://shopify/Customer/7001"]}}
    assert fields["usageLimit"] == 1 and fields["appliesOncePerCustomer"] is True
    assert fields["customerGets"] == {"value": {"discountAmount": {
        "amount": "5.00", "appliesOnEachItem": False}}, "items": {"all": True}}
    assert fields["startsAt"] and fields["endsAt"]
    again = store.proxy("POST", "/api/redeem", "7001",
                        json={"reward_id": rewards["fixed_amount"]["id"]},
                        headers={"Idempotency-Key": "k-2"})
    assert again.json == redeemed.json and len(fake.discounts) == 1
    assert store.proxy("GET", "/api/me", "7001").json["balance"] == 100 + 500 - 500

    # refunds/create for line 11 of the first order (80 of its 100 EUR) takes back 80 points.
    returned = refund("9001", ("11", 1, "80.00"), amount="80.00", order_id="5001",
                      at=utcnow())
    assert store.webhook("refunds/create", rest_refund(returned, "EUR")).status_code == 200
    me = store.proxy("GET", "/api/me", "7001").json
    assert me["balance"] == 100 - 80
    assert me["history"][0]["kind"] == "reversal"

    # app/uninstalled: the token is dropped, the storefront API closes; the program stays.
    store.webhook("app/uninstalled", {"id": 1, "name": "Tea House"})
    with unit_of_work(store.runtime.database) as session:
        merchant = session.get(Merchant, merchant_id)
        assert merchant is not None and merchant.status == "uninstalled"
        assert merchant.credentials is None
    assert store.proxy("GET", "/api/me", "7001").status_code == 404

    # Reinstall: same merchant, same members and balance.
    assert store.install() == merchant_id
    assert store.proxy("GET", "/api/me", "7001").json["balance"] == 20
    with unit_of_work(store.runtime.database) as session:
        assert ledger_differences(session) == []


def test_duplicate_and_replayed_deliveries_award_once(store: ShopifyStore) -> None:
    store.install()
    body = rest_order(paid_order("6001", "30.00"))
    for _ in range(3):
        assert store.webhook("orders/paid", body, event_id="evt-1").status_code == 200
    # Shopify's orders/updated for the same order is a different event: still one award.
    store.webhook("orders/updated", body, event_id="evt-2")
    assert store.proxy("GET", "/api/me", "7001").json["balance"] == 50


def test_stale_update_and_refund_before_order(store: ShopifyStore) -> None:
    store.install()
    bought = paid_order("6100", "60.00")
    returned = refund("9100", ("12", 1, "20.00"), amount="20.00", order_id="6100",
                      at=utcnow())
    # The refund arrives first; it waits for the order.
    store.webhook("refunds/create", rest_refund(returned, "EUR"))
    store.webhook("orders/paid", rest_order(bought))
    assert store.proxy("GET", "/api/me", "7001").json["balance"] == 80 - 20
    # A stale copy (older updated_at) naming another shopper changes nothing.
    stale = replace(bought, updated_at=bought.updated_at - timedelta(hours=1),
                    customer=customer("7002", "other@example.com"))
    store.webhook("orders/updated", rest_order(stale))
    assert store.proxy("GET", "/api/me", "7001").json["balance"] == 60
    assert store.proxy("GET", "/api/me", "7002").json["balance"] == 0


def test_orders_before_the_install_do_not_earn_unless_chosen(store: ShopifyStore) -> None:
    store.install()
    old = replace(paid_order("6200", "10.00"), created_at=utcnow() - timedelta(days=30))
    store.webhook("orders/updated", rest_order(old))
    assert store.proxy("GET", "/api/me", "7001").json["balance"] == 0
    # The merchant's choice: past orders earn from then on.
    from plugin_server.loyalty.program import ensure_settings, get_merchant

    with unit_of_work(store.runtime.database) as session:
        ensure_settings(session, get_merchant(session, store.merchant_id)).award_past_orders = True
    store.webhook("orders/updated", rest_order(replace(old, updated_at=utcnow())))
    assert store.proxy("GET", "/api/me", "7001").json["balance"] == 30


def test_test_orders_follow_the_merchants_setting(store: ShopifyStore) -> None:
    store.install()
    store.webhook("orders/paid", rest_order(replace(paid_order("6300", "10.00"), test=True)))
    assert store.proxy("GET", "/api/me", "7001").json["balance"] == 0
    from plugin_server.loyalty.program import ensure_settings, get_merchant

    with unit_of_work(store.runtime.database) as session:
        ensure_settings(session, get_merchant(session, store.merchant_id)).award_test_orders = True
    store.webhook("orders/paid", rest_order(replace(paid_order("6301", "10.00"), test=True)))
    assert store.proxy("GET", "/api/me", "7001").json["balance"] == 30


def test_platform_refusal_voids_the_hold(store: ShopifyStore) -> None:
    store.install()
    store.webhook("orders/paid", rest_order(paid_order("6400", "980.00")))
    reward = store.proxy("GET", "/api/program", None).json["rewards"][0]
    store.fake.refuse_discounts = "Discounts are paused on this shop"
    refused = store.proxy("POST", "/api/redeem", "7001", json={"reward_id": reward["id"]},
                          headers={"Idempotency-Key": "k-refused"})
    assert refused.status_code == 502
    assert "paused" in refused.json["message"]
    assert store.proxy("GET", "/api/me", "7001").json["balance"] == 1000


def test_money_is_read_in_the_shop_currency(store: ShopifyStore) -> None:
    store.install()
    body = rest_order(paid_order("6500", "10.00"))
    for item in body["line_items"]:
        item["price_set"]["presentment_money"] = {"amount": "999.00", "currency_code": "JPY"}
    store.webhook("orders/paid", body)
    assert store.proxy("GET", "/api/me", "7001").json["balance"] == 30


def test_unparsable_signed_body_is_stored_as_failed(store: ShopifyStore) -> None:
    store.install()
    answer = store.webhook("orders/paid", b'{"id": "not an order"}')
    assert answer.status_code == 200
    from plugin_server.loyalty.inbox import list_events

    with unit_of_work(store.runtime.database) as session:
        failed = list_events(session, failed_only=True)
        assert len(failed) == 1 and "PayloadError" in failed[0].reason


def test_another_shops_reward_is_not_found(store: ShopifyStore) -> None:
    store.install()
    store.webhook("orders/paid", rest_order(paid_order("6600", "980.00")))
    answer = store.proxy("POST", "/api/redeem", "7001", json={"reward_id": 999_999},
                         headers={"Idempotency-Key": "k-unknown"})
    assert answer.status_code == 404
    missing_key = store.proxy("POST", "/api/redeem", "7001", json={"reward_id": 1})
    assert missing_key.status_code == 400


def test_redeem_is_rate_limited_per_shopper(store: ShopifyStore) -> None:
    store.install()
    answers = [store.proxy("POST", "/api/redeem", "7001", json={"reward_id": 999_999},
                           headers={"Idempotency-Key": f"k-{i}"}).status_code
               for i in range(11)]
    assert answers == [404] * 10 + [429]
    # Another shopper is not slowed down by the first one.
    other = store.proxy("POST", "/api/redeem", "7002", json={"reward_id": 999_999},
                        headers={"Idempotency-Key": "k-other"})
    assert other.status_code == 404


def test_opening_the_app_again_is_not_a_new_install(store: ShopifyStore) -> None:
    from urllib.parse import urlencode

    from integrations.shopify.simulator import install_query
    from plugin_server.models import ImportRun

    merchant_id = store.install()
    unpaid = replace(paid_order("7100", "30.00"), paid=False)
    store.webhook("orders/create", rest_order(unpaid))
    grants = len([1 for kind, _shop, _data in store.fake.requests if kind == "token"])
    with unit_of_work(store.runtime.database) as session:
        before = session.get(Merchant, merchant_id)
        assert before is not None
        started, installed = before.program_started_at, before.installed_at
    opened = store.client.get("/shopify/install?" + urlencode(install_query(store.shop,
                                                                            store.secret)))
    assert opened.status_code == 200 and "installed" in opened.get_data(as_text=True)
    assert len([1 for kind, _shop, _data in store.fake.requests if kind == "token"]) == grants
    with unit_of_work(store.runtime.database) as session:
        after = session.get(Merchant, merchant_id)
        assert after is not None
        assert (after.program_started_at, after.installed_at) == (started, installed)
        assert len(list(session.execute(select(ImportRun)).scalars())) == 1
    # The order placed before the visit still earns when it is paid.
    store.webhook("orders/paid", rest_order(replace(unpaid, paid=True,
                                                    updated_at=utcnow())))
    assert store.proxy("GET", "/api/me", "7001").json["balance"] == 50


def test_a_stale_uninstall_or_redact_from_before_a_reinstall_changes_nothing(
        store: ShopifyStore) -> None:
    import json as json_lib

    from integrations.shopify.simulator import webhook_headers
    from plugin_server.models import Member

    store.install()
    uninstalled_at = utcnow() - timedelta(hours=2)
    store.webhook("orders/paid", rest_order(paid_order("7200", "80.00")))

    def replay(topic: str, body: dict[str, object], event_id: str) -> int:
        raw = json_lib.dumps(body).encode()
        headers = webhook_headers(raw, store.secret, topic=topic, shop=store.shop,
                                  event_id=event_id)
        headers["X-Shopify-Triggered-At"] = uninstalled_at.isoformat()
        return store.client.post("/webhooks/shopify", data=raw, headers=headers).status_code

    assert replay("app/uninstalled", {"id": 1}, "old-uninstall") == 200
    assert replay("shop/redact", {"shop_id": 1, "shop_domain": store.shop}, "old-redact") == 200
    assert store.proxy("GET", "/api/me", "7001").json["balance"] == 100
    with unit_of_work(store.runtime.database) as session:
        merchant = session.get(Merchant, store.merchant_id)
        assert merchant is not None and merchant.status == "active"
        assert merchant.credentials is not None
        assert session.execute(select(Member)).scalars().first() is not None


@pytest.mark.parametrize("detailed_first", [True, False])
def test_a_refund_reverses_the_same_whichever_path_saw_it_first(
        store: ShopifyStore, detailed_first: bool) -> None:
    """refunds/create carries lines; reconciliation's GraphQL copy only the amount refunded
    (tax included). Whichever comes first, the line's points are what is taken back (L6)."""
    from integrations.shopify.simulated_payloads import graphql_order
    from plugin_server.shopify.jobs import reconcile

    store.install()
    bought = replace(paid_order("7300", "50.00"), taxes=Decimal("10.00"),
                     line_items=(line("11", "50.00"), line("12", "50.00")))
    store.webhook("orders/paid", rest_order(bought))
    assert store.proxy("GET", "/api/me", "7001").json["balance"] == 100
    returned = refund("9300", ("11", 1, "50.00"), amount="55.00", order_id="7300",
                      at=utcnow())
    amount_only = replace(returned, lines=())
    store.fake.orders = [graphql_order(replace(bought, refunds=(amount_only,),
                                               updated_at=utcnow()))]
    steps = [lambda: store.webhook("refunds/create", rest_refund(returned, "EUR")),
             lambda: reconcile(store.runtime, store.merchant_id)]
    for step in (steps if detailed_first else reversed(steps)):
        step()
    assert store.proxy("GET", "/api/me", "7001").json["balance"] == 50
    with unit_of_work(store.runtime.database) as session:
        assert ledger_differences(session) == []


def test_shopify_managed_install_exchanges_the_session_token(store: ShopifyStore) -> None:
    """Shopify-managed install: the App URL opens embedded with a session token, which the
    app verifies (shopifyapp) and exchanges for an expiring offline token; no OAuth redirect."""
    import time
    from urllib.parse import urlencode

    import jwt

    from integrations.shopify.simulator import install_query

    now = int(time.time())
    # Shopify signs session tokens with the app's secret (HS256).
    session_token = jwt.encode({
        "iss": f"https://{store.shop}/admin", "dest": f"https://{store.shop}",
        "aud": "test-api-key", "sub": "42", "exp": now + 60, "nbf": now - 5, "iat": now - 5,
        "jti": "jti-1", "sid": "sid-1"}, store.secret, algorithm="HS256")
    query = install_query(store.shop, store.secret, id_token=session_token, embedded="1",
                          host="YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvdGVhLWhvdXNl")
    answer = store.client.get("/shopify/install?" + urlencode(query))
    assert answer.status_code == 302, answer.get_data(as_text=True)[:500]
    assert "/admin/oauth/authorize" not in answer.headers["Location"]
    grant = next(data for kind, _shop, data in store.fake.requests if kind == "token")
    assert grant["subject_token"] == session_token
    with unit_of_work(store.runtime.database) as session:
        merchant = session.execute(select(Merchant)).scalar_one()
        assert merchant.status == "active" and merchant.credentials is not None
    # A forged session token (another secret) installs nothing.
    forged = jwt.encode({"iss": f"https://{store.shop}/admin", "dest": f"https://{store.shop}",
                         "aud": "test-api-key", "sub": "42", "exp": now + 60, "nbf": now - 5},
                        "not-the-secret", algorithm="HS256")
    other = install_query("other.myshopify.com", store.secret, id_token=forged, embedded="1")
    grants = len(store.fake.requests)
    refused = store.client.get("/shopify/install?" + urlencode(other))
    # The package sends the browser for a fresh token (the patch page), never to Shopify.
    assert refused.status_code == 302
    assert "/shopify/patch-id-token?" in refused.headers["Location"]
    assert len(store.fake.requests) == grants  # nothing reached Shopify
    with unit_of_work(store.runtime.database) as session:
        assert len(list(session.execute(select(Merchant)).scalars())) == 1
