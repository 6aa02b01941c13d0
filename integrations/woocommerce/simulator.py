"""A stand-in WooCommerce store for the tests and the demo: it answers the REST calls this app
makes (``/wp-json/wc/v3`` orders, refunds, webhooks, coupons), issues API keys as wc-auth does,
and signs webhook deliveries the way WooCommerce does. Documents (``simulator_documents``) have
the REST shape of the published examples (``shared/fixtures/woocommerce/rest``). It is never
used against a real store. Mount it with ``serve_with(httpserver)`` (pytest-httpserver) or as
the WSGI app ``wsgi``."""

from __future__ import annotations

import base64
import binascii
import copy
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from .auth import ApiKeys
from .simulator_coupons import CouponDesk
from .simulator_documents import (  # noqa: F401 (re-exported: callers import them from here)
    CENTS,
    WC_VERSION,
    NewId,
    _line,
    _links,
    order_document,
    php_json,
    recompute_totals,
    refund_document,
)
from .webhooks import webhook_signature

API_PREFIX = "/wp-json/wc/v3/"
_ITEM = re.compile(r"(orders|webhooks|coupons)/([0-9]+)(/refunds)?")
_SORT_KEYS = {"date": "date_created_gmt", "modified": "date_modified_gmt", "id": "id"}
_HIDDEN_QUERY = {"consumer_secret", "oauth_signature"}

DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"  # WooCommerce's dates: naive, the _gmt ones in GMT

Answer = tuple[int, dict[str, str], Any]


def _error(status: int, code: str, message: str) -> Answer:
    return status, {}, {"code": code, "message": message, "data": {"status": status}}


