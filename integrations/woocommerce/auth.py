"""WooCommerce's wc-auth endpoint (DESIGN §8, "Connect"): the URL that asks the merchant to
grant REST API keys, and the JSON body WooCommerce POSTs to ``callback_url`` with the keys.

The callback is unauthenticated (anyone can POST to it), so the body is checked strictly; it
is the caller's job to match ``user_id`` to a connection it started."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

SCOPE = "read_write"
MAX_BODY_BYTES = 16_384
MAX_USER_ID_LENGTH = 200
# WooCommerce makes keys as "ck_"/"cs_" + 40 hex characters (wc_rand_hash); other shapes are
# allowed within bounds so a future change of length does not break connecting.
_CONSUMER_KEY = re.compile(r"ck_[A-Za-z0-9]{8,125}")
_CONSUMER_SECRET = re.compile(r"cs_[A-Za-z0-9]{8,125}")


@dataclass(frozen=True)
class ApiKeys:
    """REST API keys a store granted. The key pair is kept out of ``repr`` so that logging
    the object never leaks a credential."""

    key_id: int
    user_id: str
    consumer_key: str = field(repr=False)
    consumer_secret: str = field(repr=False)
    key_permissions: str


class InvalidCallback(ValueError):
    """The callback body is not what WooCommerce sends; the message never repeats a key."""


def authorize_url(store_url: str, *, app_name: str, user_id: str, return_url: str,
                  callback_url: str) -> str:
    """``{store}/wc-auth/v1/authorize?...`` for an already normalized store URL."""
    for name, value in (("store_url", store_url), ("app_name", app_name),
                        ("user_id", user_id), ("return_url", return_url),
                        ("callback_url", callback_url)):
        if not value:
            raise ValueError(f"{name} is required to build the wc-auth URL")
    query = urlencode({"app_name": app_name, "scope": SCOPE, "user_id": user_id,
                       "return_url": return_url, "callback_url": callback_url})
    return f"{store_url.rstrip('/')}/wc-auth/v1/authorize?{query}"


def _key(data: dict[str, Any], name: str, pattern: re.Pattern[str], prefix: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidCallback(f"{name} must be {prefix!r} followed by 8 to 125 letters or "
                              "digits")
    return value


def parse_auth_callback(body: bytes) -> ApiKeys:
    """The keys in WooCommerce's callback body
    ``{"key_id", "user_id", "consumer_key", "consumer_secret", "key_permissions"}``."""
    if len(body) > MAX_BODY_BYTES:
        raise InvalidCallback(f"body is {len(body)} bytes; WooCommerce sends well under "
                              f"{MAX_BODY_BYTES}")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidCallback("body is not JSON") from None
    if not isinstance(data, dict):
        raise InvalidCallback("body must be a JSON object")
    key_id = data.get("key_id")
    if isinstance(key_id, bool) or not isinstance(key_id, int) or not 0 < key_id < 2**63:
        raise InvalidCallback(f"key_id must be a positive whole number, got {key_id!r}")
    user_id = data.get("user_id")
    # WooCommerce echoes the user_id given in the authorize URL, as a string; a number is
    # accepted too, since PHP may have decoded a numeric value on the way.
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        user_id = str(user_id)
    if not isinstance(user_id, str) or not 0 < len(user_id) <= MAX_USER_ID_LENGTH:
        raise InvalidCallback(f"user_id must be text of 1 to {MAX_USER_ID_LENGTH} characters")
    permissions = data.get("key_permissions")
    if permissions != SCOPE:
        shown = permissions if isinstance(permissions, str) and len(permissions) < 40 else "?"
        raise InvalidCallback(f"key_permissions must be {SCOPE!r}, got {shown!r}: the app "
                              "needs to read orders and write coupons")
    return ApiKeys(
        key_id=key_id,
        user_id=user_id,
        consumer_key=_key(data, "consumer_key", _CONSUMER_KEY, "ck_"),
        consumer_secret=_key(data, "consumer_secret", _CONSUMER_SECRET, "cs_"),
        key_permissions=permissions,
    )
