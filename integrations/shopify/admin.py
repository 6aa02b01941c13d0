"""The one Shopify Admin API client: configuration, HTTP, and GraphQL with typed failures.

Shopify's ``shopify_app`` package does the request itself (headers, 429 ``Retry-After`` and
502/503/504 retries). This module adds what it leaves to the app: typed exceptions, retrying
HTTP 500 and network errors, and waiting out GraphQL ``THROTTLED`` answers from the cost
figures Shopify returns (DESIGN §7). Every request goes through :func:`http_client`, so the
timeout and the test/fake URL override apply everywhere.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx
import shopify_app
from shopify_app import GQLResult

log = logging.getLogger(__name__)

# DESIGN §7, used with ``fullmatch`` so a trailing newline cannot slip past ``$``.
SHOP_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-]*\.myshopify\.com$")
SHOP_MAX_LENGTH = 255
_SHOP_SUFFIX = ".myshopify.com"

# A THROTTLED answer's own figures decide the wait; these bounds only guard against figures
# that are missing or absurd (a zero wait would spin, an hour-long one would hang a worker).
MIN_THROTTLE_WAIT = 0.1
MAX_THROTTLE_WAIT = 30.0
DEFAULT_THROTTLE_WAIT = 1.0
# Backoff for the failures the package does not retry itself (HTTP 500, network errors).
BACKOFF_BASE = 0.5
BACKOFF_MAX = 8.0


class InvalidShop(ValueError):
    """A ``shop`` value that is not a bare ``name.myshopify.com`` domain."""


def normalize_shop(value: str | None) -> str:
    """The shop domain, lowercased, or InvalidShop. Never strips or repairs: a value with a
    scheme, port, path, credentials or whitespace is refused, because whatever passes here is
    put into outbound URLs and redirects."""
    if value is None or value == "":
        raise InvalidShop("shop is missing")
    if not isinstance(value, str):
        raise InvalidShop(f"shop must be a string, got {type(value).__name__}")
    if len(value) > SHOP_MAX_LENGTH:
        raise InvalidShop(f"shop is {len(value)} characters long; the limit is {SHOP_MAX_LENGTH}")
    if not SHOP_PATTERN.fullmatch(value):
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise InvalidShop(
            f"shop must be a bare domain like 'name.myshopify.com' (letters, digits and "
            f"hyphens, then '.myshopify.com'; no scheme, port, path or whitespace): {shown!r}"
        )
    return value.lower()


@dataclass(frozen=True)
class ShopifyConfig:
    api_key: str
    api_secret: str
    api_secret_old: str = ""
    api_version: str = "2026-01"
    # SHOPIFY_ADMIN_URL_OVERRIDE: when set, every OAuth and Admin call goes to this base URL
    # instead of https://{shop} (tests and local fakes only; the server refuses it in production).
    url_override: str = ""
    timeout: float = 10.0
    max_retries: int = 3

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ValueError("timeout must be positive: every outbound call needs one")
        if self.max_retries < 0:
            raise ValueError("max_retries cannot be negative")
        if self.url_override:
            _override_url(self.url_override)  # fail at configuration time, not on first call

    @property
    def secrets(self) -> tuple[str, ...]:
        """The secrets a signature may be made with, current first; empty ones are left out
        (an empty key would make any signature forgeable)."""
        return tuple(s for s in (self.api_secret, self.api_secret_old) if s)

    @property
    def override_base(self) -> str:
        """The override without a trailing slash, or ``""``."""
        return self.url_override.rstrip("/")


def _override_url(value: str) -> httpx.URL:
    url = httpx.URL(value)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"url_override must be an http(s) base URL, got {value!r}")
    if url.query or url.fragment:
        raise ValueError("url_override cannot carry a query or fragment")
    return url


class _OverrideTransport(httpx.BaseTransport):
    """Sends each request to the override base instead of the shop's host, keeping path and
    query (under the override's path prefix, if any)."""

    def __init__(self, base: httpx.URL, inner: httpx.BaseTransport) -> None:
        self._base = base
        self._prefix = base.raw_path.rstrip(b"/")
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        original_host = request.url.netloc.decode("ascii")
        request.url = request.url.copy_with(
            scheme=self._base.scheme, host=self._base.host, port=self._base.port,
            raw_path=self._prefix + request.url.raw_path,
        )
        # Host must name the server actually reached; the fake can still tell shops apart.
        request.headers["Host"] = self._base.netloc.decode("ascii")
        request.headers["X-Forwarded-Host"] = original_host
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def http_client(config: ShopifyConfig) -> httpx.Client:
    """The HTTP client for every Shopify call: the configured timeout, no redirects followed,
    and, with ``url_override``, every request rewritten to the override base."""
    timeout = httpx.Timeout(config.timeout)
    if not config.url_override:
        return httpx.Client(timeout=timeout, follow_redirects=False)
    transport = _OverrideTransport(_override_url(config.url_override), httpx.HTTPTransport())
    return httpx.Client(timeout=timeout, follow_redirects=False, transport=transport)


class AdminError(Exception):
    """An Admin API call failed; ``code`` says how (the package's log code or ours)."""

    def __init__(self, message: str, code: str = "admin_error") -> None:
        super().__init__(message)
        self.code = code


class AdminUnauthorized(AdminError):
    """401: the token is invalid or revoked (app uninstalled, token expired)."""


class AdminForbidden(AdminError):
    """403: the token lacks a scope the call needs."""


class AdminThrottled(AdminError):
    """Still THROTTLED (or 429) after the allowed retries."""


class AdminUnavailable(AdminError):
    """5xx or a network error after the allowed retries."""


class AdminQueryError(AdminError):
    """GraphQL ``errors`` other than throttling: the query is wrong for this shop/version."""

    def __init__(self, message: str, errors: list[dict[str, Any]], code: str = "graphql_errors"):
        super().__init__(message, code)
        self.errors = errors


def _json_body(result: GQLResult) -> dict[str, Any]:
    try:
        body = json.loads(result.response.body or "")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _errors_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    errors = body.get("errors")
    if isinstance(errors, str):  # Shopify sends a bare string for some HTTP-level failures
        return [{"message": errors}]
    if isinstance(errors, list):
        return [e if isinstance(e, dict) else {"message": str(e)} for e in errors]
    return []


def _messages(errors: list[dict[str, Any]]) -> str:
    text = "; ".join(str(e.get("message", "")) for e in errors if e.get("message"))
    return text[:500] or "no message"


def _is_throttled(errors: list[dict[str, Any]]) -> bool:
    return any(
        isinstance(e.get("extensions"), dict) and e["extensions"].get("code") == "THROTTLED"
        for e in errors
    )


def throttle_wait(body: dict[str, Any]) -> float:
    """Seconds until the bucket holds the query's cost: (requested - available) / restoreRate."""
    extensions = body.get("extensions")
    cost = extensions.get("cost") if isinstance(extensions, dict) else None
    if not isinstance(cost, dict):
        return DEFAULT_THROTTLE_WAIT
    status = cost.get("throttleStatus")
    if not isinstance(status, dict):
        return DEFAULT_THROTTLE_WAIT
    requested = _number(cost.get("requestedQueryCost"))
    available = _number(status.get("currentlyAvailable"))
    rate = _number(status.get("restoreRate"))
    if requested is None or available is None or rate is None or rate <= 0:
        return DEFAULT_THROTTLE_WAIT
    wait = (requested - available) / rate
    return min(max(wait, MIN_THROTTLE_WAIT), MAX_THROTTLE_WAIT)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _backoff(retry: int) -> float:
    return min(BACKOFF_BASE * (2**retry), BACKOFF_MAX)


class AdminClient:
    """Admin GraphQL for one shop. ``shop`` is the full ``name.myshopify.com`` domain.

    Not tied to a request: pass the stored offline token. Close it (or use ``with``) when it
    made its own HTTP client.
    """

    def __init__(
        self,
        config: ShopifyConfig,
        shop: str,
        access_token: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        client: httpx.Client | None = None,
    ) -> None:
        self.shop = normalize_shop(shop)
        if not access_token:
            raise ValueError("access_token is required")
        self._config = config
        self._access_token = access_token
        self._sleep = sleep
        self._owns_client = client is None
        self._client = client if client is not None else http_client(config)
        self._app = shopify_app.ShopifyApp(
            client_id=config.api_key, client_secret=config.api_secret,
            old_client_secret=config.api_secret_old or None,
        )

    def __repr__(self) -> str:  # never show the token
        return f"AdminClient(shop={self.shop!r}, api_version={self._config.api_version!r})"

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one query or mutation and return its ``data``; raise an AdminError subclass."""
        retries = 0
        while True:
            result = self._app.admin_graphql_request(
                query,
                shop=self.shop[: -len(_SHOP_SUFFIX)],  # the package wants the bare subdomain
                access_token=self._access_token,
                api_version=self._config.api_version,
                invalid_token_response=None,  # background use: no App Bridge retry to offer
                variables=variables,
                max_retries=self._config.max_retries,
                http_client=self._client,
            )
            if result.ok:
                return result.data if isinstance(result.data, dict) else {}
            error, wait = self._failure(result, retries)
            if wait is None or retries >= self._config.max_retries:
                raise error
            retries += 1
            log.warning("shopify admin %s for %s; retry %d/%d in %.2fs", error.code, self.shop,
                        retries, self._config.max_retries, wait)
            self._sleep(wait)

    def _failure(self, result: GQLResult, retries: int) -> tuple[AdminError, float | None]:
        """The exception this result means, and how long to wait before a retry (None: don't
        retry; the package already retried 429 and 502/503/504 itself)."""
        code = result.log.code
        status = result.response.status
        if code == "graphql_errors":
            body = _json_body(result)
            errors = _errors_of(body)
            if _is_throttled(errors):
                throttled = AdminThrottled("Shopify is still throttling this shop", "throttled")
                return throttled, throttle_wait(body)
            return AdminQueryError(_messages(errors), errors), None
        if code == "unauthorized":
            return AdminUnauthorized("the access token is invalid or revoked", code), None
        if code == "http_error_403":
            return AdminForbidden("the access token lacks a required scope", code), None
        if code == "rate_limited":
            return AdminThrottled("HTTP 429 after the package's retries", code), None
        if code == "network_error":
            return AdminUnavailable("network error reaching Shopify", code), _backoff(retries)
        if code == "http_error_500":
            return AdminUnavailable("Shopify answered 500", code), _backoff(retries)
        if code in ("http_error_502", "http_error_503", "http_error_504"):
            return AdminUnavailable(f"Shopify answered {status} after retries", code), None
        if code == "http_error_400":
            errors = _errors_of(_json_body(result))
            return AdminQueryError(_messages(errors), errors, code), None
        return AdminError(f"Admin API call failed ({code}, HTTP {status})", code), None
