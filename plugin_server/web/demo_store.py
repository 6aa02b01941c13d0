"""The demo storefront's side of Shopify, registered only by ``loyalty demo``: the App Proxy
(``/apps/loyalty/...`` signs and forwards to ``/proxy/...`` as Shopify does), the shopper's
sign-in, and buttons that place an order or redeem a reward through the real routes."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, redirect, request

from integrations.base import Customer, LineItem, Order
from plugin_server.demo_shopify import DemoShopify

CUSTOMER_COOKIE = "demo_customer"
demo_store = Blueprint("demo_store", __name__)


def demo_shopify() -> DemoShopify:
    return current_app.extensions["demo_shopify"]


def signed_in_customer() -> str | None:
    value = request.cookies.get(CUSTOMER_COOKIE, "")
    return value if value.isdigit() else None


@demo_store.route("/apps/loyalty/<path:path>", methods=["GET", "POST"])
def app_proxy(path: str) -> tuple[Response, int]:
    """What Shopify's edge does for /apps/loyalty/*: add the signed shop, customer and
    timestamp, and forward to the app's /proxy/*."""
    headers = {name: request.headers[name] for name in ("Idempotency-Key",)
               if name in request.headers}
    status, body = demo_shopify().storefront(request.method, f"/{path}", signed_in_customer(),
                                             request.get_json(silent=True), headers)
    return jsonify(body), status


@demo_store.post("/demo/sign-in")
def sign_in() -> Response:
    customer = request.form.get("customer_id", "")
    response = redirect("/#storefront", code=303)
    if customer.isdigit():
        response.set_cookie(CUSTOMER_COOKIE, customer, httponly=True, samesite="Lax")
    else:
        response.delete_cookie(CUSTOMER_COOKIE)
    return response


@demo_store.post("/demo/order")
def place_order() -> Response:
    """A paid order for the signed-in shopper, sent as Shopify's orders/paid webhook."""
    customer = signed_in_customer()
    amount = Decimal(request.form.get("amount", "40"))
    now = datetime.now(UTC)
    number = f"W{int(now.timestamp() * 1000)}{secrets.randbelow(100)}"
    order = Order(
        order_id=number, name=f"#{number}", created_at=now, updated_at=now, currency="USD",
        customer=Customer(customer_id=customer, email=request.form.get("email") or None),
        line_items=(LineItem(line_id="1", quantity=1, unit_price=amount,
                             product_id="tea-matcha", title="Ceremonial matcha"),),
        total=amount, paid=True)
    demo_shopify().deliver_order("orders/paid", order, f"{number}:paid")
    return redirect("/#storefront", code=303)


@demo_store.post("/demo/redeem")
def redeem() -> Response:
    demo_shopify().storefront("POST", "/api/redeem", signed_in_customer(),
                              {"reward_id": int(request.form.get("reward_id", "0") or 0)},
                              {"Idempotency-Key": secrets.token_hex(12)})
    return redirect("/#storefront", code=303)


def storefront_view() -> dict[str, Any] | None:
    """The signed-in shopper's /me document, fetched through the App Proxy, for the page."""
    shopify: DemoShopify | None = current_app.extensions.get("demo_shopify")
    if shopify is None:
        return None
    customer = signed_in_customer()
    _, program = shopify.storefront("GET", "/api/program", customer)
    me = None
    if customer is not None:
        status, body = shopify.storefront("GET", "/api/me", customer)
        me = body if status == 200 else None
    return {"customer_id": customer, "program": program, "me": me}


def register_demo_store(app: Flask, shopify: DemoShopify) -> None:
    app.extensions["demo_shopify"] = shopify
    app.register_blueprint(demo_store)
