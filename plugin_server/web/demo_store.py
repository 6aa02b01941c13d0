"""The demo storefront's side of Shopify, registered only by ``loyalty demo``: the App Proxy
(``/apps/loyalty/...`` signs and forwards to ``/proxy/...`` as Shopify does), the shopper's
sign-in, a store page embedding the widget, and a button that places an order through the
real webhook route."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from decimal import Decimal

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
)

from integrations.base import Customer, LineItem, Order
from plugin_server.demo_shopify import DemoShopify
from plugin_server.demo_storefront import demo_storefront
from plugin_server.widget_bundle import LANGUAGES

CUSTOMER_COOKIE = "demo_customer"
STORE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
             "img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
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


def _back(default: str = "/store") -> str:
    """Where a demo form returns: a path on this server only."""
    target = request.form.get("next", default)
    return target if target.startswith("/") and not target.startswith("//") else default


@demo_store.post("/demo/sign-in")
def sign_in() -> Response:
    customer = request.form.get("customer_id", "")
    response = redirect(_back(), code=303)
    if customer.isdigit():
        response.set_cookie(CUSTOMER_COOKIE, customer, httponly=True, samesite="Lax")
    else:
        response.delete_cookie(CUSTOMER_COOKIE)
    return response


@demo_store.post("/demo/order")
def place_order() -> Response:
    """A paid order for the signed-in shopper, sent as Shopify's orders/paid webhook."""
    customer = signed_in_customer()
    try:
        amount = Decimal(request.form.get("amount", "40"))
    except ArithmeticError:
        amount = Decimal(40)
    if not amount.is_finite():
        amount = Decimal(40)
    amount = min(max(amount, Decimal(1)), Decimal(10_000)).quantize(Decimal("0.01"))
    now = datetime.now(UTC)
    number = f"W{int(now.timestamp() * 1000)}{secrets.randbelow(100)}"
    order = Order(
        order_id=number, name=f"#{number}", created_at=now, updated_at=now, currency="USD",
        customer=Customer(customer_id=customer, email=request.form.get("email") or None),
        line_items=(LineItem(line_id="1", quantity=1, unit_price=amount,
                             product_id=request.form.get("product", "tea-matcha")[:40],
                             title=request.form.get("title", "Tea")[:80]),),
        total=amount, paid=True)
    demo_shopify().deliver_order("orders/paid", order, f"{number}:paid")
    demo_shopify().runtime.jobs.drain()
    return redirect(_back(), code=303)


@demo_store.get("/store")
def store() -> Response:
    """A store page that embeds the widget as the Shopify app embed or the WordPress plugin
    does, under a strict Content-Security-Policy: only this server's scripts and styles."""
    language = request.args.get("lang", "en")
    loyalty = demo_shopify().runtime
    view = demo_storefront(loyalty.database, loyalty.settings.ENCRYPTION_KEY,
                           signed_in_customer(), language if language in LANGUAGES else "en",
                           request.args.get("embed", "shopify"),
                           app_url=request.host_url.rstrip("/"),
                           open_at_once=request.args.get("open") == "1")
    response = Response(render_template("demo_store.html", **view))
    response.headers["Content-Security-Policy"] = STORE_CSP
    return response


def register_demo_store(app: Flask, shopify: DemoShopify) -> None:
    app.extensions["demo_shopify"] = shopify
    app.register_blueprint(demo_store)