@dataclass
class FakeWooCommerce(CouponDesk):
    """One store. Thread-safe; ``requests`` records every call (credentials left out)."""

    base_url: str = "http://store.test"
    currency: str = "USD"
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    order_refunds: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    coupons: list[dict[str, Any]] = field(default_factory=list)
    trashed_coupons: set[int] = field(default_factory=set)
    webhooks: dict[int, dict[str, Any]] = field(default_factory=dict)
    webhook_secrets: dict[int, str] = field(default_factory=dict)
    keys: dict[str, ApiKeys] = field(default_factory=dict)
    pings: list[tuple[str, bytes]] = field(default_factory=list)  # (delivery_url, body)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)  # statuses to answer first, in order
    delay: float = 0.0  # seconds before each answer (timeout tests)
    _next_id: int = 1000
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    # ---- state helpers -----------------------------------------------------------------------

    def _new_id(self) -> int:
        with self._lock:
            self._next_id += 1
            return self._next_id

    def _stamp(self) -> str:
        return self.clock().astimezone(UTC).strftime(DATE_FORMAT)

    def issue_keys(self, user_id: str = "1") -> ApiKeys:
        """Keys as wc-auth grants them (what it POSTs to the app's callback_url)."""
        keys = ApiKeys(key_id=self._new_id(), user_id=str(user_id),
                       consumer_key="ck_" + secrets.token_hex(20),
                       consumer_secret="cs_" + secrets.token_hex(20),
                       key_permissions="read_write")
        with self._lock:
            self.keys[keys.consumer_key] = keys
        return keys

    @staticmethod
    def callback_body(keys: ApiKeys) -> bytes:
        """The JSON body wc-auth POSTs to ``callback_url`` (``user_id`` as a string)."""
        return json.dumps({"key_id": keys.key_id, "user_id": keys.user_id,
                           "consumer_key": keys.consumer_key,
                           "consumer_secret": keys.consumer_secret,
                           "key_permissions": keys.key_permissions}).encode()

    def revoke_keys(self) -> None:
        """The merchant deleted the app's keys: every call now answers 401."""
        with self._lock:
            self.keys.clear()

    def add_order(self, **changes: Any) -> dict[str, Any]:
        """A new order (guest by default, status processing) with ``changes`` applied on top;
        totals follow the line items unless ``total`` is given."""
        with self._lock:
            order_id = self._new_id()
            order = order_document(order_id, self._stamp(), self.currency, self.base_url,
                                   self._new_id)
            self.orders[order_id] = order
            self._change(order, changes)
            return copy.deepcopy(order)

    def _change(self, order: dict[str, Any], changes: Mapping[str, Any]) -> None:
        order.update(copy.deepcopy(dict(changes)))
        if "line_items" in changes and "total" not in changes:
            recompute_totals(order, self._new_id)

    def update_order(self, order_id: int | str, **changes: Any) -> dict[str, Any]:
        """Apply ``changes``; the order's modification date becomes now."""
        with self._lock:
            order = self.orders[int(order_id)]
            self._change(order, changes)
            stamp = self._stamp()
            order["date_modified"] = order["date_modified_gmt"] = stamp
            if changes.get("status") == "completed" and not order.get("date_completed_gmt"):
                order["date_completed"] = order["date_completed_gmt"] = stamp
            return copy.deepcopy(order)

    def add_refund(self, order_id: int | str, amount: str, *, reason: str = "",
                   lines: Iterable[tuple[int | str, int, str]] = (),
                   shipping: str | None = None) -> dict[str, Any]:
        """A refund as the merchant makes one in the admin: ``lines`` are (order line id,
        quantity, amount). The order lists it and is modified now; refunding the whole total
        makes it ``refunded``, as WooCommerce does."""
        with self._lock:
            order = self.orders[int(order_id)]
            refund = refund_document(self._new_id(), order, self._stamp(), amount, reason,
                                     lines, shipping, self.base_url, self._new_id)
            self.order_refunds.setdefault(order["id"], []).insert(0, refund)
            order.setdefault("refunds", []).insert(
                0, {"id": refund["id"], "reason": reason, "total": f"-{refund['amount']}"})
            refunded = sum((Decimal(r["amount"]) for r in self.order_refunds[order["id"]]),
                           Decimal(0))
            status = {"status": "refunded"} if refunded >= Decimal(order["total"]) else {}
            self.update_order(order["id"], **status)
            return copy.deepcopy(refund)

    # ---- deliveries --------------------------------------------------------------------------

    def signed_delivery(self, topic: str, resource: Mapping[str, Any], secret: str, *,
                        webhook_id: int | None = None) -> tuple[bytes, dict[str, str]]:
        """A webhook POST as WooCommerce sends it: body and ``X-WC-Webhook-*`` headers. The
        webhook id is the one subscribed to ``topic`` when not given."""
        if webhook_id is None:
            webhook_id = next((hook_id for hook_id, hook in self.webhooks.items()
                               if hook["topic"] == topic), 1)
        body = php_json(resource)
        resource_name, _, event = topic.partition(".")
        return body, {
            "Content-Type": "application/json",
            "User-Agent": f"WooCommerce/{WC_VERSION} Hookshot (WordPress/6.8)",
            "X-WC-Webhook-Source": self.base_url.rstrip("/") + "/",
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Resource": resource_name,
            "X-WC-Webhook-Event": event,
            "X-WC-Webhook-Signature": webhook_signature(body, secret),
            "X-WC-Webhook-ID": str(webhook_id),
            "X-WC-Webhook-Delivery-ID": secrets.token_hex(16),
        }

    @staticmethod
    def ping(webhook_id: int) -> tuple[bytes, dict[str, str]]:
        """The unsigned ping WooCommerce POSTs when a webhook is created."""
        return f"webhook_id={webhook_id}".encode(), {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": f"WooCommerce/{WC_VERSION} Hookshot (WordPress/6.8)"}

    # ---- HTTP --------------------------------------------------------------------------------

    def _authorized(self, query: Mapping[str, str], headers: Mapping[str, str]) -> bool:
        lowered = {name.lower(): value for name, value in headers.items()}
        authorization = lowered.get("authorization", "")
        if authorization[:6].lower() == "basic ":
            try:
                pair = base64.b64decode(authorization[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return False
            key, _, secret = pair.partition(":")
            return self._valid(key, secret)
        if "consumer_key" in query:
            return self._valid(query["consumer_key"], query.get("consumer_secret", ""))
        # OAuth 1.0a (what the package sends over http): the key must be one this store
        # issued; the signature is not checked, this fake only stands in for the store.
        return query.get("oauth_consumer_key", "") in self.keys

    def _valid(self, key: str, secret: str) -> bool:
        keys = self.keys.get(key)
        return keys is not None and hmac.compare_digest(keys.consumer_secret.encode(),
                                                        secret.encode())

    def handle(self, method: str, path: str, query: Mapping[str, str],
               headers: Mapping[str, str], body: bytes) -> Answer:
        """One HTTP request: (status, response headers, JSON document)."""
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            self.requests.append((method, path, {key: value for key, value in query.items()
                                                 if key not in _HIDDEN_QUERY}))
            if self.fail_next:
                status = self.fail_next.pop(0)
                return _error(status, "fake_failure", f"planned failure {status}")
            start = path.find(API_PREFIX)
            if start < 0:
                return _error(404, "rest_no_route", "No route was found matching the URL.")
            if not self._authorized(query, headers):
                return _error(401, "woocommerce_rest_cannot_view",
                              "Sorry, you cannot list resources.")
            try:
                document = json.loads(body) if body else {}
            except ValueError:
                return _error(400, "rest_invalid_json", "Invalid JSON body passed.")
            return self._route(method, path[start + len(API_PREFIX):].strip("/"), query,
                               document if isinstance(document, dict) else {})

    def _route(self, method: str, route: str, query: Mapping[str, str],
               document: dict[str, Any]) -> Answer:
        if route == "orders" and method == "GET":
            return self._list_orders(query)
        if route == "webhooks" and method == "GET":
            return self._page(sorted(self.webhooks.values(), key=lambda hook: hook["id"]), query)
        if route == "webhooks" and method == "POST":
            return self._create_webhook(document)
        if route == "coupons" and method == "POST":
            return self._create_coupon(document)
        if route == "coupons" and method == "GET":
            return self._list_coupons(query)
        match = _ITEM.fullmatch(route)
        if match and match.group(1) == "coupons" and not match.group(3):
            return self._coupon_item(method, int(match.group(2)), query)
        if match and match.group(1) == "orders" and method == "GET":
            order = self.orders.get(int(match.group(2)))
            if order is None:
                return _error(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
            if match.group(3):
                return 200, {}, copy.deepcopy(self.order_refunds.get(order["id"], []))
            return 200, {}, copy.deepcopy(order)
        if match and match.group(1) == "webhooks" and not match.group(3) and method == "PUT":
            return self._update_webhook(int(match.group(2)), document)
        return _error(404, "rest_no_route", "No route was found matching the URL and "
                      "request method.")

    def _page(self, items: list[dict[str, Any]], query: Mapping[str, str]) -> Answer:
        raw_page, raw_size = query.get("page", "1"), query.get("per_page", "10")
        if not (raw_page.isdecimal() and raw_size.isdecimal() and int(raw_page) >= 1
                and 1 <= int(raw_size) <= 100):
            return _error(400, "rest_invalid_param", "Invalid parameter(s): page, per_page")
        page, per_page = int(raw_page), int(raw_size)
        pages = (len(items) + per_page - 1) // per_page
        raw_offset = query.get("offset")
        if raw_offset is not None and not raw_offset.isdecimal():
            return _error(400, "rest_invalid_param", "Invalid parameter(s): offset")
        # As in WordPress, an offset replaces the page.
        start = int(raw_offset) if raw_offset is not None else (page - 1) * per_page
        chunk = items[start: start + per_page]
        headers = {"X-WP-Total": str(len(items)), "X-WP-TotalPages": str(pages)}
        return 200, headers, copy.deepcopy(chunk)

    def _list_orders(self, query: Mapping[str, str]) -> Answer:
        orders = list(self.orders.values())
        if query.get("modified_after"):
            try:
                after = datetime.fromisoformat(query["modified_after"].replace("Z", "+00:00"))
            except ValueError:
                return _error(400, "rest_invalid_param", "Invalid parameter(s): modified_after")
            if after.tzinfo is not None:
                after = after.astimezone(UTC).replace(tzinfo=None)
            # The fake's site time zone is UTC, so local and GMT dates agree.
            orders = [order for order in orders
                      if datetime.fromisoformat(order["date_modified_gmt"]) > after]
        wanted = set(query.get("status", "any").split(","))
        # As in WooCommerce, "any" is every status but the trash (which must be asked for).
        orders = [order for order in orders if order["status"] in wanted
                  or ("any" in wanted and order["status"] != "trash")]
        key = _SORT_KEYS.get(query.get("orderby", "date"))
        if key is None:
            return _error(400, "rest_invalid_param", "Invalid parameter(s): orderby")
        orders.sort(key=lambda order: (order[key], order["id"]),
                    reverse=query.get("order", "desc") == "desc")
        return self._page(orders, query)

    def _create_webhook(self, document: dict[str, Any]) -> Answer:
        topic, url = document.get("topic"), document.get("delivery_url")
        if not isinstance(topic, str) or not re.fullmatch(r"[a-z_]+\.[a-z_]+", topic) \
                or not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return _error(400, "rest_invalid_param", "Invalid parameter(s): topic, "
                          "delivery_url")
        hook_id, stamp = self._new_id(), self._stamp()
        resource, _, event = topic.partition(".")
        hook = {"id": hook_id, "name": str(document.get("name") or "Webhook"),
                "status": str(document.get("status") or "active"), "topic": topic,
                "resource": resource, "event": event, "hooks": [], "delivery_url": url,
                "date_created": stamp, "date_created_gmt": stamp, "date_modified": stamp,
                "date_modified_gmt": stamp}
        self.webhooks[hook_id] = hook
        self.webhook_secrets[hook_id] = str(document.get("secret") or secrets.token_hex(25))
        self.pings.append((url, f"webhook_id={hook_id}".encode()))
        return 201, {}, copy.deepcopy(hook)

    def _update_webhook(self, hook_id: int, document: dict[str, Any]) -> Answer:
        hook = self.webhooks.get(hook_id)
        if hook is None:
            return _error(404, "woocommerce_rest_webhook_invalid_id", "Invalid ID.")
        for name in ("name", "status", "delivery_url", "topic"):
            if name in document:
                hook[name] = document[name]
        if "secret" in document:
            self.webhook_secrets[hook_id] = str(document["secret"])
        hook["resource"], _, hook["event"] = str(hook["topic"]).partition(".")
        hook["date_modified"] = hook["date_modified_gmt"] = self._stamp()
        return 200, {}, copy.deepcopy(hook)

    # ---- mounting ----------------------------------------------------------------------------

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        """The fake as a WSGI application (e.g. on a werkzeug server for the demo)."""
        headers = {key[5:].replace("_", "-").title(): value for key, value in environ.items()
                   if key.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        # Last value wins, as in PHP (the package repeats the query over OAuth).
        query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        status, extra, document = self.handle(environ["REQUEST_METHOD"],
                                              environ.get("PATH_INFO", ""), query, headers, body)
        payload = json.dumps(document).encode()
        start_response(f"{status} {HTTPStatus(status).phrase}",
                       [("Content-Type", "application/json; charset=UTF-8"),
                        ("Content-Length", str(len(payload))), *extra.items()])
        return [payload]

    def serve_with(self, httpserver: Any) -> str:
        """Answer every request to a pytest-httpserver with this store; returns its URL."""
        from werkzeug.wrappers import Request, Response  # only tests mount it this way

        def handler(request: Request) -> Response:
            status, extra, document = self.handle(
                request.method, request.path, dict(request.args.items(multi=True)),
                dict(request.headers.items()), request.get_data())
            return Response(json.dumps(document), status=status, headers=extra,
                            content_type="application/json; charset=UTF-8")

        httpserver.expect_request(re.compile(".*")).respond_with_handler(handler)
        self.base_url = httpserver.url_for("/").rstrip("/")
        return self.base_url
