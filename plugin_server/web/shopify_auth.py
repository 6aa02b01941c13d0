"""Installing the Shopify app: ``GET /shopify/install`` (the App URL) and
``GET /shopify/callback`` (the authorization code grant's redirect), DESIGN §7.

Everything about the request is checked (shop domain, HMAC, freshness, ``state``) before any
redirect or outbound call."""

from __future__ import annotations

import hmac
import time
from typing import Any

from flask import Blueprint, Response, redirect, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from integrations.shopify.admin import InvalidShop, ShopifyConfig, normalize_shop
from integrations.shopify.oauth import (
    TokenError,
    authorize_url,
    exchange_code,
    exchange_session_token,
    verify_query_hmac,
)
from plugin_server.db import unit_of_work
from plugin_server.shopify.install import (
    STATE_LIFETIME,
    InstallError,
    consume_state,
    finish_install,
    is_connected,
    issue_state,
    shopify_merchant,
)
from plugin_server.shopify.settings import CALLBACK_PATH, app_url, shopify_app, shopify_config

from .pages import message_page
from .session import db_session, runtime

shopify_auth = Blueprint("shopify_auth", __name__)

STATE_COOKIE = "loyalty_shopify_state"
PATCH_ID_TOKEN_PATH = "/shopify/patch-id-token"
# Shopify signs the query with a timestamp; older links are refused (a day, as ShopifyAPI).
MAX_QUERY_AGE_SECONDS = 24 * 60 * 60
MAX_CLOCK_SKEW_SECONDS = 5 * 60


