"""Connecting a WooCommerce store with wc-auth (DESIGN §8): ``GET /woocommerce/connect``
sends the merchant to their store's approval page; WooCommerce posts the API keys to
``POST /woocommerce/auth-callback`` (any answer but 200 makes it delete them, so the answer
is quick and the slow work is a job); the merchant comes back to ``/woocommerce/return``."""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, Response, jsonify, redirect, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from integrations.woocommerce.auth import InvalidCallback, authorize_url, parse_auth_callback
from integrations.woocommerce.stores import InvalidStoreUrl, normalize_store_url
from plugin_server.crypto import CredentialsError
from plugin_server.woocommerce.confirm import confirm_connection
from plugin_server.woocommerce.connect import (
    CONNECT_MAX_AGE,
    ConnectRefused,
    accept_keys,
    connection_for,
    start_connection,
)

from .pages import message_page
from .session import db_read_session, db_session, release_read_session, runtime

log = logging.getLogger(__name__)
woocommerce_auth = Blueprint("woocommerce_auth", __name__)

APP_NAME = "Loyalty"
CALLBACK_PATH = "/woocommerce/auth-callback"
RETURN_PATH = "/woocommerce/return"
MAX_CALLBACK_BYTES = 16_384
CONNECT_COOKIE = "loyalty_wc_connect"
COOKIE_SALT = "loyalty.woocommerce.connect-cookie"


def _cookie_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(runtime().settings.SECRET_KEY, salt=COOKIE_SALT)


def _app_url(path: str) -> str:
    base = runtime().settings.APP_URL.rstrip("/") or request.host_url.rstrip("/")
    return base + path


@woocommerce_auth.get("/woocommerce/connect")
def connect() -> Response:
    settings = runtime().settings
    try:
        store_url = normalize_store_url(request.args.get("store_url", ""),
                                        production=settings.is_production)
    except InvalidStoreUrl as error:
        return message_page("This store cannot be connected", f"store_url: {error}", 400,
                            hint="Use the address of the WordPress site, like "
                                 "https://shop.example.com.")
    store_id, user_id, nonce = start_connection(db_session(), store_url, settings.SECRET_KEY)
    log.info("woocommerce store %s (%s) starts connecting", store_url, store_id)
    response = redirect(authorize_url(store_url, app_name=APP_NAME, user_id=user_id,
                                      return_url=_app_url(RETURN_PATH),
                                      callback_url=_app_url(CALLBACK_PATH)), code=302)
    # The browser that starts the connection is the one shown the widget secret at the end.
    response.set_cookie(CONNECT_COOKIE, _cookie_serializer().dumps(nonce),
                        max_age=CONNECT_MAX_AGE, httponly=True,
                        secure=_app_url("").startswith("https://"), samesite="Lax",
                        path="/woocommerce")
    return response


@woocommerce_auth.post(CALLBACK_PATH)
def auth_callback() -> tuple[Response, int]:
    settings = runtime().settings
    raw = request.get_data(cache=False)[:MAX_CALLBACK_BYTES + 1]
    if len(raw) > MAX_CALLBACK_BYTES:
        return _callback_refused(413, "too_large", "the callback body is too large")
    try:
        keys = parse_auth_callback(raw)
        connection = accept_keys(db_session(), keys, settings.SECRET_KEY,
                                 settings.ENCRYPTION_KEY)
    except (InvalidCallback, ConnectRefused) as error:
        return _callback_refused(400, "invalid_callback", str(error))
    except CredentialsError as error:
        return _callback_refused(503, "not_configured", str(error))
    runtime().jobs.enqueue_after_commit(db_session(), "woocommerce_after_connect",
                                        connection.merchant_id)
    log.info("woocommerce store %s connected (key %s)", connection.store_url, keys.key_id)
    return jsonify({"status": "connected", "store_id": connection.store_id}), 200


def _callback_refused(status: int, code: str, message: str) -> tuple[Response, int]:
    log.warning("woocommerce auth callback refused (%s %s): %s", status, code, message)
    return jsonify({"error": code, "message": message}), status


def _browser_nonce() -> str | None:
    try:
        value = _cookie_serializer().loads(request.cookies.get(CONNECT_COOKIE, ""),
                                           max_age=CONNECT_MAX_AGE)
    except BadSignature:
        return None
    return value if isinstance(value, str) else None


@woocommerce_auth.get(RETURN_PATH)
def connected() -> Response:
    """Where the merchant's browser lands after approving (or declining) on their store."""
    settings = runtime().settings
    if request.args.get("success") != "1":
        return message_page("The store was not connected",
                            "WooCommerce did not grant access to the store.", 400,
                            hint="Start again from the plugin's Connect button and approve.")
    try:
        merchant, nonce = connection_for(db_read_session(), request.args.get("user_id", ""),
                                         settings.SECRET_KEY)
    except ConnectRefused as error:
        return message_page("This link cannot be used", str(error), 400)
    merchant_id = merchant.id
    # confirm_connection writes in transactions of its own (and calls the store in between).
    release_read_session()
    browser = _browser_nonce()
    if browser is None or not hmac.compare_digest(browser, nonce):
        return message_page("This connection was started elsewhere",
                            "Only the browser that pressed Connect sees the result.", 403,
                            hint="Press Connect in the plugin's settings (WooCommerce → "
                                 "Loyalty) from this browser.")
    result = confirm_connection(runtime(), merchant_id, nonce)
    if result.state == "another_connection":
        return message_page("This store is connected already",
                            f"{result.shop} was connected before; its keys still work, so "
                            "this new connection was not used.", 409,
                            hint="The widget secret is in the plugin's settings already. If "
                                 "it was lost, the server's operator can show it: loyalty "
                                 "merchant STORE --json.")
    if result.state == "unreachable":
        return message_page("The store could not be reached",
                            f"The keys arrived, but {result.shop} did not answer: "
                            f"{result.detail}", 503,
                            hint="Reload this page in a minute.")
    if result.state != "connected":
        return message_page("The store is not connected",
                            "The store approved, but its API keys did not reach this server "
                            "or the store refused them." + (f" {result.detail}" if result.detail
                                                            else ""), 409,
                            hint="Check that the store can reach this server over https, then "
                                 "press Connect again.")
    response = message_page(
        "Your store is connected",
        f"{result.shop} now earns points. Paste the store id and the widget secret below into "
        "the plugin's settings (WooCommerce → Loyalty) and save.", 200,
        hint="Past orders are being imported; points follow in a few minutes. Keep the widget "
             "secret private: it signs your shoppers' identity.",
        details=[("Store id", result.store_id), ("Widget secret", result.widget_secret or "")])
    response.delete_cookie(CONNECT_COOKIE, path="/woocommerce")
    return response
