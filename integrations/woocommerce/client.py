"""The WooCommerce REST API (``/wp-json/wc/v3``) for one store: Basic auth over https, OAuth
1.0a over http signed by the ``woocommerce`` package (DESIGN §8).

Requests go through our own ``requests`` session (``transport``) rather than the package's
``API``, which calls ``requests.request`` with no way to choose how connections are opened:
with ``public_only`` every connection is pinned to addresses checked as public.

Every call has a timeout. 5xx answers, 429 and network failures are retried with a short
backoff (``sleep`` is injectable so tests never wait); other failures raise at once. Keys
never appear in logs, messages or ``repr``."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from requests.auth import HTTPBasicAuth
from woocommerce import __version__ as WOOCOMMERCE_PACKAGE_VERSION
from woocommerce.oauth import OAuth

from .transport import ForbiddenAddress, new_session

log = logging.getLogger(__name__)

API_VERSION = "wc/v3"
# The package's own User-Agent: firewalls that already let the package through keep doing so.
USER_AGENT = f"WooCommerce-Python-REST-API/{WOOCOMMERCE_PACKAGE_VERSION}"
BACKOFF_BASE = 0.5
BACKOFF_MAX = 8.0
WEBHOOKS_PER_PAGE = 100
_NUMERIC_ID = re.compile(r"[0-9]{1,19}")
_STATUSES = re.compile(r"[a-z0-9_-]{1,40}(?:,[a-z0-9_-]{1,40}){0,19}")
COUPON_TAKEN = "woocommerce_rest_coupon_code_already_exists"
# DELETE without force on something already in the trash answers 410 with this code.
ALREADY_TRASHED = "woocommerce_rest_already_trashed"
# Error codes WordPress and WooCommerce answer when the keys are wrong or lack a permission
# (WC_REST_Authentication, the controllers' permission checks, WordPress core's REST checks).
# A 403 with any other body came from something in front of the store (a WAF, the host).
_KEY_REFUSED = re.compile(
    r"woocommerce_rest_(?:authentication_\w+|cannot_\w+|\w*permission\w*)"
    r"|rest_(?:forbidden\w*|cannot_\w+|\w+_cannot_\w+|not_logged_in|cookie_invalid_nonce)"
    r"|json_oauth1?_\w+")


class WooError(Exception):
    """A REST call failed. ``status`` is the HTTP status (None when none came back) and
    ``code`` WooCommerce's error code (or ours: ``network_error``, ``not_json``, ...)."""

    def __init__(self, message: str, *, status: int | None = None,
                 code: str = "woo_error") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class WooAuthError(WooError):
    """WordPress or WooCommerce itself refused the keys (a JSON REST error on 401/403): they
    were revoked or lack permission; the merchant must reconnect. A 401/403 from a firewall
    in front of the store is a plain WooError with code ``blocked`` instead."""


class CouponCodeTaken(WooError):
    """The code already exists in the store (possibly ours, from a call that timed out after
    WooCommerce created the coupon)."""


def _backoff(retry: int) -> float:
    return min(BACKOFF_BASE * (2**retry), BACKOFF_MAX)


