"""The storefront API behind Shopify's App Proxy when the request is not a good one: Shopify's
published signature vectors (and tampered, stale or repeated copies of them), guests, shops
that are not installed, and redemptions that must be refused (DESIGN §3, §5 L8, §7, §11)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from flask import Flask
from pytest_httpserver import HTTPServer

from integrations.shopify.simulated_payloads import rest_order
from integrations.shopify.simulator import (
    FakeShopify,
    proxy_query,
    proxy_signature,
    webhook_headers,
    webhook_signature,
)
from plugin_server.models import utcnow
from tests.conftest import make_app
from tests.support.builders import customer, line, order
from tests.support.fixtures import fixture_bytes, fixture_json
from tests.support.shopify import (
    ShopifyStore,
    fake_shopify,
    install_directly,
    second_store,
    shopify_overrides,
)

__all__ = ["fake_shopify"]  # the fixture, for pytest

VECTORS: list[dict[str, Any]] = fixture_json("shopify/hmac_vectors.json")["vectors"]
PROXY_VECTORS = [v for v in VECTORS
                 if v["kind"] == "app_proxy_signature" and v["status"] == "published"]
WEBHOOK_VECTORS = [v for v in VECTORS if v["kind"] == "webhook_body_hmac"]
PLACEHOLDER = next(v for v in VECTORS if v["id"] == "shopify_app_proxy_placeholder_shop_negative")
VECTOR_SHOP = "shop-name.myshopify.com"
VECTOR_TIME = 1317327555
LOGGED_IN = next(v for v in PROXY_VECTORS if "logged_in_customer_id=1" in v["query"])
GUEST = next(v for v in PROXY_VECTORS if "logged_in_customer_id=&" in v["query"])


def test_the_fixtures_hold_the_published_vectors() -> None:
    assert len(PROXY_VECTORS) == 2 and len(WEBHOOK_VECTORS) == 1
    assert all(v["secret"] == "hush" for v in PROXY_VECTORS + WEBHOOK_VECTORS)


# -- our signer against the published vectors --------------------------------------------------

def _params(query: str) -> dict[str, str | list[str]]:
    """A query as Shopify signs it: repeated keys keep all their values, in order."""
    params: dict[str, str | list[str]] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in params:
            previous = params[key]
            params[key] = [*previous, value] if isinstance(previous, list) else [previous,
                                                                                  value]
        else:
            params[key] = value
    return params


@pytest.mark.parametrize("vector", PROXY_VECTORS, ids=lambda v: v["id"])
def test_our_proxy_signer_reproduces_the_published_vectors(vector: dict[str, Any]) -> None:
    params = _params(vector["query"])
    assert params["signature"] == vector["expected"]
    assert proxy_signature(params, vector["secret"]) == vector["expected"]
    assert proxy_signature(params, "not-hush") != vector["expected"]


def test_our_proxy_signer_rejects_the_placeholder_shop_vector() -> None:
    params = _params(PLACEHOLDER["query"])
    signed = proxy_signature(params, PLACEHOLDER["secret"])
    assert signed == PLACEHOLDER["computed_signature"]
    assert signed != params["signature"]


@pytest.mark.parametrize("vector", WEBHOOK_VECTORS, ids=lambda v: v["id"])
def test_our_webhook_signer_reproduces_the_vector(vector: dict[str, Any]) -> None:
    body = fixture_bytes(vector["body_file"])
    # The vector holds only for the file's exact bytes.
    assert len(body) == vector["body_length_bytes"]
    assert hashlib.sha256(body).hexdigest() == vector["body_sha256"]
    assert webhook_signature(body, vector["secret"]) == vector["expected"]
    assert webhook_signature(body, vector["secret"] + "x") != vector["expected"]


# -- the app against the published vectors ------------------------------------------------------

@pytest.fixture
def hush(tmp_path: Path, httpserver: HTTPServer,
         fake_shopify: FakeShopify) -> Iterator[ShopifyStore]:
    """An app whose secret is the vectors' ("hush"), with shop-name.myshopify.com installed."""
    fake_shopify.add_shop(VECTOR_SHOP)
    app = make_app(f"sqlite:///{tmp_path / 'loyalty.sqlite3'}",
                   **shopify_overrides(httpserver, SHOPIFY_API_SECRET="hush"))
    shop = ShopifyStore(app=app, client=app.test_client(), fake=fake_shopify,
                        shop=VECTOR_SHOP, secret="hush")
    install_directly(shop)
    yield shop
    app.extensions["loyalty"].database.dispose()


