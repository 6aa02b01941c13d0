"""Connecting a WooCommerce store (DESIGN §8): a pending merchant and a signed, one-time
``user_id`` for wc-auth, the API keys WooCommerce posts back (kept encrypted with the store's
own webhook secret), and whether the keys have been seen to work."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from integrations.woocommerce.auth import ApiKeys
from integrations.woocommerce.webhooks import new_webhook_secret
from plugin_server.loyalty.merchants import create_merchant, read_credentials, store_credentials
from plugin_server.loyalty.program import ensure_settings
from plugin_server.models import Merchant, Reward, utcnow
from plugin_server.nonces import digest, issue_nonce, spend_nonce

CONNECT_SALT = "loyalty.woocommerce.connect"
# The merchant approves on their own store and comes back: an hour is plenty, and a link
# found later in a log is useless.
CONNECT_MAX_AGE = 3600
NONCE_LIFETIME = timedelta(seconds=CONNECT_MAX_AGE)
DEFAULT_REWARDS = (("5 off your order", "fixed_amount", 500, Decimal(5)),
                   ("10% off your order", "percentage", 1000, Decimal(10)),
                   ("Free shipping", "free_shipping", 750, Decimal(0)))


class ConnectRefused(ValueError):
    """A callback or return that cannot be trusted: forged, expired, or for no pending store."""


@dataclass(frozen=True)
class Connection:
    merchant_id: int
    store_url: str
    store_id: str


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=CONNECT_SALT)


def woocommerce_merchant(session: Session, store_url: str) -> Merchant | None:
    return session.execute(select(Merchant).where(
        Merchant.platform == "woocommerce", Merchant.shop == store_url)).scalar_one_or_none()


def start_connection(session: Session, store_url: str, secret_key: str,
                     now: datetime | None = None) -> tuple[str, str, str]:
    """The store as a merchant (pending until WooCommerce posts the keys; a store connecting
    again keeps its program), the signed ``user_id`` wc-auth carries back to us, and the
    one-time nonce inside it, which the browser also keeps (in a signed cookie) so the return
    page can tell the person who started this connection from anyone else."""
    now = now or utcnow()
    merchant = woocommerce_merchant(session, store_url)
    if merchant is None:
        merchant = create_merchant(session, "woocommerce", store_url,
                                   name=store_url.split("://", 1)[1])
        merchant.status = "pending"
    nonce = issue_nonce(session, store_url, NONCE_LIFETIME, now)
    user_id = _serializer(secret_key).dumps({"m": merchant.id, "n": nonce})
    return merchant.store_id, user_id, nonce


def connection_for(session: Session, user_id: str, secret_key: str,
                   max_age: int = CONNECT_MAX_AGE) -> tuple[Merchant, str]:
    """The merchant a signed ``user_id`` names and its nonce; ConnectRefused when forged or
    expired."""
    try:
        data: Any = _serializer(secret_key).loads(user_id, max_age=max_age)
    except SignatureExpired as error:
        raise ConnectRefused("the connection request expired; start again from the "
                             "plugin's Connect button") from error
    except BadSignature as error:
        raise ConnectRefused("user_id is not one this server signed") from error
    merchant_id = data.get("m") if isinstance(data, dict) else None
    nonce = data.get("n") if isinstance(data, dict) else None
    # Locked: the callback reads, then rewrites, the merchant's credentials.
    merchant = (session.get(Merchant, merchant_id, with_for_update=True, populate_existing=True)
                if isinstance(merchant_id, int) else None)
    if merchant is None or merchant.platform != "woocommerce" or not isinstance(nonce, str):
        raise ConnectRefused("user_id names no WooCommerce store here")
    return merchant, nonce


def _spend(session: Session, merchant: Merchant, nonce: str, now: datetime) -> None:
    """One callback per connection: a conditional update, so two concurrent copies spend it
    once."""
    if not spend_nonce(session, nonce, merchant.shop, now):
        raise ConnectRefused("this connection request was used already or has expired; "
                             "start again from the plugin's Connect button")


def accept_keys(session: Session, keys: ApiKeys, secret_key: str, encryption_key: str,
                now: datetime | None = None) -> Connection:
    """Keep the store's API keys (encrypted) and make it active. The webhook secret is made
    once and kept across reconnections, so deliveries already on their way still verify."""
    now = now or utcnow()
    merchant, nonce = connection_for(session, keys.user_id, secret_key)
    _spend(session, merchant, nonce, now)
    previous = read_credentials(merchant, encryption_key)
    if merchant.status == "active" and previous.get("consumer_key") and previous.get("verified"):
        # Anyone can start a connection for any store URL: keys the store has accepted are
        # never replaced that way (revoked keys mark the store disconnected; then it may
        # connect). Keys never proven to work may be, or a stranger's junk could block the
        # real owner.
        raise ConnectRefused("this store is connected already")
    store_credentials(merchant, encryption_key, {
        "consumer_key": keys.consumer_key, "consumer_secret": keys.consumer_secret,
        "key_id": keys.key_id,
        "webhook_secret": previous.get("webhook_secret") or new_webhook_secret(),
        "connected_by": digest(nonce), "verified": False,
    })
    if merchant.program_started_at is None:
        # WooCommerce dates have whole seconds: an order placed in this very second counts.
        merchant.program_started_at = now.replace(microsecond=0)
    merchant.status = "active"
    merchant.installed_at = now
    merchant.uninstalled_at = None
    ensure_settings(session, merchant)
    _default_rewards(session, merchant, now)
    session.flush()
    return Connection(merchant.id, merchant.shop, merchant.store_id)


def connected_by(merchant: Merchant, encryption_key: str, nonce: str) -> bool:
    """Whether the keys in use came from the connection this nonce started."""
    value = read_credentials(merchant, encryption_key).get("connected_by")
    return isinstance(value, str) and hmac.compare_digest(value, digest(nonce))


def keys_verified(merchant: Merchant, encryption_key: str) -> bool:
    return read_credentials(merchant, encryption_key).get("verified") is True


def mark_verified(merchant: Merchant, encryption_key: str, consumer_key: str) -> None:
    """The store answered a call made with these keys; later connections cannot replace them."""
    values = read_credentials(merchant, encryption_key)
    if values.get("consumer_key") == consumer_key and values.get("verified") is not True:
        store_credentials(merchant, encryption_key, {**values, "verified": True})


def _default_rewards(session: Session, merchant: Merchant, now: datetime) -> None:
    has_rewards = session.execute(
        select(Reward.id).where(Reward.merchant_id == merchant.id).limit(1)).first()
    if has_rewards is None:
        for name, kind, cost, value in DEFAULT_REWARDS:
            session.add(Reward(merchant_id=merchant.id, name=name, kind=kind, points_cost=cost,
                               value=value, expires_days=90, created_at=now))


def webhook_secret(merchant: Merchant, encryption_key: str) -> str | None:
    value = read_credentials(merchant, encryption_key).get("webhook_secret")
    return value if isinstance(value, str) and value else None


def api_keys(merchant: Merchant, encryption_key: str) -> tuple[str, str] | None:
    values = read_credentials(merchant, encryption_key)
    key, secret = values.get("consumer_key"), values.get("consumer_secret")
    return (key, secret) if isinstance(key, str) and isinstance(secret, str) else None


def mark_disconnected(merchant: Merchant, encryption_key: str, *,
                      refused_key: str | None = None, now: datetime | None = None) -> bool:
    """WooCommerce refused our keys (revoked in the store): keep the program and the
    webhook secret, drop the dead keys; the merchant connects again from the plugin. With
    ``refused_key``, nothing changes unless those are still the keys in use (a connection
    made meanwhile brought new ones). Returns whether the store was disconnected."""
    values = read_credentials(merchant, encryption_key)
    if refused_key is not None and values.get("consumer_key") != refused_key:
        return False
    secret = values.get("webhook_secret")
    store_credentials(merchant, encryption_key, {"webhook_secret": secret} if secret else {})
    merchant.status = "disconnected"
    merchant.uninstalled_at = now or utcnow()
    return True
