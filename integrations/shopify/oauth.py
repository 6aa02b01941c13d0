"""Install and tokens: shop validation, the OAuth query HMAC, the authorize URL, the code
grant, token exchange for embedded installs, and refreshing expiring offline tokens.

ShopifyAPI's ``Session`` computes the query HMAC and the authorize URL; Shopify's
``shopify_app`` package does token exchange and refresh. Only the code grant is ours (see
:func:`exchange_code`). Tokens are never logged or put into exception messages.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import shopify
import shopify_app
from shopify_app import IdTokenDetails, TokenExchangeAccessToken, TokenExchangeResult

from integrations.shopify.admin import (
    SHOP_PATTERN,
    InvalidShop,
    ShopifyConfig,
    http_client,
    normalize_shop,
)

# SHOP_PATTERN, InvalidShop and normalize_shop live in admin.py (the client validates the shop
# too, and admin.py cannot import this module without a cycle); they are part of this API.
__all__ = [
    "SCOPES",
    "SHOP_PATTERN",
    "InvalidShop",
    "ShopToken",
    "TokenError",
    "TokenRevoked",
    "authorize_url",
    "exchange_code",
    "exchange_session_token",
    "normalize_shop",
    "refresh_if_needed",
    "verify_query_hmac",
]

log = logging.getLogger(__name__)

SCOPES = ("read_orders", "read_customers", "write_discounts", "write_app_proxy")
_SHOP_SUFFIX = ".myshopify.com"
# Codes meaning the refresh token can never work again: only a reinstall helps.
_REVOKED_CODES = frozenset({"invalid_grant", "refresh_token_expired"})


def _session_class(**attributes: str) -> type[shopify.Session]:
    """A throwaway ``shopify.Session`` subclass, so the library's class-level ``secret`` and
    ``api_key`` are never set globally (other merchants' requests run in the same process)."""
    return type("_AppSession", (shopify.Session,), dict(attributes))


def _flatten(params: Mapping[str, str | list[str]]) -> dict[str, str | list[str]] | None:
    """parse_qs gives lists: unwrap single values; keep lists only for ``key[]`` (the library
    signs those as a JSON list). A repeated plain key is not something Shopify sends."""
    flat: dict[str, str | list[str]] = {}
    for key, value in params.items():
        if isinstance(value, str):
            flat[key] = value
        elif key.endswith("[]"):
            flat[key] = [str(v) for v in value]
        elif len(value) == 1:
            flat[key] = str(value[0])
        else:
            return None
    return flat


def verify_query_hmac(params: Mapping[str, str | list[str]], secrets: Sequence[str]) -> bool:
    """Whether the install/callback query was signed by Shopify with one of ``secrets``
    (current first, then the old one during rotation). Empty secrets never verify anything.
    Freshness is not checked here: the single-use ``state`` nonce covers replays."""
    flat = _flatten(params)
    if flat is None:
        return False
    received = flat.get("hmac")
    if not isinstance(received, str) or not received:
        return False
    received_bytes = received.encode("utf-8")
    matched = False
    for secret in secrets:
        if not secret:
            continue
        calculated = _session_class(secret=secret).calculate_hmac(flat).encode("utf-8")
        # Every secret is tried, so timing does not tell which one matched.
        matched = hmac.compare_digest(calculated, received_bytes) or matched
    return matched


def authorize_url(config: ShopifyConfig, shop: str, redirect_uri: str, state: str,
                  scopes: Sequence[str] = SCOPES) -> str:
    """Where to send the merchant to approve the install (offline access)."""
    shop = normalize_shop(shop)
    if not state:
        raise ValueError("state is required")
    session = _session_class(api_key=config.api_key)(shop, config.api_version)
    url: str = session.create_permission_url(list(scopes), redirect_uri, state)
    if config.url_override:
        prefix = f"https://{shop}"
        if not url.startswith(prefix + "/"):
            raise ValueError("unexpected authorize URL shape from ShopifyAPI")
        url = config.override_base + url[len(prefix):]
    return url


@dataclass(frozen=True)
class ShopToken:
    """An offline Admin API token. ``expires_at`` and the refresh fields are None for a
    non-expiring token."""

    shop: str
    access_token: str
    scope: str
    expires_at: datetime | None
    refresh_token: str | None
    refresh_token_expires_at: datetime | None

    def __repr__(self) -> str:  # the dataclass repr would print both tokens
        return (f"ShopToken(shop={self.shop!r}, scope={self.scope!r}, "
                f"expires_at={self.expires_at!r})")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (ISO 8601 timestamps), for encrypted storage."""
        return {
            "shop": self.shop,
            "access_token": self.access_token,
            "scope": self.scope,
            "expires_at": _iso(self.expires_at),
            "refresh_token": self.refresh_token,
            "refresh_token_expires_at": _iso(self.refresh_token_expires_at),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShopToken:
        try:
            token = cls(
                shop=normalize_shop(data["shop"]),
                access_token=_required_str(data, "access_token"),
                scope=str(data.get("scope") or ""),
                expires_at=_parse_time(data.get("expires_at")),
                refresh_token=data.get("refresh_token") or None,
                refresh_token_expires_at=_parse_time(data.get("refresh_token_expires_at")),
            )
        except KeyError as missing:
            raise ValueError(f"stored Shopify token lacks {missing}") from None
        if token.refresh_token is not None and not isinstance(token.refresh_token, str):
            raise ValueError("stored Shopify token has a non-string refresh_token")
        return token


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else _utc(moment).isoformat()


def _utc(moment: datetime) -> datetime:
    # Naive datetimes are taken as UTC, the only zone this codebase stores.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _parse_time(value: object) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO 8601 timestamp, got {type(value).__name__}")
    return _utc(datetime.fromisoformat(value))


def _required_str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"stored Shopify token has no {key}")
    return value


class TokenError(Exception):
    """Getting or refreshing a token failed; ``code`` says how."""

    def __init__(self, message: str, code: str = "token_error") -> None:
        super().__init__(message)
        self.code = code


class TokenRevoked(TokenError):
    """The refresh token is invalid or expired: the merchant must reinstall (reopen the app)."""


def _app(config: ShopifyConfig) -> shopify_app.ShopifyApp:
    return shopify_app.ShopifyApp(client_id=config.api_key, client_secret=config.api_secret,
                                  old_client_secret=config.api_secret_old or None)


def _shopify_error_text(response: httpx.Response, config: ShopifyConfig, code: str) -> str:
    """Shopify's own words on a failed grant, with anything secret scrubbed out."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and (body.get("error") or body.get("errors")):
        parts = [str(body.get("error") or body.get("errors")),
                 str(body.get("error_description") or "")]
        text = ": ".join(p for p in parts if p)
    else:
        text = response.text.strip()
    for secret in (config.api_secret, config.api_secret_old, code):
        if secret:
            text = text.replace(secret, "[redacted]")
    return text[:300]


def exchange_code(config: ShopifyConfig, shop: str, code: str, *,
                  client: httpx.Client | None = None) -> ShopToken:
    """The authorization-code grant, asking for an expiring offline token.

    This one call is ours: ShopifyAPI's ``Session.request_token`` cannot send ``expiring=1``
    and has no timeout, and ``shopify_app`` only does token exchange, not the code grant.
    """
    shop = normalize_shop(shop)
    if not code:
        raise TokenError("the callback carried no code", "missing_code")
    body = {"client_id": config.api_key, "client_secret": config.api_secret, "code": code,
            "expiring": 1}
    own = client is None
    http = client if client is not None else http_client(config)
    try:
        response = http.post(f"https://{shop}/admin/oauth/access_token", json=body,
                             headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise TokenError(f"could not reach {shop} for the token: {type(exc).__name__}",
                         "network_error") from None
    finally:
        if own:
            http.close()
    if response.status_code != 200:
        detail = _shopify_error_text(response, config, code)
        raise TokenError(f"token request for {shop} answered {response.status_code}: {detail}",
                         f"http_{response.status_code}")
    return _token_from_grant(shop, response)


def _token_from_grant(shop: str, response: httpx.Response) -> ShopToken:
    try:
        data = response.json()
    except ValueError:
        raise TokenError(f"token response for {shop} is not JSON", "bad_response") from None
    if not isinstance(data, dict):
        raise TokenError(f"token response for {shop} is not an object", "bad_response")
    missing = []
    if not isinstance(data.get("access_token"), str) or not data["access_token"]:
        missing.append("access_token")
    if not isinstance(data.get("scope"), str):
        missing.append("scope")
    # We asked for an expiring token; the three expiry fields come together or not at all.
    expiry_keys = ("expires_in", "refresh_token", "refresh_token_expires_in")
    present = [k for k in expiry_keys if data.get(k) not in (None, "")]
    if present and len(present) != len(expiry_keys):
        missing += [k for k in expiry_keys if k not in present]
    if missing:
        raise TokenError(f"token response for {shop} lacks {', '.join(missing)}", "bad_response")
    now = datetime.now(UTC)
    try:
        expires_at = now + timedelta(seconds=int(data["expires_in"])) if present else None
        refresh_expires_at = (now + timedelta(seconds=int(data["refresh_token_expires_in"]))
                              if present else None)
    except (TypeError, ValueError):
        raise TokenError(f"token response for {shop} has a non-numeric lifetime",
                         "bad_response") from None
    return ShopToken(shop=shop, access_token=data["access_token"], scope=data["scope"],
                     expires_at=expires_at,
                     refresh_token=str(data["refresh_token"]) if present else None,
                     refresh_token_expires_at=refresh_expires_at)


def _token_from_package(shop: str, result: TokenExchangeResult) -> ShopToken:
    issued = result.access_token
    if issued is None or not issued.token:
        raise TokenError(f"Shopify returned no token for {shop}", "bad_response")
    return ShopToken(shop=shop, access_token=issued.token, scope=issued.scope or "",
                     expires_at=_parse_time(issued.expires),
                     refresh_token=issued.refresh_token or None,
                     refresh_token_expires_at=_parse_time(issued.refresh_token_expires))


def refresh_if_needed(config: ShopifyConfig, token: ShopToken, *,
                      client: httpx.Client | None = None) -> ShopToken | None:
    """A new token pair when ``token`` expires within 60 s (the package decides), else None.

    The old refresh token stops working once this returns: store the new pair atomically and
    refresh one at a time per shop (DESIGN §7); that locking is the caller's.
    """
    current = TokenExchangeAccessToken(
        shop=token.shop[: -len(_SHOP_SUFFIX)],  # the package wants the bare subdomain
        token=token.access_token,
        expires=_iso(token.expires_at),
        scope=token.scope,
        access_mode="offline",
        refresh_token=token.refresh_token,
        refresh_token_expires=_iso(token.refresh_token_expires_at),
        user=None,
    )
    own = client is None
    http = client if client is not None else http_client(config)
    try:
        result = _app(config).refresh_token_exchanged_access_token(current, http_client=http)
    finally:
        if own:
            http.close()
    code = result.log.code
    if not result.ok:
        if code in _REVOKED_CODES:
            raise TokenRevoked(f"the refresh token for {token.shop} no longer works ({code}); "
                               f"the merchant must reinstall", code)
        raise TokenError(f"refreshing the token for {token.shop} failed ({code})", code)
    if result.access_token is None:  # still valid, or a non-expiring token
        return None
    log.info("refreshed the Shopify token for %s", token.shop)
    return _token_from_package(token.shop, result)


def exchange_session_token(config: ShopifyConfig, shop: str, session_token: str,
                           claims: dict[str, Any], *,
                           client: httpx.Client | None = None) -> ShopToken:
    """Token exchange for a Shopify-managed install: trade a verified App Bridge session
    token (``claims`` already checked by the package's verify function) for an expiring
    offline token."""
    shop = normalize_shop(shop)
    dest = str(claims.get("dest") or "").removeprefix("https://").lower()
    if dest != shop:
        # The package sends the exchange to claims["dest"]: it must be the shop we store for.
        raise TokenError(f"session token is for {dest or 'no shop'!r}, not {shop!r}",
                         "shop_mismatch")
    id_token = IdTokenDetails(exchangeable=True, token=session_token, claims=claims)
    own = client is None
    http = client if client is not None else http_client(config)
    try:
        result = _app(config).exchange_using_token_exchange(
            access_mode="offline", id_token=id_token, invalid_token_response=None,
            expiring=True, http_client=http,
        )
    finally:
        if own:
            http.close()
    if not result.ok:
        raise TokenError(f"token exchange for {shop} failed ({result.log.code})",
                         result.log.code)
    return _token_from_package(shop, result)
