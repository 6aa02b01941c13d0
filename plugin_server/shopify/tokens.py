"""A merchant's Admin API token, refreshed before it expires.

Expiring offline tokens last an hour; each refresh returns a new pair and invalidates the old
refresh token. So refreshes for one shop run one at a time in this process (a lock per shop),
and the new pair replaces the old one only if nobody replaced it meanwhile (compare and swap).
A second process that refreshed with the same old refresh token loses the race, gets
``invalid_grant``, re-reads the pair the winner stored, and uses it."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import TYPE_CHECKING

from sqlalchemy import update

from integrations.shopify.admin import AdminClient
from integrations.shopify.oauth import ShopToken, TokenError, TokenRevoked, refresh_if_needed
from plugin_server.crypto import encrypt_json
from plugin_server.db import unit_of_work
from plugin_server.loyalty.merchants import read_credentials
from plugin_server.models import Merchant

from .settings import shopify_config

if TYPE_CHECKING:
    from plugin_server.runtime import Runtime

# A process that lost a refresh race waits this long for the winner to store the new pair.
RACE_POLLS = 3
RACE_POLL_SECONDS = 0.5
_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
_locks_guard = threading.Lock()


class NotConnected(Exception):
    """The shop has no usable token: it uninstalled the app or must install it again."""


def _lock_for(shop: str) -> threading.Lock:
    with _locks_guard:
        return _locks[shop]


def _stored(runtime: Runtime, merchant_id: int) -> tuple[str, bytes | None, ShopToken | None]:
    with unit_of_work(runtime.database) as session:
        merchant = session.get(Merchant, merchant_id)
        if merchant is None or merchant.platform != "shopify":
            raise NotConnected(f"merchant {merchant_id} is not a Shopify shop")
        if merchant.status != "active" or merchant.credentials is None:
            raise NotConnected(f"{merchant.shop} is {merchant.status}; the app must be "
                               "installed again")
        values = read_credentials(merchant, runtime.settings.ENCRYPTION_KEY).get("token")
        token = ShopToken.from_dict(values) if values else None
        return merchant.shop, merchant.credentials, token


def _swap(runtime: Runtime, merchant_id: int, old: bytes, token: ShopToken) -> bool:
    new = encrypt_json(runtime.settings.ENCRYPTION_KEY, {"token": token.to_dict()})
    with unit_of_work(runtime.database) as session:
        result = session.execute(
            update(Merchant).where(Merchant.id == merchant_id, Merchant.credentials == old)
            .values(credentials=new).execution_options(synchronize_session=False))
        return result.rowcount == 1  # type: ignore[attr-defined]


def _forget(runtime: Runtime, merchant_id: int, old: bytes) -> None:
    with unit_of_work(runtime.database) as session:
        session.execute(
            update(Merchant).where(Merchant.id == merchant_id, Merchant.credentials == old)
            .values(credentials=None).execution_options(synchronize_session=False))


def access_token(runtime: Runtime, merchant_id: int) -> ShopToken:
    """A token good for at least another minute. Raises NotConnected when there is none."""
    config = shopify_config(runtime.settings)
    shop, stored, token = _stored(runtime, merchant_id)
    if token is None or stored is None:
        raise NotConnected(f"{shop} has no Admin API token; the app must be installed again")
    with _lock_for(shop):
        # Another thread may have refreshed while this one waited.
        shop, stored, token = _stored(runtime, merchant_id)
        assert token is not None and stored is not None
        try:
            fresh = refresh_if_needed(config, token)
        except TokenRevoked as error:
            for _ in range(RACE_POLLS):
                _, now_stored, now_token = _stored(runtime, merchant_id)
                if now_stored != stored and now_token is not None:
                    return now_token  # another process refreshed first with the same pair
                time.sleep(RACE_POLL_SECONDS)
            # Dead for good: forget it, so that opening the app runs the grant again.
            _forget(runtime, merchant_id, stored)
            raise NotConnected(f"{shop}: Shopify no longer accepts the refresh token "
                               f"({error.code}); the app must be installed again") from error
        except TokenError as error:
            raise NotConnected(f"{shop}: could not refresh the access token: {error}") from error
        if fresh is None:
            return token
        if not _swap(runtime, merchant_id, stored, fresh):
            _, _, now_token = _stored(runtime, merchant_id)
            return now_token or fresh
        return fresh


def admin_client(runtime: Runtime, merchant_id: int) -> AdminClient:
    token = access_token(runtime, merchant_id)
    return AdminClient(shopify_config(runtime.settings), token.shop, token.access_token)
