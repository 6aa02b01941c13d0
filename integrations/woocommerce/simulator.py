"""A stand-in WooCommerce store for the tests and the demo: it answers the REST calls this app
makes (``/wp-json/wc/v3`` orders, refunds, webhooks, coupons), issues API keys as wc-auth does,
and signs webhook deliveries the way WooCommerce does. Documents have the REST shape of the
published examples (``shared/fixtures/woocommerce/rest``). It is never used against a real
store. Mount it with ``serve_with(httpserver)`` (pytest-httpserver) or as the WSGI app
``wsgi``."""

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
from .webhooks import webhook_signature

API_PREFIX = "/wp-json/wc/v3/"
WC_VERSION = "9.8.0"
_ITEM = re.compile(r"(orders|webhooks)/([0-9]+)(/refunds)?")
_SORT_KEYS = {"date": "date_created_gmt", "modified": "date_modified_gmt", "id": "id"}
_HIDDEN_QUERY = {"consumer_secret", "oauth_signature"}

DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"  # WooCommerce's dates: naive, the _gmt ones in GMT
CENTS = Decimal("0.01")

Answer = tuple[int, dict[str, str], Any]
NewId = Callable[[], int]


def _error(status: int, code: str, message: str) -> Answer:
    return status, {}, {"code": code, "message": message, "data": {"status": status}}


def php_json(document: Any) -> bytes:
    """The body WooCommerce sends: compact ``wp_json_encode`` output, which escapes ``/`` and
    non-ASCII characters."""
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=True)
    return text.replace("/", "\\/").encode("ascii")  # "/" only ever occurs inside strings


def _links(base_url: str, path: str) -> dict[str, Any]:
    collection = f"{base_url}/wp-json/wc/v3/{path.rsplit('/', 1)[0]}"
    return {"self": [{"href": f"{base_url}/wp-json/wc/v3/{path}"}],
            "collection": [{"href": collection}]}


def _line(new_id: NewId, name: str, product_id: int, quantity: int, price: str) -> dict[str, Any]:
    total = str((Decimal(price) * quantity).quantize(CENTS))
    return {"id": new_id(), "name": name, "product_id": product_id, "variation_id": 0,
            "quantity": quantity, "tax_class": "", "subtotal": total, "subtotal_tax": "0.00",
            "total": total, "total_tax": "0.00", "taxes": [], "meta_data": [], "sku": "",
            "price": float(price)}


def recompute_totals(order: dict[str, Any], new_id: NewId) -> None:
    """Fill each line's missing figures (``subtotal`` from ``total`` and back, ``price``
    after discounts as WooCommerce computes it) and the order's totals from the lines."""
    lines_total = lines_tax = discount = Decimal(0)
    for line in order["line_items"]:
        for key, value in (("name", "Item"), ("product_id", 0), ("variation_id", 0),
                           ("quantity", 1), ("total_tax", "0.00"), ("meta_data", [])):
            line.setdefault(key, copy.copy(value))
        line.setdefault("id", new_id())
        line.setdefault("total", line.get("subtotal", "0.00"))
        line.setdefault("subtotal", line["total"])
        line.setdefault("subtotal_tax", line["total_tax"])
        line["price"] = float(Decimal(line["total"]) / max(1, int(line["quantity"])))
        lines_total += Decimal(line["total"])
        lines_tax += Decimal(line["total_tax"])
        discount += Decimal(line["subtotal"]) - Decimal(line["total"])
    shipping = Decimal(order.get("shipping_total", "0"))
    shipping_tax = Decimal(order.get("shipping_tax", "0"))
    order["discount_total"] = str(discount.quantize(CENTS))
    order["cart_tax"] = str(lines_tax.quantize(CENTS))
    order["total_tax"] = str((lines_tax + shipping_tax).quantize(CENTS))
    order["total"] = str((lines_total + lines_tax + shipping + shipping_tax).quantize(CENTS))


