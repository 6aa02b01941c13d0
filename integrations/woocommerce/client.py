"""The WooCommerce REST API (``/wp-json/wc/v3``) for one store, through the ``woocommerce``
package: Basic auth over https, OAuth 1.0a over http (DESIGN §8).

Every call has a timeout. 5xx answers, 429 and network failures are retried with a short
backoff (``sleep`` is injectable so tests never wait); other failures raise at once. Keys
never appear in logs, messages or ``repr``."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import requests
from woocommerce import API

log = logging.getLogger(__name__)

API_VERSION = "wc/v3"
BACKOFF_BASE = 0.5
BACKOFF_MAX = 8.0
WEBHOOKS_PER_PAGE = 100
_NUMERIC_ID = re.compile(r"[0-9]{1,19}")
COUPON_TAKEN = "woocommerce_rest_coupon_code_already_exists"


class WooError(Exception):
    """A REST call failed. ``status`` is the HTTP status (None when none came back) and
    ``code`` WooCommerce's error code (or ours: ``network_error``, ``not_json``, ...)."""

    def __init__(self, message: str, *, status: int | None = None,
                 code: str = "woo_error") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class WooAuthError(WooError):
    """401/403: the keys were revoked or lack permission; the merchant must reconnect."""


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
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive: every outbound call needs one")
        if retries < 0:
            raise ValueError("retries cannot be negative")
        if not consumer_key or not consumer_secret:
            raise ValueError("consumer_key and consumer_secret are required")
        self.store_url = store_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self._sleep = sleep
        self._api = API(url=self.store_url, consumer_key=consumer_key,
                        consumer_secret=consumer_secret, version=API_VERSION, wp_api=True,
                        timeout=timeout)

    def __repr__(self) -> str:  # never show the keys
        return f"WooClient(store_url={self.store_url!r})"

    # ---- plumbing ----------------------------------------------------------------------------

    def _send(self, method: str, endpoint: str, params: dict[str, Any] | None,
              data: dict[str, Any] | None) -> requests.Response:
        # Redirects are not followed: the keys must only ever go to the URL the merchant
        # connected, and a redirect usually means that URL is out of date.
        options: dict[str, Any] = {"allow_redirects": False}
        if params:
            options["params"] = dict(params)
        if method == "GET":
            return self._api.get(endpoint, **options)
        if method == "POST":
            return self._api.post(endpoint, data, **options)
        return self._api.put(endpoint, data, **options)

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
            return WooAuthError(f"the store refused the API keys for {what} (HTTP {status})"
                                f"{detail}; they were revoked or lack read/write access",
                                status=status, code=code)
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

    def orders_page(self, modified_after: datetime | None, page: int,
                    per_page: int = 50) -> tuple[list[dict[str, Any]], int]:
        """One page of orders, least recently modified first, and the number of pages.
        ``modified_after`` is exclusive and WooCommerce keeps whole seconds."""
        if page < 1 or not 1 <= per_page <= 100:
            raise ValueError("page starts at 1 and per_page is 1 to 100")
        params: dict[str, Any] = {"orderby": "modified", "order": "asc", "page": page,
                                  "per_page": per_page, "dates_are_gmt": "true"}
        if modified_after is not None:
            params["modified_after"] = _gmt(modified_after)
        response = self._request("GET", "orders", params=params)
        orders = self._json_list(response, "GET orders")
        try:
            pages = int(response.headers.get("X-WP-TotalPages", ""))
        except ValueError:
            # Without the header the store gives no way to know of more pages: stop here.
            pages = page if orders else 0
        return orders, max(pages, 0)

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


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:  # requests' JSONDecodeError is a ValueError
        return None
