"""WooCommerce webhook signatures, the creation ping, delivery headers and wc-auth."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from integrations.woocommerce.auth import (
    ApiKeys,
    InvalidCallback,
    authorize_url,
    parse_auth_callback,
)
from integrations.woocommerce.simulator import FakeWooCommerce
from integrations.woocommerce.webhooks import (
    TOPICS,
    InvalidDelivery,
    WooDelivery,
    delivery_headers,
    new_webhook_secret,
    ping_webhook_id,
    verify_webhook,
    webhook_signature,
)
from tests.support.fixtures import fixture_bytes, fixture_json

EXAMPLE = fixture_json("woocommerce/webhook_headers_example.json")["example"]
BODY = fixture_bytes("woocommerce/rest/order.json")
VECTOR = "z5WgKizz0lB6jg96CXmdO5pkbno7RSHkyGToV7RkdOY="


def test_signature_vector() -> None:
    assert len(BODY) == EXAMPLE["body_length_bytes"]
    assert EXAMPLE["request_headers"]["X-WC-Webhook-Signature"] == VECTOR
    assert webhook_signature(BODY, "hush") == VECTOR
    assert verify_webhook(BODY, VECTOR, "hush")


@pytest.mark.parametrize(("body", "signature", "secret"), [
    (BODY + b" ", VECTOR, "hush"),                      # one byte more
    (BODY.replace(b"29.35", b"99.35"), VECTOR, "hush"),  # tampered total
    (BODY, VECTOR, "hush2"),                             # other secret
    (BODY, VECTOR, ""),                                  # empty secret signs nothing
    (BODY, None, "hush"),
    (BODY, "", "hush"),
    (BODY, "not base64!", "hush"),
    (BODY, VECTOR.lower(), "hush"),
    (BODY, "é" * 44, "hush"),
    (BODY, "A" * 5000, "hush"),
    (BODY, EXAMPLE["signature_hex_for_reference"], "hush"),  # hex is not what WooCommerce sends
])
def test_bad_signatures(body: bytes, signature: str | None, secret: str) -> None:
    assert verify_webhook(body, signature, secret) is False


def test_ping() -> None:
    body, headers = FakeWooCommerce.ping(142)
    assert ping_webhook_id(body, headers) == 142
    assert ping_webhook_id(b"webhook_id=7", {}) == 7


@pytest.mark.parametrize(("body", "headers"), [
    (b"webhook_id=142", {"X-WC-Webhook-Signature": "anything"}),  # signed-looking: not a ping
    (b"webhook_id=142", {"x-wc-webhook-signature": ""}),
    (b"webhook_id=142&x=1", {}),
    (b"webhook_id=", {}),
    (b"webhook_id=0", {}),
    (b"webhook_id=-1", {}),
    (b"webhook_id=142\n", {}),
    (b"webhook_id=1" + b"0" * 30, {}),
    (b'{"webhook_id": 142}', {}),
    (BODY, {}),
])
def test_not_pings(body: bytes, headers: dict[str, str]) -> None:
    assert ping_webhook_id(body, headers) is None


def test_delivery_headers_from_the_example() -> None:
    delivery = delivery_headers(EXAMPLE["request_headers"])
    assert delivery == WooDelivery(topic="order.updated", resource="order", event="updated",
                                   webhook_id="142",
                                   delivery_id="0123456789abcdef0123456789abcdef",
                                   source="http://example.com/")


def test_delivery_headers_are_case_insensitive_and_fill_resource_and_event() -> None:
    delivery = delivery_headers({"x-wc-webhook-topic": "customer.created",
                                 "X-WC-WEBHOOK-ID": "9"})
    assert (delivery.resource, delivery.event, delivery.webhook_id) == ("customer", "created",
                                                                         "9")
    assert delivery.delivery_id == "" and delivery.source == ""


@pytest.mark.parametrize(("changes", "message"), [
    ({"X-WC-Webhook-Topic": None}, "X-WC-Webhook-Topic header is missing"),
    ({"X-WC-Webhook-Topic": "order"}, "must look like resource.event"),
    ({"X-WC-Webhook-Topic": "order.updated.x"}, "must look like resource.event"),
    ({"X-WC-Webhook-Topic": "Order.Updated"}, "must look like resource.event"),
    ({"X-WC-Webhook-Event": "created"}, "disagree with the topic"),
    ({"X-WC-Webhook-ID": None}, "X-WC-Webhook-ID header is missing"),
    ({"X-WC-Webhook-ID": "14x"}, "X-WC-Webhook-ID must be a number"),
    ({"X-WC-Webhook-Source": "x" * 3000}, "X-WC-Webhook-Source header must be text"),
])
def test_bad_delivery_headers(changes: dict[str, Any], message: str) -> None:
    headers = {**EXAMPLE["request_headers"], **changes}
    headers = {name: value for name, value in headers.items() if value is not None}
    with pytest.raises(InvalidDelivery, match=message):
        delivery_headers(headers)


def test_simulated_delivery_verifies() -> None:
    store = FakeWooCommerce(base_url="https://shop.example.com")
    body, headers = store.signed_delivery("order.created", {"id": 5, "note": "a/b é"}, "s3cret")
    assert b"a\\/b \\u00e9" in body  # PHP's json encoding, byte for byte
    assert verify_webhook(body, headers["X-WC-Webhook-Signature"], "s3cret")
    assert ping_webhook_id(body, headers) is None
    delivery = delivery_headers(headers)
    assert delivery.topic == "order.created" and delivery.source == "https://shop.example.com/"


def test_topics_and_secret() -> None:
    assert "order.updated" in TOPICS and "customer.created" in TOPICS
    secrets = {new_webhook_secret() for _ in range(20)}
    assert len(secrets) == 20
    assert all(len(secret) == 40 and secret.isalnum() and secret.isascii()
               for secret in secrets)


# ---- wc-auth ---------------------------------------------------------------------------------

def test_authorize_url() -> None:
    url = authorize_url("https://example.com/shop", app_name="Loyalty & Co", user_id="n0nce",
                        return_url="https://app.test/woocommerce/connected?x=1",
                        callback_url="https://app.test/woocommerce/auth-callback")
    parts = urlsplit(url)
    assert url.startswith("https://example.com/shop/wc-auth/v1/authorize?app_name=")
    assert parse_qs(parts.query) == {
        "app_name": ["Loyalty & Co"], "scope": ["read_write"], "user_id": ["n0nce"],
        "return_url": ["https://app.test/woocommerce/connected?x=1"],
        "callback_url": ["https://app.test/woocommerce/auth-callback"]}


def test_callback_roundtrip_and_repr_hides_keys() -> None:
    keys = FakeWooCommerce().issue_keys(user_id="n0nce")
    parsed = parse_auth_callback(FakeWooCommerce.callback_body(keys))
    assert parsed == keys
    assert isinstance(parsed, ApiKeys) and parsed.user_id == "n0nce"
    assert keys.consumer_secret not in repr(parsed) and keys.consumer_key not in repr(parsed)


GOOD = {"key_id": 1, "user_id": "123", "consumer_key": "ck_" + "a" * 40,
        "consumer_secret": "cs_" + "b" * 40, "key_permissions": "read_write"}


@pytest.mark.parametrize(("changes", "message"), [
    ({"key_id": "1"}, "key_id must be a positive whole number"),
    ({"key_id": True}, "key_id"),
    ({"key_id": 0}, "key_id"),
    ({"user_id": ""}, "user_id must be text"),
    ({"user_id": None}, "user_id must be text"),
    ({"user_id": "u" * 201}, "user_id must be text"),
    ({"consumer_key": "cs_" + "a" * 40}, "consumer_key must be 'ck_'"),
    ({"consumer_secret": "ck_" + "a" * 40}, "consumer_secret must be 'cs_'"),
    ({"consumer_secret": "cs_" + "b" * 400}, "consumer_secret"),
    ({"key_permissions": "read"}, "key_permissions must be 'read_write'"),
])
def test_bad_callbacks(changes: dict[str, Any], message: str) -> None:
    body = json.dumps({**GOOD, **changes}).encode()
    with pytest.raises(InvalidCallback, match=message) as caught:
        parse_auth_callback(body)
    assert "b" * 40 not in str(caught.value)  # never repeats the secret


@pytest.mark.parametrize("body", [b"", b"key_id=1", b"[]", b"{" * 100_000, b" " * 20_000])
def test_callbacks_that_are_not_json_objects(body: bytes) -> None:
    with pytest.raises(InvalidCallback):
        parse_auth_callback(body)


def test_numeric_user_id_is_text() -> None:
    assert parse_auth_callback(json.dumps({**GOOD, "user_id": 7}).encode()).user_id == "7"