def order_document(order_id: int, stamp: str, currency: str, base_url: str,
                   new_id: NewId) -> dict[str, Any]:
    """A paid guest order in the REST shape of the published example (``rest/order.json``)."""
    billing = {"first_name": "John", "last_name": "Doe", "company": "",
               "address_1": "969 Market", "address_2": "", "city": "San Francisco",
               "state": "CA", "postcode": "94103", "country": "US"}
    order: dict[str, Any] = {
        "id": order_id, "parent_id": 0, "number": str(order_id),
        "order_key": "wc_order_" + secrets.token_hex(6), "created_via": "checkout",
        "version": WC_VERSION, "status": "processing", "currency": currency,
        "date_created": stamp, "date_created_gmt": stamp, "date_modified": stamp,
        "date_modified_gmt": stamp, "discount_total": "0.00", "discount_tax": "0.00",
        "shipping_total": "10.00", "shipping_tax": "0.00", "cart_tax": "0.00",
        "total": "0.00", "total_tax": "0.00", "prices_include_tax": False, "customer_id": 0,
        "customer_ip_address": "", "customer_user_agent": "", "customer_note": "",
        "billing": {**billing, "email": "john.doe@example.com", "phone": "(555) 555-5555"},
        "shipping": billing, "payment_method": "bacs",
        "payment_method_title": "Direct Bank Transfer", "transaction_id": "",
        "date_paid": stamp, "date_paid_gmt": stamp, "date_completed": None,
        "date_completed_gmt": None, "cart_hash": "", "meta_data": [],
        "line_items": [_line(new_id, "Woo Single #1", 93, 2, "3.00"),
                       _line(new_id, "Ship Your Idea", 22, 1, "12.00")],
        "tax_lines": [], "shipping_lines": [
            {"id": new_id(), "method_title": "Flat Rate", "method_id": "flat_rate",
             "total": "10.00", "total_tax": "0.00", "taxes": [], "meta_data": []}],
        "fee_lines": [], "coupon_lines": [], "refunds": [],
        "_links": _links(base_url, f"orders/{order_id}"),
    }
    recompute_totals(order, new_id)
    return order


def refund_document(refund_id: int, order: dict[str, Any], stamp: str, amount: str,
                    reason: str, lines: Iterable[tuple[int | str, int, str]],
                    shipping: str | None, base_url: str, new_id: NewId) -> dict[str, Any]:
    """A refund in the shape of ``GET /orders/{id}/refunds`` (``rest/order_refund.json``):
    quantities and amounts negative, each line naming its order line in meta data."""
    by_id = {str(line["id"]): line for line in order.get("line_items", [])}
    items = []
    for line_id, quantity, money in lines:
        items.append({
            **copy.deepcopy(by_id[str(line_id)]), "id": new_id(), "quantity": -abs(quantity),
            "subtotal": f"-{money}", "total": f"-{money}", "subtotal_tax": "0.00",
            "total_tax": "0.00", "taxes": [], "price": 0,
            "meta_data": [{"id": new_id(), "key": "_refunded_item_id", "value": str(line_id)}]})
    shipping_lines = [] if shipping is None else [
        {"id": new_id(), "method_title": "Flat Rate", "method_id": "flat_rate",
         "total": f"-{shipping}", "total_tax": "0.00", "taxes": [], "meta_data": []}]
    return {"id": refund_id, "date_created": stamp, "date_created_gmt": stamp,
            "amount": str(Decimal(amount).quantize(CENTS)), "reason": reason,
            "refunded_by": 1, "refunded_payment": False, "meta_data": [],
            "line_items": items, "shipping_lines": shipping_lines,
            "_links": _links(base_url, f"orders/{order['id']}/refunds/{refund_id}")}


@dataclass
class FakeWooCommerce:
    """One store. Thread-safe; ``requests`` records every call (credentials left out)."""

    base_url: str = "http://store.test"
    currency: str = "USD"
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    order_refunds: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    coupons: list[dict[str, Any]] = field(default_factory=list)
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
        match = _ITEM.fullmatch(route)
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
        chunk = items[(page - 1) * per_page: page * per_page]
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

    def _create_coupon(self, document: dict[str, Any]) -> Answer:
        code = str(document.get("code") or "").strip().lower()  # WooCommerce keeps codes lowercase
        if not code:
            return _error(400, "woocommerce_rest_empty_coupon_code",
                          "The coupon code cannot be empty.")
        if any(coupon["code"] == code for coupon in self.coupons):
            return _error(400, "woocommerce_rest_coupon_code_already_exists",
                          "The coupon code already exists")
        stamp = self._stamp()
        coupon = {"discount_type": "fixed_cart", "amount": "0", "individual_use": False,
                  "usage_limit": None, "usage_limit_per_user": None, "free_shipping": False,
                  "email_restrictions": [], "minimum_amount": "0.00", "description": "",
                  "date_expires_gmt": None, **document,
                  "id": self._new_id(), "code": code, "usage_count": 0, "used_by": [],
                  "date_created": stamp, "date_created_gmt": stamp,
                  "date_modified": stamp, "date_modified_gmt": stamp}
        self.coupons.append(coupon)
        return 201, {}, copy.deepcopy(coupon)

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
