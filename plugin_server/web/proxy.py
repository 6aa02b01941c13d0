"""The storefront API through Shopify's App Proxy: ``/apps/loyalty/api/...`` on the store is
``/proxy/api/...`` here, signed by Shopify (DESIGN §7). The shopper is only ever the signed
``logged_in_customer_id``; nothing the browser sends can name another one."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, g, jsonify, request

from integrations.shopify.admin import InvalidShop, normalize_shop
from plugin_server.loyalty.storefront import public_program, shopper_view
from plugin_server.shopify.settings import shopify_app

from .errors import error_response
from .session import db_read_session, release_read_session, runtime
from .shopify_shops import known_shop
from .storefront_redeem import redeem_for_customer

log = logging.getLogger(__name__)
proxy = Blueprint("proxy", __name__, url_prefix="/proxy")

SIGN_IN = ("sign_in_required", "Sign in to your account to see your points and redeem rewards.")


class ProxyRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def _verify() -> tuple[int, str | None]:
    """The merchant and the signed-in customer (None for a guest) of a signed request."""
    app = shopify_app(runtime().settings)
    if app is None:
        raise ProxyRefused(503, "not_configured", "the Shopify app is not configured")
    for name in ("shop", "timestamp", "signature"):
        if len(request.args.getlist(name)) != 1:
            raise ProxyRefused(401, "invalid_signature", f"{name!r} must appear exactly once")
    # The signature covers the query exactly as Shopify sent it.
    url = f"{request.base_url}?{request.environ.get('QUERY_STRING', '')}"
    verified = app.verify_app_proxy_req({"method": request.method, "url": url,
                                         "headers": dict(request.headers), "body": ""})
    if not verified.ok:
        raise ProxyRefused(401, verified.log.code, verified.log.detail.split(". ")[0])
    try:
        shop = normalize_shop(request.args["shop"])
    except InvalidShop as error:
        raise ProxyRefused(400, "invalid_shop", str(error)) from error
    merchant = known_shop(shop)
    if merchant is None or merchant.status != "active":
        raise ProxyRefused(404, "not_found", f"{shop} has no active loyalty program")
    customer = (verified.logged_in_customer_id or "").strip() or None
    g.platform = merchant.platform
    return merchant.merchant_id, customer


@proxy.errorhandler(ProxyRefused)
def _refused(error: ProxyRefused) -> tuple[Response, int]:
    log.info("app proxy request refused (%s %s): %s", error.status, error.code, error)
    return error_response(error.code, str(error), error.status)


@proxy.get("/api/program")
def program() -> Response:
    merchant_id, _ = _verify()
    response = jsonify(public_program(db_read_session(), merchant_id))
    # The same for every shopper: a shared cache may keep it for a minute.
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


def _signed_in() -> tuple[int, str]:
    merchant_id, customer = _verify()
    if customer is None:
        raise ProxyRefused(401, *SIGN_IN)
    return merchant_id, customer


@proxy.get("/api/me")
def me() -> Response:
    merchant_id, customer = _signed_in()
    response = jsonify(shopper_view(db_read_session(), merchant_id, customer))
    response.headers["Cache-Control"] = "private, no-store"
    return response


@proxy.post("/api/redeem")
def redeem() -> tuple[Response, int]:
    merchant_id, customer = _signed_in()
    platform: str = g.platform
    # No transaction stays open while Shopify creates the code.
    release_read_session()
    return redeem_for_customer(merchant_id, platform, customer)
