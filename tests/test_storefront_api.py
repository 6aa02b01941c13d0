"""The storefront API for the widget outside the App Proxy (``/api/storefront/...``, DESIGN
§3, §8): the store's plugin signs the shopper, the server hands out a short-lived bearer
token, and only the store's own origin may read the answers. A Shopify shop from the fake
stands in for the store: its code issuer lets a redemption create a real code."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from itsdangerous import TimestampSigner
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select

from integrations.shopify.simulated_payloads import rest_order
from integrations.shopify.simulator import FakeShopify
from integrations.woocommerce.identity import ShopperIdentity, signed_identity
from plugin_server.db import unit_of_work
from plugin_server.loyalty.merchants import create_merchant
from plugin_server.loyalty.widget_identity import (
    issue_shopper_token,
    origin_of,
    store_origin,
    widget_secret_for,
)
from plugin_server.models import Member, Merchant, utcnow
from tests.conftest import make_app
from tests.support.builders import customer, line, order
from tests.support.shopify import (
    ShopifyStore,
    fake_shopify,
    install_directly,
    second_store,
    shopify_overrides,
)

__all__ = ["fake_shopify"]  # the fixture, for pytest

ORIGIN = "https://tea-house.myshopify.com"
ELSEWHERE = "https://evil.example"


@dataclass
class Widget:
    """One store as its widget sees it: the store id and the secret its plugin signs with."""

    store: ShopifyStore
    store_id: str
    secret: str

    def identity(self, customer_id: str = "7001", ts: int | None = None,
                 **changes: Any) -> dict[str, Any]:
        return signed_identity(self.secret, self.store_id, customer_id,
                               f"{customer_id}@ex.com", ts) | changes

    def session(self, body: Any, **headers: str) -> Any:
        return self.store.client.post("/api/storefront/session", json=body, headers=headers)

    def sign_in(self, customer_id: str = "7001") -> str:
        answer = self.session(self.identity(customer_id))
        assert answer.status_code == 200, answer.get_data(as_text=True)
        return str(answer.json["token"])

    def get(self, path: str, token: str | None = None, **headers: str) -> Any:
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.store.client.get(f"/api/storefront{path}", headers=headers)

    def redeem(self, token: str, reward_id: int, key: str) -> Any:
        return self.store.client.post("/api/storefront/redeem", json={"reward_id": reward_id},
                                      headers={"Authorization": f"Bearer {token}",
                                               "Idempotency-Key": key})

    def program(self) -> dict[str, Any]:
        answer = self.get(f"/program?store_id={self.store_id}")
        assert answer.status_code == 200
        return dict(answer.json)


def widget_for(store: ShopifyStore) -> Widget:
    with unit_of_work(store.runtime.database) as session:
        merchant = session.get(Merchant, store.merchant_id)
        assert merchant is not None
        secret = widget_secret_for(session, merchant, store.runtime.settings.ENCRYPTION_KEY)
        return Widget(store, merchant.store_id, secret)


@pytest.fixture
def widget(tmp_path: Path, httpserver: HTTPServer,
           fake_shopify: FakeShopify) -> Iterator[Widget]:
    app = make_app(f"sqlite:///{tmp_path / 'loyalty.sqlite3'}", **shopify_overrides(httpserver))
    store = ShopifyStore(app=app, client=app.test_client(), fake=fake_shopify)
    install_directly(store)
    yield widget_for(store)
    app.extensions["loyalty"].database.dispose()


def earn(store: ShopifyStore, order_id: str, amount: str, customer_id: str = "7001") -> None:
    now = utcnow()
    body = rest_order(order(order_id, line("11", amount), who=customer(
        customer_id, f"{customer_id}@ex.com"), created_at=now, updated_at=now, currency="EUR"))
    assert store.webhook("orders/paid", body).status_code == 200


def members(store: ShopifyStore) -> int:
    with unit_of_work(store.runtime.database) as session:
        return session.execute(select(func.count(Member.id)).where(
            Member.merchant_id == store.merchant_id)).scalar_one()


# -- signing in, reading, redeeming ---------------------------------------------------------------

def test_sign_in_then_me_shows_the_shoppers_balance(widget: Widget) -> None:
    earn(widget.store, "5001", "120.00")
    signed = widget.session(widget.identity())
    assert signed.status_code == 200, signed.json
    assert set(signed.json) == {"token", "expires_in", "me"}
    assert signed.json["expires_in"] == 1800
    assert signed.headers["Cache-Control"] == "no-store"
    me = widget.get("/me", signed.json["token"])
    assert me.status_code == 200, me.json
    assert me.headers["Cache-Control"] == "private, no-store"
    assert (me.json["customer_id"], me.json["balance"], me.json["pending"]) == ("7001", 120, 0)
    # The same document the App Proxy answers for that customer; the sign-in brought it too.
    assert me.json == widget.store.proxy("GET", "/api/me", "7001").json == signed.json["me"]
    other = widget.get("/me", widget.sign_in("7002"))
    assert (other.json["customer_id"], other.json["balance"]) == ("7002", 0)


def test_the_program_is_public_and_the_same_as_the_app_proxys(widget: Widget) -> None:
    answer = widget.get(f"/program?store_id={widget.store_id}")
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "public, max-age=60"
    assert answer.json == widget.store.proxy("GET", "/api/program", None).json
    assert {reward["kind"] for reward in answer.json["rewards"]} == {
        "fixed_amount", "percentage", "free_shipping"}


def test_redeem_with_the_token_returns_the_code_and_replays_it(widget: Widget) -> None:
    earn(widget.store, "5001", "1000.00")
    token = widget.sign_in()
    rewards = {reward["kind"]: reward["id"] for reward in widget.program()["rewards"]}
    first = widget.redeem(token, rewards["fixed_amount"], "key-1")
    assert first.status_code == 200, first.json
    code = first.json["redemption"]["code"]
    assert len(code) >= 12 and [d["fields"]["code"] for d in widget.store.fake.discounts] == [code]
    again = widget.redeem(token, rewards["fixed_amount"], "key-1")
    assert (again.status_code, again.json) == (200, first.json)
    assert len(widget.store.fake.discounts) == 1
    me = widget.get("/me", token).json
    assert me["balance"] == 500 and [c["code"] for c in me["codes"]] == [code]
    conflict = widget.redeem(token, rewards["percentage"], "key-1")
    assert conflict.status_code == 409 and conflict.json["error"] == "idempotency_conflict"
    missing = widget.store.client.post("/api/storefront/redeem", json={"reward_id": 1},
                                       headers={"Authorization": f"Bearer {token}"})
    assert missing.status_code == 400 and missing.json["error"] == "idempotency_key_required"


# -- what is refused ------------------------------------------------------------------------------

def test_a_bad_signature_is_401_logged_without_secrets_and_changes_nothing(
        widget: Widget, caplog: pytest.LogCaptureFixture) -> None:
    earn(widget.store, "5001", "100.00")
    before = members(widget.store)
    forged = widget.identity(customer_id="7002")
    forged["customer_id"] = "7001"
    # Named: other tests (the benches) quieten the "plugin_server" logger.
    with caplog.at_level(logging.INFO, logger="plugin_server.web.storefront_api"):
        answer = widget.session(forged)
    assert answer.status_code == 401 and answer.json["error"] == "invalid_signature"
    assert "token" not in answer.json
    assert members(widget.store) == before
    logged = caplog.text
    assert "invalid_signature" in logged
    assert forged["sig"] not in logged and widget.secret not in logged


def test_an_identity_signed_301_seconds_ago_is_401(widget: Widget) -> None:
    answer = widget.session(widget.identity(ts=int(time.time()) - 301))
    assert answer.status_code == 401 and answer.json["error"] == "identity_expired"
    fresh = widget.session(widget.identity(ts=int(time.time()) - 240))
    assert fresh.status_code == 200


@pytest.mark.parametrize("body", [None, [], {"store_id": 5}, {"customer_id": "1"}])
def test_a_malformed_identity_is_401(widget: Widget, body: Any) -> None:
    answer = widget.session(body)
    assert answer.status_code == 401 and answer.json["error"] == "invalid_identity"


def test_one_stores_secret_cannot_sign_for_another(widget: Widget) -> None:
    other = widget_for(second_store(widget.store, "other.myshopify.com", name="Other"))
    assert other.store_id != widget.store_id and other.secret != widget.secret
    forged = signed_identity(widget.secret, other.store_id, "7001", "7001@ex.com")
    answer = widget.session(forged)
    assert answer.status_code == 401 and answer.json["error"] == "invalid_signature"
    # A genuine token of store A reads only A's shopper.
    earn(widget.store, "5001", "300.00")
    assert widget.get("/me", widget.sign_in()).json["balance"] == 300
    assert widget.get("/me", other.sign_in()).json["balance"] == 0


def test_a_store_without_a_widget_secret_cannot_sign_in(widget: Widget) -> None:
    bare = second_store(widget.store, "bare.myshopify.com", name="Bare")
    with unit_of_work(bare.runtime.database) as session:
        merchant = session.get(Merchant, bare.merchant_id)
        assert merchant is not None and merchant.widget_secret is None
        store_id = merchant.store_id
    answer = widget.session(signed_identity("guess", store_id, "7001", ""))
    assert answer.status_code == 401 and answer.json["error"] == "widget_not_connected"


def test_an_unknown_store_is_404_and_a_missing_one_400(widget: Widget) -> None:
    unknown = widget.session(signed_identity(widget.secret, "0123456789abcdef", "7001", ""))
    assert unknown.status_code == 404 and unknown.json["error"] == "not_found"
    assert widget.get("/program?store_id=0123456789abcdef").status_code == 404
    missing = widget.get("/program")
    assert missing.status_code == 400 and missing.json["error"] == "invalid_argument"


@pytest.mark.parametrize(("authorization", "code"), [
    (None, "sign_in_required"),
    ("Bearer ", "sign_in_required"),
    ("Basic dXNlcjpwYXNz", "sign_in_required"),
    ("Bearer not-a-token", "invalid_token"),
    ("Bearer eyJzdG9yZV9pZCI6IngifQ.aaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbb", "invalid_token"),
])
def test_me_without_a_good_token_is_401(widget: Widget, authorization: str | None,
                                        code: str) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, path in (("GET", "/me"), ("POST", "/redeem")):
        answer = widget.store.client.open(f"/api/storefront{path}", method=method,
                                          json={"reward_id": 1}, headers={
                                              **headers, "Idempotency-Key": "k"})
        assert answer.status_code == 401, (path, answer.json)
        assert answer.json["error"] == code
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_token_signed_with_another_secret_key_is_401(widget: Widget) -> None:
    token = issue_shopper_token("another-servers-key",
                                ShopperIdentity(widget.store_id, "7001", "", 0))
    answer = widget.get("/me", token)
    assert answer.status_code == 401 and answer.json["error"] == "invalid_token"


def test_an_expired_token_is_401_and_the_store_can_read_why(
        widget: Widget, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patched:
        patched.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 1801)
        old = widget.sign_in()
    answer = widget.get("/me", old, Origin=ORIGIN)
    assert answer.status_code == 401 and answer.json["error"] == "token_expired"
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
    with monkeypatch.context() as patched:
        patched.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 1790)
        recent = widget.sign_in()
    assert widget.get("/me", recent).status_code == 200


def test_a_token_of_a_store_that_left_is_401(widget: Widget) -> None:
    token = widget.sign_in()
    assert widget.store.webhook("app/uninstalled", {"id": 1}).status_code == 200
    answer = widget.get("/me", token)
    assert answer.status_code == 401 and answer.json["error"] == "invalid_token"
    assert widget.get(f"/program?store_id={widget.store_id}").status_code == 404


def test_sign_ins_are_rate_limited_per_store_and_address(widget: Widget) -> None:
    forged = widget.identity(sig="0" * 64)
    for _ in range(30):
        assert widget.session(forged).status_code == 401
    limited = widget.session(widget.identity())
    assert limited.status_code == 429 and limited.json["error"] == "rate_limited"
    elsewhere = widget.store.client.post("/api/storefront/session", json=widget.identity(),
                                         environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert elsewhere.status_code == 200


# -- CORS ----------------------------------------------------------------------------------------

def test_the_stores_origin_may_read_the_answers(widget: Widget) -> None:
    signed = widget.session(widget.identity(), Origin=ORIGIN)
    token = signed.json["token"]
    answers = [signed, widget.get("/me", token, Origin=ORIGIN),
               widget.get(f"/program?store_id={widget.store_id}", Origin=ORIGIN)]
    for answer in answers:
        assert answer.status_code == 200
        assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "Origin" in answer.headers["Vary"]
        assert "Access-Control-Allow-Credentials" not in answer.headers


def test_other_origins_get_no_cors_headers(widget: Widget) -> None:
    signed = widget.session(widget.identity(), Origin=ELSEWHERE)
    token = signed.json["token"]
    for answer in (signed, widget.get("/me", token, Origin=ELSEWHERE),
                   widget.get(f"/program?store_id={widget.store_id}", Origin=ELSEWHERE),
                   widget.get(f"/program?store_id={widget.store_id}", Origin="null"),
                   widget.get("/me", token, Origin=ORIGIN.replace("https", "http"))):
        assert "Access-Control-Allow-Origin" not in answer.headers
        assert "Origin" in answer.headers["Vary"]


def test_refusals_before_the_store_is_known_are_readable_by_its_pages(widget: Widget) -> None:
    """No token, a garbled one, a bad identity: the store's widget must read the 401 (to
    sign in again), not see a network error; other pages still read nothing."""
    for origin, readable in ((ORIGIN, True), (ELSEWHERE, False)):
        for answer in (widget.get("/me", None, Origin=origin),
                       widget.get("/me", "garbled.token", Origin=origin),
                       widget.session({"store_id": widget.store_id}, Origin=origin)):
            assert answer.status_code in (400, 401)
            assert (answer.headers.get("Access-Control-Allow-Origin") == origin) is readable


def preflight(widget: Widget, path: str, origin: str) -> Any:
    return widget.store.client.options(f"/api/storefront{path}", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key"})


@pytest.mark.parametrize("path", ["/session", "/me", "/redeem", "/program"])
def test_preflight_is_answered_for_the_stores_origin_only(widget: Widget, path: str) -> None:
    allowed = preflight(widget, path, ORIGIN)
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert allowed.headers["Access-Control-Allow-Methods"] == "GET, POST"
    assert allowed.headers["Access-Control-Allow-Headers"] == (
        "Authorization, Content-Type, Idempotency-Key")
    assert allowed.headers["Access-Control-Max-Age"] == "600"
    assert "Access-Control-Allow-Credentials" not in allowed.headers
    refused = preflight(widget, path, ELSEWHERE)
    assert refused.status_code == 403 and refused.json["error"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_preflight_may_name_the_store(widget: Widget) -> None:
    named = preflight(widget, f"/program?store_id={widget.store_id}", ORIGIN)
    assert named.status_code == 200
    assert preflight(widget, f"/program?store_id={widget.store_id}", ELSEWHERE).status_code == 403
    assert preflight(widget, "/program?store_id=0123456789abcdef", ORIGIN).status_code == 403


def test_a_woocommerce_stores_origin_is_its_store_urls(widget: Widget) -> None:
    database = widget.store.runtime.database
    with unit_of_work(database) as session:
        merchant = create_merchant(session, "woocommerce", "https://Shop.Example:8443/wp/",
                                   name="Woo")
        assert store_origin(merchant) == "https://shop.example:8443"
        store_id = merchant.store_id
    assert preflight(widget, "/session", "https://shop.example:8443").status_code == 200
    assert preflight(widget, "/session", "https://shop.example").status_code == 403
    answer = widget.get(f"/program?store_id={store_id}", Origin="https://shop.example:8443")
    assert answer.headers["Access-Control-Allow-Origin"] == "https://shop.example:8443"


@pytest.mark.parametrize(("address", "origin"), [
    ("https://store.example", "https://store.example"),
    ("https://store.example:443/", "https://store.example"),
    ("http://store.example:80/shop", "http://store.example"),
    ("http://localhost:8080", "http://localhost:8080"),
    ("tea-house.myshopify.com", "https://tea-house.myshopify.com"),
    ("ftp://store.example", ""),
    ("https://", ""),
    ("https://store.example:99999", ""),
])
def test_origin_of_a_store_address(address: str, origin: str) -> None:
    assert origin_of(address) == origin


# -- the operator command ------------------------------------------------------------------------

def test_merchant_command_shows_the_store_id_and_one_widget_secret(widget: Widget) -> None:
    bare = second_store(widget.store, "bare.myshopify.com", name="Bare")

    def shown(reference: str) -> dict[str, Any]:
        with widget.store.app.app_context():
            result = widget.store.app.test_cli_runner().invoke(
                args=["merchant", reference, "--json"])
        assert result.exit_code == 0, result.output
        return dict(json.loads(result.output))

    first, second = shown(bare.shop), shown(str(bare.merchant_id))
    assert first["store_id"] == second["store_id"] and len(first["store_id"]) == 16
    assert first["widget_secret"] == second["widget_secret"]
    assert len(first["widget_secret"]) >= 32 and first["widget_secret"].isalnum()
    assert shown(widget.store.shop)["widget_secret"] == widget.secret
    # The secret shown is the one the store signs with.
    answer = bare.client.post("/api/storefront/session", json=signed_identity(
        first["widget_secret"], first["store_id"], "9", ""))
    assert answer.status_code == 200, answer.json
