"""``POST /webhooks/shopify``: verify, store, answer (DESIGN §6). Nothing else happens here:
no outbound call and no point arithmetic; a job processes the delivery after the commit."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from integrations.shopify.admin import InvalidShop, normalize_shop
from plugin_server import MAX_REQUEST_BYTES
from plugin_server.loyalty.inbox import store_delivery_now
from plugin_server.shopify.settings import WEBHOOK_PATH, shopify_app, shopify_config

from .session import runtime
from .shopify_shops import known_shop

log = logging.getLogger(__name__)
shopify_webhooks = Blueprint("shopify_webhooks", __name__)

KEPT_HEADERS = ("X-Shopify-Topic", "X-Shopify-Shop-Domain", "X-Shopify-API-Version",
                "X-Shopify-Webhook-Id", "X-Shopify-Event-Id", "X-Shopify-Triggered-At")
MAX_BODY_BYTES = MAX_REQUEST_BYTES


def _answer(status: int, code: str, message: str) -> tuple[Response, int]:
    if status >= 400:
        log.warning("shopify webhook refused (%s %s): %s", status, code, message)
    return jsonify({"status": "error" if status >= 400 else code, "error": code,
                    "message": message}), status


def _bytes_signed(raw: bytes) -> bool:
    received = request.headers.get("X-Shopify-Hmac-Sha256", "").encode()
    matched = False
    for secret in shopify_config(runtime().settings).secrets:
        digest = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest())
        matched = hmac.compare_digest(digest, received) or matched
    return bool(received) and matched


@shopify_webhooks.post(WEBHOOK_PATH)
def receive() -> tuple[Response, int]:
    app = shopify_app(runtime().settings)
    if app is None:
        return _answer(503, "not_configured", "SHOPIFY_API_KEY / SHOPIFY_API_SECRET are not set")
    if (request.content_length or 0) > MAX_BODY_BYTES:
        return _answer(413, "too_large", f"body is larger than {MAX_BODY_BYTES} bytes")
    try:
        # Read one byte past the limit: a chunked body has no Content-Length to refuse early.
        raw = request.stream.read(MAX_BODY_BYTES + 1)
    except RequestEntityTooLarge:
        raw = b"x" * (MAX_BODY_BYTES + 1)
    # The app caps every stream at MAX_CONTENT_LENGTH (= this limit) and stops there quietly.
    if len(raw) >= MAX_BODY_BYTES:
        return _answer(413, "too_large", f"body is larger than {MAX_BODY_BYTES} bytes")
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        # The package signs text; a body that is not UTF-8 is checked on its bytes here, so
        # a signed but broken body is still stored (and fails with its reason).
        if not _bytes_signed(raw):
            return _answer(401, "invalid_hmac", "hmac header does not match the body")
    else:
        verified = app.verify_webhook_req({"method": request.method,
                                           "headers": dict(request.headers),
                                           "url": request.url, "body": body})
        if not verified.ok:
            # The package answers 400 for a missing header; a missing signature is as bad as
            # a wrong one here: 401, nothing stored.
            status = 401 if verified.log.code in ("missing_hmac_header", "invalid_hmac") else (
                verified.response.status)
            return _answer(status, verified.log.code, verified.log.detail.split(". ")[0])
    try:
        shop = normalize_shop(request.headers.get("X-Shopify-Shop-Domain"))
    except InvalidShop as error:
        return _answer(400, "invalid_shop", f"X-Shopify-Shop-Domain: {error}")
    topic = request.headers.get("X-Shopify-Topic", "").strip()
    if not topic or len(topic) > 80:
        return _answer(400, "invalid_topic", "X-Shopify-Topic is missing or too long")
    # The event id names one merchant action across retries; older API versions only send
    # the delivery id; failing both, identical bodies are one delivery.
    event_id = (request.headers.get("X-Shopify-Event-Id")
                or request.headers.get("X-Shopify-Webhook-Id")
                or "sha256:" + hashlib.sha256(raw).hexdigest())
    known = known_shop(shop)
    if known is None:
        log.warning("shopify webhook %s for unknown shop %s ignored", topic, shop)
        return _answer(200, "ignored", f"{shop} has not installed this app")
    headers = {name: request.headers[name] for name in KEPT_HEADERS if name in request.headers}
    event = store_delivery_now(runtime().database.engine, known.merchant_id, "shopify", topic,
                               event_id, raw, headers)
    if event is None:
        return _answer(200, "duplicate", "this delivery was received before")
    runtime().jobs.enqueue("process_inbox_event", event)
    return _answer(200, "stored", "stored; it will be processed shortly")

