"""Who a storefront request speaks for outside the App Proxy (WooCommerce, the demo): the
store's public id, its widget secret (what the merchant pastes into the WordPress plugin),
the store's web origin for CORS, and the short-lived shopper token the storefront API hands
out once the plugin's signed identity checks out (DESIGN §8)."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from integrations.woocommerce.identity import ShopperIdentity
from plugin_server.crypto import decrypt_json, encrypt_json
from plugin_server.models import Merchant

# Alphanumeric, like the webhook secrets WooCommerce accepts: easy to paste, ~238 bits.
SECRET_ALPHABET = string.ascii_letters + string.digits
SECRET_LENGTH = 40
SECRET_FIELD = "widget_secret"
TOKEN_SALT = "loyalty.storefront.shopper-token"
TOKEN_MAX_AGE = 1800
DEFAULT_PORTS = {"http": 80, "https": 443}


def new_widget_secret() -> str:
    return "".join(secrets.choice(SECRET_ALPHABET) for _ in range(SECRET_LENGTH))


def unseal_widget_secret(sealed: bytes | None, encryption_key: str) -> str | None:
    """A widget secret as stored (``Merchant.widget_secret``), decrypted; None while none was
    made. CredentialsError when the ENCRYPTION_KEY cannot read it."""
    if sealed is None:
        return None
    value = decrypt_json(encryption_key, sealed).get(SECRET_FIELD)
    return value if isinstance(value, str) and value else None


def stored_widget_secret(merchant: Merchant, encryption_key: str) -> str | None:
    """The merchant's widget secret, or None while none was made (nothing is written)."""
    return unseal_widget_secret(merchant.widget_secret, encryption_key)


def widget_secret_for(session: Session, merchant: Merchant, encryption_key: str) -> str:
    """The merchant's widget secret, made and stored (encrypted) the first time it is asked
    for. Two first callers at once agree: only an empty column is written, and the loser
    reads the winner's secret back."""
    existing = stored_widget_secret(merchant, encryption_key)
    if existing is not None:
        return existing
    sealed = encrypt_json(encryption_key, {SECRET_FIELD: new_widget_secret()})
    session.execute(update(Merchant)
                    .where(Merchant.id == merchant.id, Merchant.widget_secret.is_(None))
                    .values(widget_secret=sealed).execution_options(synchronize_session=False))
    session.refresh(merchant, ["widget_secret"])
    secret = stored_widget_secret(merchant, encryption_key)
    assert secret is not None
    return secret


def merchant_by_store_id(session: Session, store_id: str) -> Merchant | None:
    return session.execute(select(Merchant).where(Merchant.store_id == store_id)).scalars().first()


def origin_of(address: str) -> str:
    """``scheme://host[:port]`` of a store address, as browsers send it in ``Origin``
    (lowercase, default port left out); a bare domain is taken as https. Empty when the
    address has no usable host, so it matches no request."""
    text = address.strip()
    parts = urlsplit(text if "://" in text else f"https://{text}")
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        return ""
    if scheme not in DEFAULT_PORTS or not host:
        return ""
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" + (f":{port}" if port and port != DEFAULT_PORTS[scheme] else "")


def store_origin(merchant: Merchant) -> str:
    """The web origin the store's pages load from: a WooCommerce merchant's ``shop`` holds
    the store URL (which may sit under a path); a Shopify merchant's is its
    ``*.myshopify.com`` domain."""
    return origin_of(merchant.shop)


def merchant_for_origin(session: Session, origin: str) -> Merchant | None:
    """The active merchant whose store pages load from ``origin``, if any: a browser's
    preflight names neither the store nor the shopper, only where the page comes from."""
    wanted = origin_of(origin)
    if not wanted or wanted != origin:
        return None
    host = urlsplit(wanted).netloc
    candidates = session.execute(select(Merchant).where(
        Merchant.status == "active",
        or_(Merchant.shop == host, Merchant.shop == wanted,
            Merchant.shop.startswith(wanted + "/", autoescape=True))
    ).order_by(Merchant.id).limit(10)).scalars()
    return next((merchant for merchant in candidates if store_origin(merchant) == wanted), None)


# -- the shopper token ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ShopperToken:
    """What a storefront token vouches for: this customer of this store."""

    store_id: str
    customer_id: str
    email: str


class TokenRejected(ValueError):
    """A bearer token that names nobody. ``store_id`` is known when the token was genuine but
    has expired (the storefront may then still read the answer and sign in again)."""

    def __init__(self, code: str, message: str, store_id: str | None = None) -> None:
        super().__init__(message)
        self.code, self.store_id = code, store_id


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=TOKEN_SALT)


def issue_shopper_token(secret_key: str, identity: ShopperIdentity) -> str:
    """A token for the shopper the store's plugin vouched for, readable for TOKEN_MAX_AGE
    seconds; signed with SECRET_KEY under its own salt, so no other signed value of the app
    passes for one."""
    return _serializer(secret_key).dumps({"store_id": identity.store_id,
                                          "customer_id": identity.customer_id,
                                          "email": identity.email})


def _token_fields(payload: Any) -> ShopperToken | None:
    if not isinstance(payload, dict):
        return None
    values = [payload.get(name) for name in ("store_id", "customer_id", "email")]
    if not all(isinstance(value, str) for value in values) or not values[0] or not values[1]:
        return None
    return ShopperToken(*values)


def read_shopper_token(secret_key: str, token: str,
                       max_age: int = TOKEN_MAX_AGE) -> ShopperToken:
    """The shopper a token names. TokenRejected (``token_expired`` or ``invalid_token``)
    otherwise."""
    serializer = _serializer(secret_key)
    try:
        found = _token_fields(serializer.loads(token, max_age=max_age))
    except SignatureExpired as error:
        try:
            late = _token_fields(serializer.load_payload(error.payload)) if error.payload else None
        except BadSignature:
            late = None
        raise TokenRejected("token_expired", "the sign-in has expired; sign in again",
                            late.store_id if late else None) from error
    except BadSignature as error:
        raise TokenRejected("invalid_token", "the token is not one this server issued") from error
    if found is None:
        raise TokenRejected("invalid_token", "the token does not name a shopper")
    return found
