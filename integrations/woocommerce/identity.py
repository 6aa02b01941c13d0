"""The signed shopper identity the WordPress companion plugin prints for a signed-in customer
(DESIGN §8, "The shopper on the storefront"): ``{"store_id", "customer_id", "email", "ts",
"sig"}`` where ``sig`` is the lowercase hex HMAC-SHA256, keyed with the store's widget secret,
of ``store_id|customer_id|email|ts`` in UTF-8. Pure: the plugin's PHP and the server must
agree byte for byte, so the whole protocol lives here, with no framework around it."""

from __future__ import annotations

import hashlib
import hmac
import string
import time
from dataclasses import dataclass
from typing import Any

WINDOW_SECONDS = 300
MAX_ID_LENGTH = 64
# RFC 5321 caps a forward path at 256 octets including the angle brackets.
MAX_EMAIL_LENGTH = 254
SIGNATURE_LENGTH = 64
HEX_DIGITS = frozenset(string.hexdigits)
SEPARATOR = "|"


class IdentityRejected(ValueError):
    """The identity cannot name a shopper. ``code`` is stable for API answers; the message
    says what was wrong and never repeats the signature."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class ShopperIdentity:
    """A shopper the store's plugin vouched for, at ``ts`` (Unix seconds)."""

    store_id: str
    customer_id: str
    email: str
    ts: int


def identity_signature(secret: str, store_id: str, customer_id: str, email: str,
                       ts: int) -> str:
    """The lowercase hex HMAC-SHA256 of ``store_id|customer_id|email|ts`` keyed with the
    widget secret: exactly what the plugin computes with PHP's ``hash_hmac('sha256', ...)``."""
    message = SEPARATOR.join((store_id, customer_id, email, str(ts))).encode("utf-8")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signed_identity(secret: str, store_id: str | int, customer_id: str | int, email: str,
                    ts: int | None = None) -> dict[str, Any]:
    """What the plugin prints (used by the demo, the tests and anyone writing a plugin):
    ids as strings, ``ts`` now unless given."""
    stamp = int(time.time()) if ts is None else int(ts)
    store, customer = str(store_id), str(customer_id)
    return {"store_id": store, "customer_id": customer, "email": email, "ts": stamp,
            "sig": identity_signature(secret, store, customer, email, stamp)}


def _is_utf8(value: str) -> bool:
    """JSON may carry lone surrogates ("\\ud800"), which have no UTF-8 form to sign."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _identifier(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if (not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH
            or not _is_utf8(value)):
        raise IdentityRejected("invalid_identity",
                               f"{name} must be text of 1 to {MAX_ID_LENGTH} characters")
    # The signed text joins the fields with "|": an id holding one could be re-split into
    # other fields under the same signature.
    if SEPARATOR in value:
        raise IdentityRejected("invalid_identity", f"{name} must not contain {SEPARATOR!r}")
    return value


def _fields(data: Any) -> tuple[ShopperIdentity, str]:
    if not isinstance(data, dict):
        raise IdentityRejected("invalid_identity", 'send the identity the store printed, a JSON '
                               'object {"store_id", "customer_id", "email", "ts", "sig"}')
    store_id = _identifier(data, "store_id")
    customer_id = _identifier(data, "customer_id")
    email = data.get("email")
    if not isinstance(email, str) or len(email) > MAX_EMAIL_LENGTH or not _is_utf8(email):
        raise IdentityRejected("invalid_identity",
                               f"email must be text of at most {MAX_EMAIL_LENGTH} characters")
    ts = data.get("ts")
    if isinstance(ts, bool) or not isinstance(ts, int):
        raise IdentityRejected("invalid_identity", "ts must be a whole number of Unix seconds")
    sig = data.get("sig")
    if not isinstance(sig, str) or len(sig) != SIGNATURE_LENGTH or not HEX_DIGITS.issuperset(sig):
        raise IdentityRejected("invalid_identity",
                               f"sig must be {SIGNATURE_LENGTH} hexadecimal characters")
    return ShopperIdentity(store_id, customer_id, email, ts), sig


def verify_identity(data: Any, secret: str, now: float,
                    window: int = WINDOW_SECONDS) -> ShopperIdentity:
    """The shopper ``data`` names, if the widget secret signed it within ``window`` seconds of
    ``now``. The signature is checked before the time, so "expired" is only ever said of an
    identity the store really signed."""
    identity, sig = _fields(data)
    expected = identity_signature(secret, identity.store_id, identity.customer_id,
                                  identity.email, identity.ts)
    if not hmac.compare_digest(expected, sig):
        raise IdentityRejected("invalid_signature", "the identity's signature does not match "
                               "this store's widget secret")
    if abs(now - identity.ts) > window:
        age = int(now) - identity.ts
        when = f"{age} seconds ago" if age >= 0 else f"{-age} seconds in the future"
        raise IdentityRejected("identity_expired", f"the identity is stamped {when}; it is "
                               f"accepted within {window} seconds (reload the page, or check "
                               "the store's clock)")
    return identity


def admin_link_signature(secret: str, store_id: str, ts: int) -> str:
    """The plugin's signature asking for an admin sign-in link: lowercase hex HMAC-SHA256 of
    ``admin|store_id|ts`` keyed with the widget secret (the "admin" prefix keeps a shopper
    identity from ever passing for it)."""
    message = SEPARATOR.join(("admin", store_id, str(ts))).encode("utf-8")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def admin_store_id(data: Any) -> str:
    """The store an admin-link request names (checked for shape, not yet for signature)."""
    if not isinstance(data, dict):
        raise IdentityRejected("invalid_request", 'send {"store_id", "ts", "sig"}')
    return _identifier(data, "store_id")


def verify_admin_request(data: Any, secret: str, now: float,
                         window: int = WINDOW_SECONDS) -> str:
    """The store id of an admin-link request the widget secret signed within ``window``
    seconds of ``now``; IdentityRejected otherwise."""
    store_id = admin_store_id(data)
    ts, sig = data.get("ts"), data.get("sig")
    if isinstance(ts, bool) or not isinstance(ts, int):
        raise IdentityRejected("invalid_request", "ts must be a whole number of Unix seconds")
    if not isinstance(sig, str) or len(sig) != SIGNATURE_LENGTH or not HEX_DIGITS.issuperset(sig):
        raise IdentityRejected("invalid_request",
                               f"sig must be {SIGNATURE_LENGTH} hexadecimal characters")
    if not hmac.compare_digest(admin_link_signature(secret, store_id, ts), sig.lower()):
        raise IdentityRejected("invalid_signature", "the request's signature does not match "
                               "this store's widget secret")
    if abs(now - ts) > window:
        raise IdentityRejected("request_expired", f"the request is stamped {int(now) - ts} "
                               f"seconds from now; it is accepted within {window} seconds "
                               "(check the store's clock)")
    return store_id
