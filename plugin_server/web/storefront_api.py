"""The storefront API for the widget outside Shopify's App Proxy (WooCommerce stores, the
demo): the same program, ``me`` and redeem resources as ``/proxy/api/...``, where the shopper
is the one the store's WordPress plugin signed (DESIGN §8) and then a short-lived bearer token.
The widget calls from the store's own pages, so answers carry CORS headers for that store's
origin only; no cookies are involved."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from flask import Blueprint, Response, g, jsonify, request

from integrations.woocommerce.identity import IdentityRejected, verify_identity
from plugin_server.crypto import CredentialsError
from plugin_server.loyalty.storefront import public_program, shopper_view
from plugin_server.loyalty.widget_identity import (
    TOKEN_MAX_AGE,
    ShopperToken,
    TokenRejected,
    issue_shopper_token,
    merchant_by_store_id,
    merchant_for_origin,
    read_shopper_token,
    store_origin,
    unseal_widget_secret,
)

from .errors import error_response
from .rate_limit import limiter
from .session import db_read_session, release_read_session, runtime
from .storefront_redeem import redeem_for_customer

log = logging.getLogger(__name__)
storefront_api = Blueprint("storefront_api", __name__, url_prefix="/api/storefront")

# A page load signs in once; more than this a minute from one address is guessing.
SESSIONS_PER_MINUTE = 30
ALLOW_METHODS = "GET, POST"
ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key"
PREFLIGHT_MAX_AGE = "600"
SIGN_IN = ("sign_in_required", "Sign in to your account to see your points and redeem rewards.")


class StorefrontRefused(Exception):
    def __init__(self, status: int, code: str, message: str, *, bearer: bool = False) -> None:
        super().__init__(message)
        self.status, self.code, self.bearer = status, code, bearer


@dataclass(frozen=True)
class Store:
    """The facts a request needs about a merchant, copied out of the session (its objects
    expire once the read transaction ends, before a redemption's slow platform call)."""

    merchant_id: int
    platform: str
    store_id: str
    origin: str
    sealed_secret: bytes | None


def _find_store(store_id: str) -> Store | None:
    """The active store ``store_id`` names; its origin becomes the one CORS answers to."""
    merchant = merchant_by_store_id(db_read_session(), store_id)
    if merchant is None or merchant.status != "active":
        return None
    store = Store(merchant.id, merchant.platform, merchant.store_id, store_origin(merchant),
                  merchant.widget_secret)
    g.storefront_origin = store.origin
    return store


def _known_store(store_id: str) -> Store:
    store = _find_store(store_id)
    if store is None:
        raise StorefrontRefused(404, "not_found", "no active loyalty program for store "
                                f"{store_id[:64]!r}")
    return store


@storefront_api.before_request
def _preflight() -> Response | tuple[Response, int] | None:
    """Answer the browser's CORS preflight for the store the page comes from. It names no
    shopper and no token, only the page's origin (or the store in ``?store_id=``)."""
    origin = request.headers.get("Origin")
    if request.method != "OPTIONS" or not origin:
        return None  # not a preflight: Flask's own OPTIONS answer
    store_id = request.args.get("store_id")
    if store_id:
        merchant = merchant_by_store_id(db_read_session(), store_id)
        allowed = merchant is not None and merchant.status == "active" and (
            store_origin(merchant) == origin)
    else:
        allowed = merchant_for_origin(db_read_session(), origin) is not None
    if not allowed:
        log.info("storefront preflight refused for origin %r", origin[:200])
        return error_response("origin_not_allowed", "this origin is not a store's storefront",
                              403)
    g.storefront_origin = origin
    response = Response(status=200)
    response.headers.update({"Access-Control-Allow-Methods": ALLOW_METHODS,
                             "Access-Control-Allow-Headers": ALLOW_HEADERS,
                             "Access-Control-Max-Age": PREFLIGHT_MAX_AGE})
    return response


@storefront_api.after_request
def _cors(response: Response) -> Response:
    """Only the store's own origin may read the answer; every other page's browser blocks it."""
    response.vary.add("Origin")
    origin = request.headers.get("Origin")
    allowed = g.get("storefront_origin")
    if origin and allowed is None and response.status_code >= 400:
        # Refused before the store was known (no or garbled token, bad identity, rate
        # limit): a store's own page must still read why, or the widget sees a network error.
        merchant = merchant_for_origin(db_read_session(), origin)
        allowed = store_origin(merchant) if merchant is not None else None
    if origin and origin == allowed:
        response.headers["Access-Control-Allow-Origin"] = origin
    return response


@storefront_api.errorhandler(StorefrontRefused)
def _refused(error: StorefrontRefused) -> tuple[Response, int]:
    log.info("storefront request refused (%s %s): %s", error.status, error.code, error)
    response, status = error_response(error.code, str(error), error.status)
    if error.bearer:
        response.headers["WWW-Authenticate"] = (
            "Bearer" if error.code == SIGN_IN[0] else 'Bearer error="invalid_token"')
    return response, status


@storefront_api.errorhandler(IdentityRejected)
def _identity_rejected(error: IdentityRejected) -> tuple[Response, int]:
    # The message names the faulty field, never the signature or the secret.
    log.info("storefront sign-in refused (401 %s): %s", error.code, error)
    return error_response(error.code, str(error), 401)


def _claimed_store_id(data: object) -> str:
    store_id = data.get("store_id") if isinstance(data, dict) else None
    if not isinstance(store_id, str) or not store_id:
        raise IdentityRejected("invalid_identity", 'send the identity the store printed, a '
                               'JSON object {"store_id", "customer_id", "email", "ts", "sig"}')
    return store_id


@storefront_api.post("/session")
def create_session() -> Response:
    # Any content type: a widget may post text/plain to spare the browser a preflight.
    data = request.get_json(force=True, silent=True)
    store_id = _claimed_store_id(data)
    if not limiter("storefront_session", SESSIONS_PER_MINUTE).allow(
            (store_id[:64], request.remote_addr)):
        raise StorefrontRefused(429, "rate_limited", f"at most {SESSIONS_PER_MINUTE} sign-ins "
                                "a minute; try again shortly")
    store = _known_store(store_id)
    secret = _widget_secret(store)
    identity = verify_identity(data, secret, time.time())
    token = issue_shopper_token(runtime().settings.SECRET_KEY, identity)
    # The shopper's view comes along: a page's first balance costs one request, not two.
    me = shopper_view(db_read_session(), store.merchant_id, identity.customer_id)
    response = jsonify({"token": token, "expires_in": TOKEN_MAX_AGE, "me": me})
    response.headers["Cache-Control"] = "no-store"
    return response


def _widget_secret(store: Store) -> str:
    try:
        secret = unseal_widget_secret(store.sealed_secret, runtime().settings.ENCRYPTION_KEY)
    except CredentialsError as error:
        log.error("store %s: the widget secret cannot be read with this ENCRYPTION_KEY",
                  store.store_id)
        raise StorefrontRefused(503, "not_configured", "the store's widget secret cannot be "
                                "read; the operator must check ENCRYPTION_KEY") from error
    if secret is None:
        raise StorefrontRefused(401, "widget_not_connected", "this store has no widget secret "
                                "yet: the merchant must paste it into the store's plugin")
    return secret


@storefront_api.get("/program")
def program() -> Response:
    store_id = request.args.get("store_id", "")
    if not store_id:
        raise StorefrontRefused(400, "invalid_argument", "send ?store_id= with the store's id")
    store = _known_store(store_id)
    response = jsonify(public_program(db_read_session(), store.merchant_id))
    # The same for every shopper: a shared cache may keep it for a minute.
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


def _shopper() -> tuple[Store, ShopperToken]:
    """The store and shopper the request's bearer token names."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise StorefrontRefused(401, *SIGN_IN, bearer=True)
    try:
        shopper = read_shopper_token(runtime().settings.SECRET_KEY, token.strip())
    except TokenRejected as error:
        if error.store_id:
            # A genuine token that aged: the store's page may read why, and sign in again.
            _find_store(error.store_id)
        raise StorefrontRefused(401, error.code, str(error), bearer=True) from error
    store = _find_store(shopper.store_id)
    if store is None:
        raise StorefrontRefused(401, "invalid_token", "this store's loyalty program is no "
                                "longer active", bearer=True)
    return store, shopper


@storefront_api.get("/me")
def me() -> Response:
    store, shopper = _shopper()
    response = jsonify(shopper_view(db_read_session(), store.merchant_id, shopper.customer_id))
    response.headers["Cache-Control"] = "private, no-store"
    return response


@storefront_api.post("/redeem")
def redeem() -> tuple[Response, int]:
    store, shopper = _shopper()
    # No transaction stays open while the platform creates the code.
    release_read_session()
    return redeem_for_customer(store.merchant_id, store.platform, shopper.customer_id,
                               shopper.email or None)