class Refused(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _single(name: str, required: bool = True) -> str:
    values = request.args.getlist(name)
    if len(values) > 1:
        raise Refused(f"the {name!r} parameter appears more than once")
    if not values or values[0] == "":
        if required:
            raise Refused(f"the {name!r} parameter is missing")
        return ""
    return values[0]


def _config() -> ShopifyConfig:
    config = shopify_config(runtime().settings)
    if not config.api_key or not config.secrets:
        raise Refused("This server has no SHOPIFY_API_KEY / SHOPIFY_API_SECRET configured.",
                      503)
    return config


def _checked_query(config: ShopifyConfig) -> str:
    """The shop, once the query's shop, HMAC and timestamp are all good."""
    try:
        shop = normalize_shop(_single("shop"))
    except InvalidShop as error:
        raise Refused(str(error)) from error
    params = request.args.to_dict(flat=False)
    if not verify_query_hmac(params, config.secrets):
        raise Refused("The request's signature (hmac) is missing or wrong. Open the app from "
                      "your Shopify admin.")
    try:
        signed_at = int(_single("timestamp"))
    except ValueError as error:
        raise Refused("the 'timestamp' parameter is not a whole number") from error
    age = time.time() - signed_at
    if age > MAX_QUERY_AGE_SECONDS or age < -MAX_CLOCK_SKEW_SECONDS:
        raise Refused("This link is too old (or from the future). Open the app again from "
                      "your Shopify admin.")
    return shop


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(runtime().settings.SECRET_KEY, salt="shopify-install-state")


def _refused(error: Refused) -> Response:
    return message_page("The app could not be installed", str(error), error.status,
                        hint="Start again from the Shopify admin or the Shopify App Store.")


@shopify_auth.get("/shopify/install")
def install() -> Response:
    try:
        config = _config()
        shop = _checked_query(config)
        if is_connected(shopify_merchant(db_session(), shop)):
            # The merchant opening the app again: no new grant, no new install.
            return message_page("Loyalty is installed",
                                f"The loyalty program is running on {shop}.", 200,
                                hint="Points, tiers and rewards are set in the app's settings.")
        if "id_token" in request.args:
            return _managed_install(config, shop)
        nonce = issue_state(db_session(), shop)
        target = authorize_url(config, shop, app_url(runtime().settings, CALLBACK_PATH), nonce)
    except Refused as error:
        return _refused(error)
    response = redirect(target, code=302)
    response.set_cookie(STATE_COOKIE, _serializer().dumps({"shop": shop, "state": nonce}),
                        max_age=int(STATE_LIFETIME.total_seconds()), httponly=True,
                        secure=runtime().settings.APP_URL.startswith("https://"),
                        samesite="Lax", path="/shopify")
    return response


def _state_from_cookie(shop: str, state: str) -> None:
    raw = request.cookies.get(STATE_COOKIE, "")
    try:
        bound: Any = _serializer().loads(raw, max_age=int(STATE_LIFETIME.total_seconds()))
    except SignatureExpired as error:
        raise Refused("The install took longer than ten minutes. Start it again.") from error
    except BadSignature as error:
        raise Refused("This install was not started from this browser (the state cookie is "
                      "missing or altered). Start it again.") from error
    if (not isinstance(bound, dict) or bound.get("shop") != shop
            or not hmac.compare_digest(str(bound.get("state", "")), state)):
        raise Refused("The install's state does not match this browser's. Start it again.")


@shopify_auth.get("/shopify/callback")
def callback() -> Response:
    try:
        config = _config()
        shop = _checked_query(config)
        state = _single("state")
        code = _single("code")
        _state_from_cookie(shop, state)
        # Spent in its own transaction: a failed code exchange must not make it reusable.
        with unit_of_work(runtime().database) as session:
            consume_state(session, state, shop)
    except InstallError as error:
        return _refused(Refused(str(error)))
    except Refused as error:
        return _refused(error)
    try:
        token = exchange_code(config, shop, code)
    except TokenError as error:
        return message_page("Shopify did not hand over access", str(error), 502,
                            hint="Start the install again from the Shopify admin.")
    response = _finish(config, shop, token)
    response.delete_cookie(STATE_COOKIE, path="/shopify")
    return response


def _finish(config: ShopifyConfig, shop: str, token: Any) -> Response:
    session = db_session()
    installed = finish_install(session, shop, token, runtime().settings.ENCRYPTION_KEY)
    runtime().jobs.enqueue_after_commit(session, "shopify_after_install", installed.merchant_id)
    # Back to the app inside the shop's admin.
    store = shop.removesuffix(".myshopify.com")
    return redirect(f"https://admin.shopify.com/store/{store}/apps/{config.api_key}", code=302)


def _shopify_request() -> dict[str, Any]:
    return {"method": request.method, "headers": dict(request.headers), "url": request.url,
            "body": request.get_data(as_text=True)}


def _managed_install(config: ShopifyConfig, shop: str) -> Response:
    """Shopify-managed install: the shop already approved the scopes and opens the App URL
    embedded with a session token, which is exchanged for an offline token."""
    app = shopify_app(runtime().settings)
    assert app is not None  # _config() checked the credentials
    verified = app.verify_app_home_req(_shopify_request(),
                                       app_home_patch_id_token_path=PATCH_ID_TOKEN_PATH)
    if not verified.ok or verified.id_token is None:
        return Response(verified.response.body, status=verified.response.status,
                        headers=verified.response.headers)
    if f"{verified.shop}.myshopify.com" != shop:
        raise Refused("the session token was issued for another shop")
    try:
        token = exchange_session_token(config, shop, verified.id_token.token,
                                       dict(verified.id_token.claims))
    except TokenError as error:
        return message_page("Shopify did not hand over access", str(error), 502)
    return _finish(config, shop, token)


@shopify_auth.get(PATCH_ID_TOKEN_PATH)
def patch_id_token() -> Response:
    """The page App Bridge uses to fetch a fresh session token (the package renders it)."""
    try:
        _config()
    except Refused as error:
        return _refused(error)
    app = shopify_app(runtime().settings)
    assert app is not None
    result = app.app_home_patch_id_token(_shopify_request())
    return Response(result.response.body, status=result.response.status,
                    headers=result.response.headers)
