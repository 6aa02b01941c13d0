"""Signing in to the merchant admin without Shopify: ``GET /admin/login?token=...`` (a
one-time link from ``loyalty admin-link`` or the WordPress plugin), ``POST /admin/logout``,
the demo's one-click sign-in (development only), and ``POST /api/woocommerce/admin-link``
where the plugin, signing with the widget secret, asks for a link."""

from __future__ import annotations

import json
import logging
import time

from flask import Blueprint, Response, jsonify, redirect, request

from integrations.woocommerce.identity import (
    IdentityRejected,
    admin_store_id,
    verify_admin_request,
)
from plugin_server.admin.login_links import LoginRefused, issue_login_token, spend_login_token
from plugin_server.crypto import CredentialsError
from plugin_server.demo import find_demo_merchant
from plugin_server.loyalty.widget_identity import merchant_by_store_id, stored_widget_secret

from .admin_context import admin_required, end_session, frame_policy, start_session
from .pages import message_page
from .session import db_session, runtime

log = logging.getLogger(__name__)
admin_auth = Blueprint("admin_auth", __name__)
MAX_REQUEST_BYTES = 4096


def login_url(token: str) -> str:
    base = runtime().settings.APP_URL.rstrip("/") or request.host_url.rstrip("/")
    return f"{base}/admin/login?token={token}"


@admin_auth.get("/admin/login")
def login() -> Response:
    try:
        merchant_id = spend_login_token(db_session(), request.args.get("token", ""))
    except LoginRefused as error:
        return frame_policy(message_page("This sign-in link cannot be used", str(error), 400,
                                         hint="Open Loyalty again from your store's admin."),
                            None)
    response = redirect("/admin", code=303)
    start_session(response, merchant_id)
    return frame_policy(response, None)


@admin_auth.post("/admin/logout")
@admin_required()
def logout() -> Response:
    """A change like any other: a cross-site form cannot sign the merchant out (CSRF)."""
    response = redirect("/", code=303)
    end_session(response)
    return response


@admin_auth.post("/admin/demo-login")
def demo_login() -> Response:
    """The demo's one-click sign-in: development only, and only into the demo store."""
    if runtime().settings.is_production:
        return message_page("Not found", "There is no demo on a production server.", 404)
    merchant = find_demo_merchant(db_session())
    if merchant is None:
        return message_page("No demo store", "Start the demo first: loyalty demo.", 404)
    response = redirect("/admin", code=303)
    start_session(response, merchant.id)
    return response


def _refused(status: int, code: str, message: str) -> tuple[Response, int]:
    log.warning("admin link refused (%s %s): %s", status, code, message)
    return jsonify({"error": code, "message": message}), status


@admin_auth.post("/api/woocommerce/admin-link")
def woocommerce_admin_link() -> tuple[Response, int]:
    raw = request.get_data(cache=False)[:MAX_REQUEST_BYTES + 1]
    if len(raw) > MAX_REQUEST_BYTES:
        return _refused(413, "too_large", "the request body is too large")
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    try:
        merchant = merchant_by_store_id(db_session(), admin_store_id(data))
        if merchant is None or merchant.platform != "woocommerce":
            return _refused(404, "unknown_store", "no WooCommerce store with this store id; "
                                                  "check the plugin's settings")
        secret = stored_widget_secret(merchant, runtime().settings.ENCRYPTION_KEY)
        if secret is None:
            return _refused(409, "no_widget_secret", "this store has no widget secret yet; "
                                                     "connect it first")
        verify_admin_request(data, secret, time.time())
    except IdentityRejected as error:
        return _refused(401 if error.code != "invalid_request" else 400, error.code,
                        str(error))
    except CredentialsError as error:
        return _refused(503, "not_configured", str(error))
    token = issue_login_token(db_session(), merchant.id)
    log.info("admin sign-in link issued for %s", merchant.shop)
    return jsonify({"url": login_url(token)}), 200
