"""``POST /webhooks/woocommerce/<store_id>``: the creation ping, or verify, store, answer
(DESIGN §6, §8). WooCommerce's payload is the resource as it is now, so a delivery is keyed
by the resource, its modification time and its content: copies of the same state are one
delivery, and a newer state is a new one whatever its delivery id."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from flask import Blueprint, Response, jsonify, request

from integrations.woocommerce.webhooks import (
    InvalidDelivery,
    delivery_headers,
    ping_webhook_id,
    verify_webhook,
)
from plugin_server import MAX_REQUEST_BYTES
from plugin_server.crypto import CredentialsError
from plugin_server.loyalty.inbox import store_delivery_now
from plugin_server.loyalty.widget_identity import merchant_by_store_id
from plugin_server.woocommerce.connect import webhook_secret

from .session import db_read_session, release_read_session, runtime

log = logging.getLogger(__name__)
woocommerce_webhooks = Blueprint("woocommerce_webhooks", __name__)

KEPT_HEADERS = ("X-WC-Webhook-Topic", "X-WC-Webhook-Resource", "X-WC-Webhook-Event",
                "X-WC-Webhook-ID", "X-WC-Webhook-Delivery-ID", "X-WC-Webhook-Source")


def _answer(status: int, code: str, message: str) -> tuple[Response, int]:
    if status >= 400:
        log.warning("woocommerce webhook refused (%s %s): %s", status, code, message)
    return jsonify({"status": "error" if status >= 400 else code, "error": code,
                    "message": message}), status


def _document(raw: bytes) -> dict[str, Any] | None:
    try:
        data: Any = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) and data.get("id") is not None else None


def event_key(raw: bytes, delivery_id: str = "", data: dict[str, Any] | None = None) -> str:
    """The resource's id and modification time with the body's digest: copies of one state
    are one delivery, and two changes within the same second (WooCommerce dates have whole
    seconds) are two. A deletion's body is the id alone, the same every time the order is
    trashed: its delivery id tells them apart (reading the order makes a repeat harmless).
    ``data`` is the body already parsed by ``_document``, when the caller has it."""
    digest = hashlib.sha256(raw).hexdigest()[:32]
    data = _document(raw) if data is None else data
    if data is None:
        return f"sha256:{digest}"
    if set(data) == {"id"}:
        return f"{str(data['id'])[:40]}@deleted:{delivery_id[:40]}:{digest}"
    modified = data.get("date_modified_gmt") or data.get("date_modified") or ""
    return f"{str(data['id'])[:40]}@{str(modified)[:25]}:{digest}"


def _needs_reading(topic: str, data: dict[str, Any] | None) -> str | None:
    """The order id to read from the store: a deletion, or an order listing refunds (whose
    lines only the store can tell)."""
    if data is None or not topic.startswith("order."):
        return None
    if topic == "order.deleted" or data.get("refunds"):
        return str(data["id"])[:40]
    return None


@woocommerce_webhooks.post("/webhooks/woocommerce/<store_id>")
def receive(store_id: str) -> tuple[Response, int]:
    if (request.content_length or 0) > MAX_REQUEST_BYTES:
        return _answer(413, "too_large", f"body is larger than {MAX_REQUEST_BYTES} bytes")
    raw = request.get_data(cache=False)
    if len(raw) >= MAX_REQUEST_BYTES:
        return _answer(413, "too_large", f"body is larger than {MAX_REQUEST_BYTES} bytes")
    merchant = merchant_by_store_id(db_read_session(), store_id[:64])
    if merchant is None or merchant.platform != "woocommerce":
        return _answer(404, "not_found", "no WooCommerce store with this id")
    webhook = ping_webhook_id(raw, request.headers)
    if webhook is not None:
        # Creating a webhook sends this unsigned ping; it changes nothing.
        log.info("woocommerce store %s: ping for webhook %s", merchant.shop, webhook)
        return _answer(200, "ping", "webhook reachable")
    try:
        secret = webhook_secret(merchant, runtime().settings.ENCRYPTION_KEY)
    except CredentialsError:
        return _answer(503, "not_configured", "the store's webhook secret cannot be read")
    merchant_id, shop, active = merchant.id, merchant.shop, merchant.status == "active"
    release_read_session()
    if secret is None or not verify_webhook(
            raw, request.headers.get("X-WC-Webhook-Signature"), secret):
        return _answer(401, "invalid_signature", "X-WC-Webhook-Signature does not match the body")
    try:
        delivery = delivery_headers(request.headers)
    except InvalidDelivery as error:
        return _answer(400, "invalid_delivery", str(error))
    if not active:
        log.info("woocommerce store %s is not active: %s kept for later", shop, delivery.topic)
    headers = {name: request.headers[name] for name in KEPT_HEADERS if name in request.headers}
    data = _document(raw)  # parsed once: the key and the read-back both need it
    key = event_key(raw, request.headers.get("X-WC-Webhook-Delivery-ID", ""), data)
    event = store_delivery_now(runtime().database.engine, merchant_id, "woocommerce",
                               delivery.topic, key, raw, headers)
    if event is None:
        return _answer(200, "duplicate", "this state of the resource was received before")
    runtime().jobs.enqueue("process_inbox_event", event)
    if (order_id := _needs_reading(delivery.topic, data)) is not None and active:
        # Reads the store: in eager mode it runs here, and the store being down must not
        # turn an acknowledged delivery into a 500.
        runtime().jobs.enqueue_committed("woocommerce_refresh_order", merchant_id, order_id)
    return _answer(200, "stored", "stored; it will be processed shortly")