def _at(monkeypatch: pytest.MonkeyPatch, offset: int) -> None:
    monkeypatch.setattr("shopify_app.verify.app_proxy.time.time",
                        lambda: VECTOR_TIME + offset)


@pytest.mark.parametrize("vector", PROXY_VECTORS, ids=lambda v: v["id"])
def test_published_vectors_are_accepted(hush: ShopifyStore, monkeypatch: pytest.MonkeyPatch,
                                        vector: dict[str, Any]) -> None:
    _at(monkeypatch, 10)
    answer = hush.client.get("/proxy/api/program?" + vector["query"])
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert sorted(r["kind"] for r in answer.json["rewards"]) == [
        "fixed_amount", "free_shipping", "percentage"]


def test_the_logged_in_vector_names_its_customer(hush: ShopifyStore,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    _at(monkeypatch, 10)
    answer = hush.client.get("/proxy/api/me?" + LOGGED_IN["query"])
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.json["balance"] == 0 and answer.json["pending"] == 0


def _tampered(query: str) -> list[tuple[str, str]]:
    return [
        ("customer id", query.replace("logged_in_customer_id=1", "logged_in_customer_id=2")
         if "logged_in_customer_id=1" in query
         else query.replace("logged_in_customer_id=", "logged_in_customer_id=1")),
        ("extra value", query.replace("extra=2", "extra=3")),
        ("repeated values reordered", query.replace("extra=1&extra=2", "extra=2&extra=1")),
        ("extra dropped", query.replace("extra=1&extra=2&", "")),
        ("param added", query + "&admin=1"),
        ("path prefix", query.replace("awesome_reviews", "loyalty")),
        ("timestamp", query.replace("timestamp=1317327555", "timestamp=1317327556")),
        ("signature case", query.replace(query[-64:], query[-64:].upper())),
        ("signature cut", query[:-1]),
        ("signature missing", query.rsplit("&signature=", 1)[0]),
        ("signature empty", query.rsplit("&signature=", 1)[0] + "&signature="),
        ("shop", query.replace("shop-name", "shop-other")),
    ]


@pytest.mark.parametrize("vector", PROXY_VECTORS, ids=lambda v: v["id"])
def test_tampered_vectors_are_refused(hush: ShopifyStore, monkeypatch: pytest.MonkeyPatch,
                                      vector: dict[str, Any]) -> None:
    _at(monkeypatch, 10)
    for label, query in _tampered(vector["query"]):
        assert query != vector["query"], label
        for path in ("/api/program", "/api/me"):
            answer = hush.client.get(f"/proxy{path}?{query}")
            assert answer.status_code == 401, (label, path, answer.get_data(as_text=True))
            assert answer.json["error"] != "sign_in_required", label


def test_the_placeholder_shop_vector_is_refused(hush: ShopifyStore,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _at(monkeypatch, 10)
    answer = hush.client.get("/proxy/api/program?" + PLACEHOLDER["query"])
    assert answer.status_code == 401


@pytest.mark.parametrize("offset", [91, -91, 3600, -86400])
def test_vectors_more_than_90_seconds_off_are_refused(hush: ShopifyStore,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      offset: int) -> None:
    _at(monkeypatch, offset)
    for vector in PROXY_VECTORS:
        answer = hush.client.get("/proxy/api/program?" + vector["query"])
        assert answer.status_code == 401, (vector["id"], answer.get_data(as_text=True))


@pytest.mark.parametrize("offset", [90, -90, 0])
def test_vectors_within_90_seconds_are_accepted(hush: ShopifyStore,
                                                monkeypatch: pytest.MonkeyPatch,
                                                offset: int) -> None:
    _at(monkeypatch, offset)
    assert hush.client.get("/proxy/api/program?" + LOGGED_IN["query"]).status_code == 200


def test_repeated_shop_timestamp_or_signature_is_refused(hush: ShopifyStore,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _at(monkeypatch, 10)
    query = LOGGED_IN["query"]
    signature = LOGGED_IN["expected"]
    repeated = {
        "shop": query + f"&shop={VECTOR_SHOP}",
        "shop first": f"shop={VECTOR_SHOP}&" + query,
        "timestamp": query + "&timestamp=1317327555",
        "signature": query + f"&signature={signature}",
    }
    # Repetitions signed the way Shopify signs repeated keys ("a,b"), so only the repetition
    # itself is wrong.
    for name in ("shop", "timestamp"):
        params = _params(query)
        del params["signature"]
        params[name] = [str(params[name]), str(params[name])]
        params["signature"] = proxy_signature(params, "hush")
        repeated[f"{name} signed"] = urlencode(params, doseq=True)
    for label, bad in repeated.items():
        for method, path in (("GET", "/api/program"), ("GET", "/api/me"),
                             ("POST", "/api/redeem")):
            answer = hush.client.open(f"/proxy{path}?{bad}", method=method,
                                      json={"reward_id": 1},
                                      headers={"Idempotency-Key": f"k-{label}"})
            assert answer.status_code == 401, (label, path, answer.get_data(as_text=True))


def test_a_guest_cannot_see_or_redeem_points(hush: ShopifyStore,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _at(monkeypatch, 10)
    query = GUEST["query"]
    assert hush.client.get("/proxy/api/program?" + query).status_code == 200
    me = hush.client.get("/proxy/api/me?" + query)
    assert me.status_code == 401 and me.json["error"] == "sign_in_required"
    assert "Sign in" in me.json["message"]
    redeem = hush.client.post("/proxy/api/redeem?" + query, json={"reward_id": 1},
                              headers={"Idempotency-Key": "guest-1"})
    assert redeem.status_code == 401 and redeem.json["error"] == "sign_in_required"
    assert hush.fake.discounts == []


def test_a_guest_cannot_pick_a_customer_outside_the_signature(
        hush: ShopifyStore, monkeypatch: pytest.MonkeyPatch) -> None:
    _at(monkeypatch, 10)
    # Anything the browser adds that Shopify did not sign breaks the signature.
    for extra in ("&customer_id=1", "&logged_in_customer_id=1"):
        answer = hush.client.get("/proxy/api/me?" + GUEST["query"] + extra)
        assert answer.status_code == 401
    answer = hush.client.get("/proxy/api/me?" + GUEST["query"],
                             headers={"X-Customer-Id": "1"})
    assert answer.status_code == 401 and answer.json["error"] == "sign_in_required"


def test_a_valid_signature_for_a_shop_that_is_not_installed_is_404(
        tmp_path: Path, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    app: Flask = make_app(f"sqlite:///{tmp_path / 'empty.sqlite3'}",
                          **shopify_overrides(httpserver, SHOPIFY_API_SECRET="hush"))
    try:
        _at(monkeypatch, 10)
        client = app.test_client()
        for vector in PROXY_VECTORS:
            answer = client.get("/proxy/api/program?" + vector["query"])
            assert answer.status_code == 404, answer.get_data(as_text=True)
            assert answer.json["error"] == "not_found"
        monkeypatch.undo()
        fresh = proxy_query("nobody.myshopify.com", "5", "hush")
        for path in ("/api/program", "/api/me"):
            assert client.get(f"/proxy{path}?{fresh}").status_code == 404
    finally:
        app.extensions["loyalty"].database.dispose()


def test_the_published_webhook_vector_is_accepted_as_sent(hush: ShopifyStore) -> None:
    """The vector's header over the fixture's exact (pretty-printed) bytes passes; the same
    document re-serialised does not."""
    (vector,) = WEBHOOK_VECTORS
    body = fixture_bytes(vector["body_file"])
    headers = webhook_headers(body, "hush", topic="orders/paid", shop=VECTOR_SHOP,
                              event_id="evt-vector")
    assert headers["X-Shopify-Hmac-Sha256"] == vector["expected"]
    answer = hush.client.post("/webhooks/shopify", data=body, headers=headers)
    assert answer.status_code == 200 and answer.json["status"] == "stored"
    compact = json.dumps(json.loads(body), separators=(",", ":")).encode()
    again = hush.client.post("/webhooks/shopify", data=compact,
                             headers={**headers, "X-Shopify-Event-Id": "evt-compact"})
    assert again.status_code == 401


# -- redemptions that must be refused ----------------------------------------------------------

@pytest.fixture
def store(tmp_path: Path, httpserver: HTTPServer,
          fake_shopify: FakeShopify) -> Iterator[ShopifyStore]:
    app = make_app(f"sqlite:///{tmp_path / 'loyalty.sqlite3'}", **shopify_overrides(httpserver))
    installed = ShopifyStore(app=app, client=app.test_client(), fake=fake_shopify)
    install_directly(installed)
    yield installed
    app.extensions["loyalty"].database.dispose()


def _earn(store: ShopifyStore, order_id: str, amount: str, customer_id: str = "7001") -> None:
    now = utcnow()
    body = rest_order(order(order_id, line("11", amount), who=customer(customer_id,
                                                                       f"{customer_id}@ex.com"),
                            created_at=now, updated_at=now, currency="EUR"))
    assert store.webhook("orders/paid", body).status_code == 200


def _rewards(store: ShopifyStore) -> dict[str, int]:
    program = store.proxy("GET", "/api/program", None)
    assert program.status_code == 200
    return {reward["kind"]: reward["id"] for reward in program.json["rewards"]}


def _balance(store: ShopifyStore, customer_id: str = "7001") -> int:
    me = store.proxy("GET", "/api/me", customer_id)
    assert me.status_code == 200
    return int(me.json["balance"])


def _redeem(store: ShopifyStore, body: Any, key: str | None, customer_id: str = "7001") -> Any:
    headers = {} if key is None else {"Idempotency-Key": key}
    if isinstance(body, bytes):
        return store.proxy("POST", "/api/redeem", customer_id, data=body, headers=headers,
                           content_type="application/json")
    return store.proxy("POST", "/api/redeem", customer_id, json=body, headers=headers)


def test_too_few_points_is_409_with_the_shortfall(store: ShopifyStore) -> None:
    _earn(store, "5001", "100.00")
    reward = _rewards(store)["fixed_amount"]  # 500 points
    answer = _redeem(store, {"reward_id": reward}, "k-short")
    assert answer.status_code == 409
    assert answer.json["error"] == "insufficient_points" and answer.json["shortfall"] == 400
    assert _balance(store) == 100
    assert store.fake.discounts == []


def test_an_unknown_reward_is_404(store: ShopifyStore) -> None:
    _earn(store, "5001", "1000.00")
    answer = _redeem(store, {"reward_id": 987_654}, "k-unknown")
    assert answer.status_code == 404 and answer.json["error"] == "not_found"
    assert _balance(store) == 1000
    assert store.fake.discounts == []


def test_another_merchants_reward_is_404_both_ways(store: ShopifyStore) -> None:
    other = second_store(store, "other.myshopify.com", name="Other", currency="EUR")
    _earn(store, "5001", "1000.00")
    _earn(other, "6001", "1000.00", customer_id="8001")
    ours, theirs = _rewards(store), _rewards(other)
    assert set(ours.values()).isdisjoint(theirs.values())
    for kind, reward_id in theirs.items():
        answer = _redeem(store, {"reward_id": reward_id}, f"k-{kind}")
        assert answer.status_code == 404, (kind, answer.json)
    for kind, reward_id in ours.items():
        answer = _redeem(other, {"reward_id": reward_id}, f"k-{kind}", customer_id="8001")
        assert answer.status_code == 404, (kind, answer.json)
    # The same customer id at the other shop is another member with its own balance.
    assert _balance(other, "7001") == 0
    assert _balance(store) == 1000 and _balance(other, "8001") == 1000
    assert store.fake.discounts == []
    # Their own rewards still work for them.
    assert _redeem(other, {"reward_id": theirs["fixed_amount"]}, "k-own",
                   customer_id="8001").status_code == 200


@pytest.mark.parametrize("key", [None, "", "   ", "k" * 201])
def test_a_missing_or_unusable_idempotency_key_is_400(store: ShopifyStore,
                                                      key: str | None) -> None:
    _earn(store, "5001", "1000.00")
    answer = _redeem(store, {"reward_id": _rewards(store)["fixed_amount"]}, key)
    assert answer.status_code == 400, answer.json
    assert answer.json["error"] == "idempotency_key_required"
    assert _balance(store) == 1000
    assert store.fake.discounts == []


def test_same_key_with_another_body_is_409(store: ShopifyStore) -> None:
    _earn(store, "5001", "2000.00")
    rewards = _rewards(store)
    first = _redeem(store, {"reward_id": rewards["fixed_amount"]}, "k-1")
    assert first.status_code == 200, first.json
    other_body = _redeem(store, {"reward_id": rewards["percentage"]}, "k-1")
    assert other_body.status_code == 409 and other_body.json["error"] == "idempotency_conflict"
    replay = _redeem(store, {"reward_id": str(rewards["fixed_amount"])}, "k-1")
    assert replay.status_code == 200 and replay.json == first.json
    assert len(store.fake.discounts) == 1
    assert _balance(store) == 2000 - 500


def test_a_refused_first_answer_is_replayed_too(store: ShopifyStore) -> None:
    _earn(store, "5001", "100.00")
    rewards = _rewards(store)
    first = _redeem(store, {"reward_id": rewards["fixed_amount"]}, "k-1")
    assert first.status_code == 409
    _earn(store, "5002", "1000.00")
    # Same key, same body: the first answer, even though the points are there now.
    again = _redeem(store, {"reward_id": rewards["fixed_amount"]}, "k-1")
    assert (again.status_code, again.json) == (409, first.json)
    assert _redeem(store, {"reward_id": rewards["percentage"]}, "k-1").status_code == 409
    assert _redeem(store, {"reward_id": rewards["fixed_amount"]}, "k-2").status_code == 200


def test_one_shoppers_key_never_replays_anothers_code(store: ShopifyStore) -> None:
    _earn(store, "5001", "1000.00")
    reward = _rewards(store)["fixed_amount"]
    mine = _redeem(store, {"reward_id": reward}, "shared-key")
    assert mine.status_code == 200
    theirs = _redeem(store, {"reward_id": reward}, "shared-key", customer_id="7002")
    assert theirs.status_code == 409 and theirs.json["error"] == "insufficient_points"
    assert mine.json["redemption"]["code"] not in json.dumps(theirs.json)


INVALID_BODIES: list[tuple[str, Any]] = [
    ("reward_id true", {"reward_id": True}),
    ("reward_id false", {"reward_id": False}),
    ("top-level string", "12"),
    ("top-level list", []),
    ("top-level list of id", [12]),
    ("top-level -1", -1),
    ("top-level number", 12),
    ("top-level null", None),
    ("reward_id -1", {"reward_id": -1}),
    ("reward_id 0", {"reward_id": 0}),
    ("reward_id 2**70", {"reward_id": 2**70}),
    ("reward_id 2**63", {"reward_id": 2**63}),
    ("reward_id float", {"reward_id": 1.5}),
    ("reward_id null", {"reward_id": None}),
    ("reward_id list", {"reward_id": [1]}),
    ("reward_id object", {"reward_id": {"id": 1}}),
    ("reward_id words", {"reward_id": "twelve"}),
    ("reward_id signed string", {"reward_id": "-1"}),
    ("reward_id empty string", {"reward_id": ""}),
    ("reward_id huge string", {"reward_id": "9" * 30}),
    ("reward_id superscript digit", {"reward_id": "\u00b2"}),
    ("no reward_id", {}),
    ("other key", {"reward": 1}),
    ("not json", b"reward_id=1"),
    ("broken json", b'{"reward_id": 1'),
    ("empty body", b""),
]


def test_invalid_bodies_are_400(store: ShopifyStore) -> None:
    _earn(store, "5001", "1000.00")
    for index, (label, body) in enumerate(INVALID_BODIES):
        # A shopper per body: redemptions are rate-limited per shopper.
        shopper = "7001" if index < 5 else f"90{index}"
        answer = _redeem(store, body, f"k-invalid-{index}", customer_id=shopper)
        assert answer.status_code == 400, (label, answer.status_code,
                                           answer.get_data(as_text=True)[:300])
        assert answer.json["error"] == "invalid_argument", label
    assert _balance(store) == 1000
    assert store.fake.discounts == []
