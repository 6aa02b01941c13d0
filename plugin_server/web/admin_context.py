"""Who is using the merchant admin, for every ``/admin`` request.

Inside the Shopify admin the page and each fetch carry a session token (``id_token`` in the
page's query, ``Authorization: Bearer`` on fetches, added by App Bridge), verified with
Shopify's ``shopify_app`` package (signature, audience, expiry, destination shop). Elsewhere
(WooCommerce, the demo, operators) a signed, HttpOnly cookie set by a one-time sign-in link.
Cookie sessions must send their CSRF token with every change; session tokens are not sent
by the browser on its own, so they need none. Embedded pages may be framed by the shop and
the Shopify admin only; other pages by nobody."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from flask import Response, g, jsonify, make_response, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from plugin_server.models import Merchant
from plugin_server.shopify.install import shopify_merchant
from plugin_server.shopify.settings import shopify_app

from .pages import message_page
from .session import db_read_session, runtime
from .shopify_auth import PATCH_ID_TOKEN_PATH

SESSION_COOKIE = "loyalty_admin"
SESSION_SALT = "loyalty.admin.session"
SESSION_MAX_AGE = 12 * 3600
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
SHOPIFY_ADMIN_ORIGIN = "https://admin.shopify.com"

View = TypeVar("View", bound=Callable[..., Any])


@dataclass(frozen=True)
class AdminUser:
    merchant_id: int
    shop: str
    platform: str
    embedded: bool
    csrf: str  # empty for session-token requests
    actor: str  # who, for the activity log


class NotSignedIn(Exception):
    def __init__(self, message: str, response: Response | None = None) -> None:
        super().__init__(message)
        self.response = response


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(runtime().settings.SECRET_KEY, salt=SESSION_SALT)


def start_session(response: Response, merchant_id: int) -> None:
    """Sign ``response``'s browser in to the admin of ``merchant_id``."""
    value = _serializer().dumps({"m": merchant_id, "c": secrets.token_urlsafe(24)})
    response.set_cookie(SESSION_COOKIE, value, max_age=SESSION_MAX_AGE, httponly=True,
                        secure=runtime().settings.APP_URL.startswith("https://"),
                        samesite="Lax", path="/admin")


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/admin")


def _wants_shopify() -> bool:
    return bool(request.args.get("id_token")) or request.headers.get(
        "Authorization", "").startswith("Bearer ")


def _from_session_token() -> AdminUser:
    app = shopify_app(runtime().settings)
    if app is None:
        raise NotSignedIn("this server has no Shopify app credentials")
    verified = app.verify_app_home_req(
        {"method": request.method, "headers": dict(request.headers), "url": request.url,
         "body": ""}, app_home_patch_id_token_path=PATCH_ID_TOKEN_PATH)
    if not verified.ok or not verified.shop:
        answer = Response(verified.response.body, status=verified.response.status,
                          headers=verified.response.headers)
        raise NotSignedIn("the Shopify session token was refused", answer)
    shop = f"{verified.shop}.myshopify.com"
    named = request.args.get("shop")
    if named and named.lower() != shop:
        raise NotSignedIn("the session token was issued for another shop")
    merchant = shopify_merchant(db_read_session(), shop)
    if merchant is None or merchant.status != "active":
        raise NotSignedIn(f"{shop} has not installed the app")
    staff = f"Shopify staff {verified.user_id}" if verified.user_id else "Shopify admin"
    return AdminUser(merchant.id, merchant.shop, "shopify", True, "", staff)


def _from_cookie() -> AdminUser:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        raise NotSignedIn("not signed in")
    try:
        data: Any = _serializer().loads(raw, max_age=SESSION_MAX_AGE)
    except BadSignature as error:
        raise NotSignedIn("the admin session expired; sign in again") from error
    merchant = db_read_session().get(Merchant, data.get("m")) if isinstance(data, dict) \
        else None
    if merchant is None:
        raise NotSignedIn("the store of this session no longer exists")
    return AdminUser(merchant.id, merchant.shop, merchant.platform, False, str(data["c"]),
                     "signed-in link")


def _check_csrf(user: AdminUser) -> None:
    if request.method not in UNSAFE_METHODS or not user.csrf:
        return
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
    if not hmac.compare_digest(sent.encode(), user.csrf.encode()):
        raise NotSignedIn("csrf")


def current_admin() -> AdminUser:
    user: AdminUser = g.admin_user
    return user


def frame_policy(response: Response, user: AdminUser | None) -> Response:
    if user is not None and user.embedded:
        ancestors = f"frame-ancestors https://{user.shop} {SHOPIFY_ADMIN_ORIGIN}"
    else:
        ancestors = "frame-ancestors 'none'"
        response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'self' https://cdn.shopify.com; "
        f"style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
        f"form-action 'self'; {ancestors}")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _refusal(error: NotSignedIn, json_answer: bool) -> Response:
    if str(error) == "csrf":
        status, code, message = 403, "csrf", "the form's CSRF token is missing or wrong; " \
                                             "reload the page"
    else:
        status, code, message = 401, "not_signed_in", str(error)
    if error.response is not None and status == 401:
        return frame_policy(error.response, None)
    if json_answer:
        answer = make_response(jsonify({"error": code, "message": message}), status)
    else:
        answer = message_page("Sign in to the loyalty admin" if status == 401 else
                              "This change was refused", message, status,
                              hint="Open Loyalty from your store's admin (Shopify: Apps → "
                                   "Loyalty; WooCommerce: WooCommerce → Loyalty), or ask the "
                                   "server's operator for a link: loyalty admin-link STORE.")
    return frame_policy(answer, None)


def admin_required(json_answer: bool = False) -> Callable[[View], View]:
    """The view runs with ``current_admin()`` set, or the request is refused (401, or 403
    for a change without its CSRF token)."""

    def decorate(view: View) -> View:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                user = _from_session_token() if _wants_shopify() else _from_cookie()
                _check_csrf(user)
            except NotSignedIn as error:
                return _refusal(error, json_answer)
            g.admin_user = user
            return frame_policy(make_response(view(*args, **kwargs)), user)

        return guarded  # type: ignore[return-value]

    return decorate