def _gmt(moment: datetime) -> str:
    """``modified_after`` with ``dates_are_gmt=true``: ISO 8601 without offset, in GMT."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def _numeric_id(value: str | int, what: str) -> str:
    text = str(value)
    if not _NUMERIC_ID.fullmatch(text):  # it goes into the URL path
        raise ValueError(f"{what} must be a WooCommerce numeric id, got {text[:40]!r}")
    return text


class WooClient:
    """REST calls for one store, authenticated with the keys it granted through wc-auth."""

    def __init__(self, store_url: str, consumer_key: str, consumer_secret: str, *,
                 timeout: float = 10.0, retries: int = 3,
                 sleep: Callable[[float], None] = time.sleep, public_only: bool = False) -> None:
        """``public_only`` (production): every connection resolves the store's host, refuses
        it when any address is not public, and connects to an address it checked."""
        if timeout <= 0:
            raise ValueError("timeout must be positive: every outbound call needs one")
        if retries < 0:
            raise ValueError("retries cannot be negative")
        if not consumer_key or not consumer_secret:
            raise ValueError("consumer_key and consumer_secret are required")
        self.store_url = store_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.public_only = public_only
        self._sleep = sleep
        self._consumer_key = consumer_key
        self._consumer_secret = consumer_secret
        self._https = urlsplit(self.store_url).scheme == "https"
        self._session = new_session(public_only=public_only)

    def __repr__(self) -> str:  # never show the keys
        return f"WooClient(store_url={self.store_url!r}, public_only={self.public_only!r})"

    @property
    def consumer_key(self) -> str:
        """The key this client calls with, so a caller can tell which key a store refused."""
        return self._consumer_key

    def close(self) -> None:
        """Close pooled connections (a dropped client closes them too, only later)."""
        self._session.close()

    def __enter__(self) -> WooClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- plumbing ----------------------------------------------------------------------------

    def _send(self, method: str, endpoint: str, params: dict[str, Any] | None,
              data: dict[str, Any] | None) -> requests.Response:
        """One request as the ``woocommerce`` package builds it."""
        url = f"{self.store_url}/wp-json/{API_VERSION}/{endpoint}"
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        body = None
        if data is not None:
            body = json.dumps(data, ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json;charset=utf-8"
        auth = None
        if self._https:
            auth = HTTPBasicAuth(self._consumer_key, self._consumer_secret)
        else:
            # Over http the secret must not travel: the query is signed with OAuth 1.0a.
            query = f"?{urlencode(params)}" if params else ""
            url = OAuth(url=url + query, consumer_key=self._consumer_key,
                        consumer_secret=self._consumer_secret, version=API_VERSION,
                        method=method).get_oauth_url()
            params = None
        # Redirects are not followed: the keys must only ever go to the URL the merchant
        # connected, and a redirect usually means that URL is out of date.
        return self._session.request(method, url, params=params, data=body, headers=headers,
                                     auth=auth, timeout=self.timeout, allow_redirects=False)

    def _request(self, method: str, endpoint: str, *, params: dict[str, Any] | None = None,
                 data: dict[str, Any] | None = None,
                 retry_unsure: bool = True) -> requests.Response:
        """One call with retries. ``retry_unsure=False`` (for a POST that is not safe to
        repeat) retries only failures where the store cannot have acted: no connection, or
        503 (WordPress in maintenance)."""
        what = f"{method} {endpoint}"
        attempt = 0
        while True:
            error: WooError
            try:
                response = self._send(method, endpoint, params, data)
            except ForbiddenAddress as refused:
                # Not retried: the answer would be the same, and nothing was sent.
                raise WooError(f"refused to call {self.store_url} for {what}: {refused}; a "
                               "store must be reachable at public addresses only",
                               code="forbidden_address") from None
            except requests.RequestException as failure:
                # Connection failures (ConnectTimeout included) mean nothing reached the store.
                sure = isinstance(failure, requests.ConnectionError)
                # The exception text can hold the signed URL: name the type only.
                error = WooError(f"could not reach {self.store_url} for {what}: "
                                 f"{type(failure).__name__}", code="network_error")
                retryable = retry_unsure or sure
            else:
                status = response.status_code
                if status < 300:
                    return response
                error = self._error(response, what)
                retryable = (status >= 500 or status == 429) and (retry_unsure or status == 503)
            if not retryable or attempt >= self.retries:
                raise error
            wait = _backoff(attempt)
            attempt += 1
            log.warning("woocommerce %s for %s at %s; retry %d/%d in %.2fs", error.code, what,
                        self.store_url, attempt, self.retries, wait)
            self._sleep(wait)

    def _error(self, response: requests.Response, what: str) -> WooError:
        status = response.status_code
        body = _json_or_none(response)
        code = str(body.get("code") or f"http_{status}") if isinstance(body, dict) else \
            f"http_{status}"
        message = body.get("message") if isinstance(body, dict) else None
        detail = f": {str(message)[:300]}" if message else ""
        if 300 <= status < 400:
            where = response.headers.get("Location", "elsewhere")[:200]
            return WooError(f"{self.store_url} redirected {what} to {where}; reconnect the "
                            "store with its current address", status=status, code="redirect")
        if status in (401, 403):
            if _keys_refused(status, body):
                return WooAuthError(f"the store refused the API keys for {what} (HTTP "
                                    f"{status}){detail}; they were revoked or lack read/write "
                                    "access", status=status, code=code)
            shown = f" ({code})" if isinstance(body, dict) else ""
            return WooError(f"the store's firewall or host refused {what} (HTTP {status})"
                            f"{shown}, before WooCommerce saw the keys; the store stays "
                            "connected: retry later, or ask the merchant to allow this app's "
                            "requests", status=status, code="blocked")
        if status == 400 and code == COUPON_TAKEN:
            return CouponCodeTaken(f"the coupon code already exists{detail}", status=status,
                                   code=code)
        return WooError(f"{what} failed with HTTP {status}{detail}", status=status, code=code)

    def _json(self, response: requests.Response, what: str) -> Any:
        body = _json_or_none(response)
        if body is None:
            kind = response.headers.get("Content-Type", "no content type")[:80]
            raise WooError(f"{self.store_url} answered {what} with something that is not JSON "
                           f"({kind}); check that WooCommerce is active and that WordPress "
                           "permalinks are not 'Plain'", status=response.status_code,
                           code="not_json")
        return body

    def _json_list(self, response: requests.Response, what: str) -> list[dict[str, Any]]:
        body = self._json(response, what)
        if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
            raise WooError(f"{what} answered JSON that is not a list of objects",
                           status=response.status_code, code="unexpected_json")
        return body

    def _json_object(self, response: requests.Response, what: str) -> dict[str, Any]:
        body = self._json(response, what)
        if not isinstance(body, dict):
            raise WooError(f"{what} answered JSON that is not an object",
                           status=response.status_code, code="unexpected_json")
        return body

    # ---- resources ---------------------------------------------------------------------------

    def orders_window(self, modified_after: datetime | None, offset: int, limit: int = 50, *,
                      status: str = "any") -> tuple[list[dict[str, Any]], int | None]:
        """Up to ``limit`` orders modified after ``modified_after`` (exclusive; WooCommerce
        keeps whole seconds), in ascending id order, starting ``offset`` orders in, and the
        listing's size (``X-WP-Total``, None when the store does not say).

        Read every window of one run with the same ``modified_after``. Ids never change, so an
        order modified during the run keeps its place and new orders come after the others.
        An order leaving the listing meanwhile (trashed) still moves the later ones back by
        one: callers overlap their windows and skip ids they have taken already.

        ``status`` is WooCommerce's filter: ``any`` (every status but the trash), ``trash``,
        or statuses separated by commas."""
        if offset < 0 or not 1 <= limit <= 100:
            raise ValueError("offset is 0 or more and limit is 1 to 100")
        if not _STATUSES.fullmatch(status):
            raise ValueError(f"status must be order statuses separated by commas, got "
                             f"{status[:40]!r}")
        params: dict[str, Any] = {"orderby": "id", "order": "asc", "offset": offset,
                                  "per_page": limit, "dates_are_gmt": "true",
                                  "status": status}
        if modified_after is not None:
            params["modified_after"] = _gmt(modified_after)
        response = self._request("GET", "orders", params=params)
        orders = self._json_list(response, "GET orders")
        total = response.headers.get("X-WP-Total", "")
        return orders, int(total) if total.isdecimal() else None

    def order(self, order_id: str) -> dict[str, Any]:
        endpoint = f"orders/{_numeric_id(order_id, 'order_id')}"
        return self._json_object(self._request("GET", endpoint), f"GET {endpoint}")

    def refunds(self, order_id: str) -> list[dict[str, Any]]:
        endpoint = f"orders/{_numeric_id(order_id, 'order_id')}/refunds"
        # An order has few refunds; 100 (the API's maximum page) holds them all.
        response = self._request("GET", endpoint, params={"per_page": 100})
        return self._json_list(response, f"GET {endpoint}")

    def webhooks(self) -> list[dict[str, Any]]:
        """Every webhook of the store, whatever its status (all pages)."""
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            response = self._request("GET", "webhooks",
                                     params={"page": page, "per_page": WEBHOOKS_PER_PAGE})
            items = self._json_list(response, "GET webhooks")
            found.extend(items)
            try:
                pages = int(response.headers.get("X-WP-TotalPages", ""))
            except ValueError:
                pages = page + 1 if len(items) == WEBHOOKS_PER_PAGE else page
            if page >= pages or not items:
                return found
            page += 1

    def create_webhook(self, *, topic: str, delivery_url: str, secret: str,
                       name: str) -> dict[str, Any]:
        body = {"name": name, "topic": topic, "delivery_url": delivery_url, "secret": secret,
                "status": "active"}
        # A repeat after an unsure failure could leave two webhooks: retry only sure ones.
        response = self._request("POST", "webhooks", data=body, retry_unsure=False)
        return self._json_object(response, "POST webhooks")

    def update_webhook(self, webhook_id: int, **fields: Any) -> dict[str, Any]:
        endpoint = f"webhooks/{_numeric_id(webhook_id, 'webhook_id')}"
        response = self._request("PUT", endpoint, data=dict(fields))
        return self._json_object(response, f"PUT {endpoint}")

    def create_coupon(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a coupon; CouponCodeTaken when the code exists. Retried like a read: a
        repeat of a coupon that was created answers CouponCodeTaken, never a second coupon."""
        response = self._request("POST", "coupons", data=body)
        return self._json_object(response, "POST coupons")

    def coupon_by_code(self, code: str) -> dict[str, Any] | None:
        """The store's coupon with this code, or None. WooCommerce keeps codes lowercase and
        compares them without case, so this does too."""
        if not code:
            raise ValueError("a coupon code is required")
        response = self._request("GET", "coupons", params={"code": code})
        wanted = code.strip().lower()
        # The filter is WooCommerce's; matching again guards against a store that ignores it.
        return next((coupon for coupon in self._json_list(response, "GET coupons")
                     if str(coupon.get("code", "")).lower() == wanted), None)


    def coupon(self, coupon_id: str | int) -> dict[str, Any]:
        """One coupon by id, in the trash or not."""
        endpoint = f"coupons/{_numeric_id(coupon_id, 'coupon_id')}"
        return self._json_object(self._request("GET", endpoint), f"GET {endpoint}")

    def trash_coupon(self, coupon_id: str | int) -> dict[str, Any]:
        """Move a coupon to the trash (``force=false``): it stops applying at checkout at once
        and stays restorable in wp-admin. The answer is the coupon, ``usage_count`` and
        ``used_by`` included. A coupon in the trash already answers WooError ALREADY_TRASHED
        (so a repeat after a lost answer is safe to retry)."""
        endpoint = f"coupons/{_numeric_id(coupon_id, 'coupon_id')}"
        response = self._request("DELETE", endpoint, params={"force": "false"})
        return self._json_object(response, f"DELETE {endpoint}")


def _keys_refused(status: int, body: Any) -> bool:
    """Whether a 401/403 is WordPress's own REST error about the keys. WordPress answers 401
    to a request it could not authenticate, 403 to an authenticated one lacking a right."""
    code = body.get("code") if isinstance(body, dict) else None
    if not isinstance(code, str) or not code:
        return False
    return status == 401 or _KEY_REFUSED.fullmatch(code) is not None


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:  # requests' JSONDecodeError is a ValueError
        return None
