"""A WooCommerce store end to end, against a stand-in store on pytest-httpserver speaking the
documented protocol: connect (wc-auth), the creation ping, signed order deliveries, the
shopper's balance through the storefront API, a coupon for a reward, a partial refund, a
missed delivery healed by reconciliation, and the refusals (DESIGN §8)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from pytest_httpserver import HTTPServer

from integrations.woocommerce.client import WooAuthError
from integrations.woocommerce.identity import signed_identity
from plugin_server.db import unit_of_work
from plugin_server.loyalty.widget_identity import widget_secret_for
from plugin_server.models import Merchant
from plugin_server.woocommerce.jobs import reconcile
from tests.conftest import make_app
from tests.support.woo_store import APP_URL, CUSTOMER, Woo, open_woo


@pytest.fixture
def woo(tmp_path: Path, httpserver: HTTPServer) -> Iterator[Woo]:
    yield from open_woo(tmp_path, httpserver)


def test_a_store_connects_earns_redeems_refunds_and_heals(woo: Woo) -> None:
    woo.connect()
    merchant = woo.merchant()
    assert merchant.status == "active" and merchant.credentials is not None
    # The job after the callback subscribed to every topic, signed with one store secret.
    assert sorted(hook["topic"] for hook in woo.fake.webhooks.values()) == sorted(
        ["order.created", "order.updated", "order.deleted", "order.restored",
         "customer.created"])
    assert {hook["delivery_url"] for hook in woo.fake.webhooks.values()} == {
        f"{APP_URL}/webhooks/woocommerce/{merchant.store_id}"}
    back = woo.client.get(f"/woocommerce/return?success=1&user_id={woo.user_id}")
    assert back.status_code == 200
    page = back.get_data(as_text=True)
    with unit_of_work(woo.runtime.database) as session:
        found = session.get(Merchant, merchant.id)
        assert found is not None
        widget_secret = widget_secret_for(session, found, woo.runtime.settings.ENCRYPTION_KEY)
    # The browser that pressed Connect is shown both values the plugin needs.
    assert merchant.store_id in page and widget_secret in page
    # Another browser landing on the same link sees neither.
    stranger = woo.app.test_client().get(f"/woocommerce/return?success=1&user_id={woo.user_id}")
    assert stranger.status_code == 403 and widget_secret not in stranger.get_data(as_text=True)
    # The callback's user_id is spent: a replay is refused and keeps nothing.
    replay = woo.client.post("/woocommerce/auth-callback",
                             data=woo.fake.callback_body(woo.fake.issue_keys(woo.user_id)),
                             content_type="application/json")
    assert replay.status_code == 400 and "used already" in replay.json["message"]
    # A new connection for the same store cannot replace keys the store has accepted.
    started = woo.client.get(f"/woocommerce/connect?store_url={woo.store_url}")
    fresh_user_id = parse_qs(urlparse(started.headers["Location"]).query)["user_id"][0]
    keys = woo.fake.issue_keys(user_id=fresh_user_id)
    again = woo.client.post("/woocommerce/auth-callback", data=woo.fake.callback_body(keys),
                            content_type="application/json")
    assert again.status_code == 400 and "connected already" in again.json["message"]
    assert woo.merchant().credentials == merchant.credentials
    refused = woo.client.get(f"/woocommerce/return?success=1&user_id={fresh_user_id}")
    assert refused.status_code == 409 and widget_secret not in refused.get_data(as_text=True)

    # The creation ping: 200, nothing stored.
    body, headers = woo.fake.ping(next(iter(woo.fake.webhooks)))
    ping = woo.client.post(f"/webhooks/woocommerce/{merchant.store_id}", data=body,
                           headers=headers)
    assert ping.status_code == 200 and woo.events() == 0

    # A pending order earns nothing; processing earns 18 (two lines, shipping excluded).
    order = woo.fake.add_order(status="pending", **CUSTOMER)
    assert woo.deliver("order.created", order).status_code == 200
    assert woo.balance() == 0
    order = woo.fake.update_order(order["id"], status="processing")
    assert woo.deliver("order.updated", order).json["status"] == "stored"
    assert woo.deliver("order.updated", order).json["status"] == "duplicate"
    assert woo.balance() == 18

    # The shopper's balance through the storefront API with the plugin's signed identity.
    identity = signed_identity(widget_secret, merchant.store_id, "7", "ana@example.com")
    session = woo.client.post("/api/storefront/session", json=identity)
    assert session.status_code == 200
    token = session.json["token"]
    assert session.json["me"]["balance"] == 18

    # Enough points for the cheapest reward, then redeem: the exact coupon.
    more = woo.fake.add_order(status="processing", line_items=[
        {"name": "Kettle", "product_id": 5, "quantity": 1, "total": "800.00"}], **CUSTOMER)
    assert woo.deliver("order.created", more).status_code == 200
    balance = woo.balance()
    program = woo.client.get(f"/api/storefront/program?store_id={merchant.store_id}").json
    shipping = next(r for r in program["rewards"] if r["kind"] == "free_shipping")
    redeemed = woo.client.post("/api/storefront/redeem", json={"reward_id": shipping["id"]},
                               headers={"Authorization": f"Bearer {token}",
                                        "Idempotency-Key": "first"})
    assert redeemed.status_code == 200, redeemed.json
    code = redeemed.json["redemption"]["code"]
    # WooCommerce keeps coupon codes in lower case and matches them ignoring case.
    coupon = next(c for c in woo.fake.coupons if c["code"].lower() == code.lower())
    assert coupon["usage_limit"] == 1 and coupon["usage_limit_per_user"] == 1
    assert coupon["email_restrictions"] == ["ana@example.com"]
    assert coupon["free_shipping"] is True and coupon["date_expires_gmt"]
    assert woo.balance() == balance - shipping["points_cost"]

    # A partial refund of the first order takes back its share.
    before = woo.balance()
    woo.fake.add_refund(order["id"], "9.00")
    assert woo.deliver("order.updated", woo.fake.orders[order["id"]]).status_code == 200
    assert woo.balance() == before - 9

    # A delivery that never arrived is healed by reconciliation.
    woo.fake.add_order(status="processing", **CUSTOMER)  # its delivery is lost
    before = woo.balance()
    report = reconcile(woo.runtime, merchant.id)
    assert report.failed == 0 and report.healed >= 1
    assert woo.balance() == before + 18


def test_bad_signatures_and_forged_callbacks_change_nothing(woo: Woo) -> None:
    woo.connect()
    merchant = woo.merchant()
    order = woo.fake.add_order(status="processing", **CUSTOMER)
    refused = woo.deliver("order.created", order, secret="not-the-secret")
    assert refused.status_code == 401 and woo.events() == 0
    unsigned = woo.client.post(f"/webhooks/woocommerce/{merchant.store_id}",
                               data=json.dumps(order), content_type="application/json",
                               headers={"X-WC-Webhook-Topic": "order.created"})
    assert unsigned.status_code == 401 and woo.events() == 0
    unknown = woo.client.post("/webhooks/woocommerce/nope", data=b"{}")
    assert unknown.status_code == 404
    # A callback whose user_id this server did not sign: 400, no keys kept.
    keys = woo.fake.issue_keys(user_id="42")
    forged = woo.client.post("/woocommerce/auth-callback", data=woo.fake.callback_body(keys),
                             content_type="application/json")
    assert forged.status_code == 400
    with unit_of_work(woo.runtime.database) as session:
        assert session.query(Merchant).filter_by(platform="woocommerce").count() == 1


@pytest.mark.parametrize("store_url", [
    "https://user:pass@shop.example", "https://shop.example/#x", "ftp://shop.example",
    "javascript:alert(1)", "https://localhost", "https://10.0.0.5", "https://[::1]",
    "http://shop.example"])
def test_hostile_store_urls_are_refused_before_any_request(tmp_path: Path,
                                                           store_url: str) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'l.sqlite3'}", LOYALTY_ENV="production",
                   APP_URL=APP_URL, SHOPIFY_API_KEY="k", SHOPIFY_API_SECRET="s")
    answer = app.test_client().get("/woocommerce/connect", query_string={
        "store_url": store_url})
    assert answer.status_code == 400
    assert "Location" not in answer.headers


def test_revoked_keys_mark_the_store_disconnected(woo: Woo) -> None:
    woo.connect()
    woo.fake.revoke_keys()
    with pytest.raises(WooAuthError):
        reconcile(woo.runtime, woo.merchant().id)
    assert woo.merchant().status == "disconnected"


def test_loyalty_reconcile_and_merchant_commands_for_a_store(woo: Woo) -> None:
    woo.connect()
    woo.fake.add_order(status="processing", **CUSTOMER)  # never delivered
    with woo.app.app_context():
        runner = woo.app.test_cli_runner()
        answer = runner.invoke(args=["reconcile", woo.store_url, "--json"])
        assert answer.exit_code == 0, answer.output
        report = json.loads(answer.stdout)["reconciled"][0]
        assert (report["merchant"], report["seen"], report["healed"]) == (woo.store_url, 1, 1)
        details = json.loads(runner.invoke(args=["merchant", woo.store_url, "--json"]).stdout)
    assert details["platform"] == "woocommerce" and details["store_id"]
    assert details["widget_secret"] and details["connected"] is True
    assert woo.balance() == 18
