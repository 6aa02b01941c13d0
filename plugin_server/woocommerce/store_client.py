"""A REST client for one connected store, with the store's keys and this server's rules: in
production it connects only to public addresses, and keys the store refuses mark it
disconnected (unless a new connection replaced them meanwhile)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from integrations.woocommerce.client import WooAuthError, WooClient
from plugin_server.db import unit_of_work
from plugin_server.loyalty.program import get_merchant

from .connect import api_keys, mark_disconnected, mark_verified

if TYPE_CHECKING:
    from plugin_server.runtime import Runtime

log = logging.getLogger(__name__)


class NotConnected(RuntimeError):
    """The store holds no working API keys (never connected, or revoked)."""


def client_for(runtime: Runtime, store_url: str, consumer_key: str,
               consumer_secret: str) -> WooClient:
    return WooClient(store_url, consumer_key, consumer_secret,
                     public_only=runtime.settings.is_production)


def refused(runtime: Runtime, merchant_id: int, consumer_key: str) -> None:
    """The store answered these keys with an authentication error."""
    with unit_of_work(runtime.database) as session:
        merchant = get_merchant(session, merchant_id, lock=True)
        if mark_disconnected(merchant, runtime.settings.ENCRYPTION_KEY,
                             refused_key=consumer_key):
            log.warning("woocommerce store %s refused its API keys: marked disconnected",
                        merchant.shop)


def verified(runtime: Runtime, merchant_id: int, consumer_key: str) -> None:
    """The store answered these keys: a stranger's connection can no longer replace them."""
    with unit_of_work(runtime.database) as session:
        merchant = get_merchant(session, merchant_id, lock=True)
        mark_verified(merchant, runtime.settings.ENCRYPTION_KEY, consumer_key)


@contextmanager
def woo_client(runtime: Runtime, merchant_id: int) -> Iterator[WooClient]:
    """A client with the store's keys; an authentication refusal marks the store
    disconnected."""
    with unit_of_work(runtime.database) as session:
        merchant = get_merchant(session, merchant_id)
        keys = api_keys(merchant, runtime.settings.ENCRYPTION_KEY)
        if merchant.status != "active" or keys is None:
            raise NotConnected(f"{merchant.shop} is not connected")
        store_url = merchant.shop
    try:
        with client_for(runtime, store_url, keys[0], keys[1]) as client:  # closes its pool
            yield client
    except WooAuthError:
        refused(runtime, merchant_id, keys[0])
        raise
