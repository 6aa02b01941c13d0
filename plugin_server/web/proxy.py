"""The storefront API through Shopify's App Proxy: ``/apps/loyalty/api/...`` on the store is
``/proxy/api/...`` here, signed by Shopify (DESIGN §7). The shopper is only ever the signed
``logged_in_customer_id``; nothing the browser sends can name another one."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from flask import Blueprint, Response, current_app, g, jsonify, request
from shopify_app import ShopifyApp

from integrations.shopify.admin import InvalidShop, normalize_shop
from plugin_server.loyalty.storefront import public_program, shopper_view
from plugin_server.shopify.install import shopify_merchant, status_changes
from plugin_server.shopify.settings import shopify_config

from .errors import error_response
from .session import db_read_session, release_read_session, runtime
from .storefront_redeem import redeem_for_customer

log = logging.getLogger(__name__)
proxy = Blueprint("proxy", __name__, url_prefix="/proxy")

MERCHANT_CACHE_SECONDS = 5.0
SIGN_IN = ("sign_in_required", "Sign in to your account to see your points and redeem rewards.")


class ProxyRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def _verify() -> tuple[int, str | None]:
    """The merchant and the signed-in customer (None for a guest) of a signed request."""
    config = shopify_config(runtime().settings)
    if not config.api_key or not config.api_secret:
        raise ProxyRefused(503, "not_configured", "the Shopify app is not configured")
    for name in ("shop", "timestamp", "signature"):
        if len(request.args.getlist(name)) != 1:
            raise ProxyRefused(401, "invalid_signature", f"{name!r} must appear exactly once")
    app = ShopifyApp(config.api_key, config.api_secret, config.api_secret_old or None)
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
    merchant = _merchant(shop)
    if merchant is None or merchant.status != "active":
        raise ProxyRefused(404, "not_found", f"{shop} has no active loyalty program")
    customer = (verified.logged_in_customer_id or "").strip() or None
    g.platform = merchant.platform
    return merchant.merchant_id, customer


@dataclass(frozen=True)
class _Shop:
    merchant_id: int
    platform: str
    status: str


def _merchant(shop: str) -> _Shop | None:
    """The shop's merchant, remembered for a few seconds: every storefront page load asks,
    and an uninstall may take that long to show here."""
    cache: dict[str, tuple[float, int, _Shop | None]] = current_app.extensions.setdefault(
        "proxy_merchants", {})
    now, generation = time.monotonic(), status_changes()
    hit = cache.get(shop)
    if hit is not None and now - hit[0] < MERCHANT_CACHE_SECONDS and hit[1] == generation:
        return hit[2]
    found = shopify_merchant(db_read_session(), shop)
    value = None if found is None else _Shop(found.id, found.platform, found.status)
    if len(cache) > 10_000:
        cache.clear()
    cache[shop] = (now, generation, value)
    return value


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
