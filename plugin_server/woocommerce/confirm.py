"""The merchant's way back from WooCommerce's approval page: whether the connection this
browser started is the one now in use, and whether the store accepts its keys. Only then is
the widget secret shown (anyone can start a connection for any store and land here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from integrations.woocommerce.client import WooAuthError, WooError
from plugin_server.db import unit_of_work
from plugin_server.loyalty.program import get_merchant
from plugin_server.loyalty.widget_identity import widget_secret_for

from .connect import api_keys, connected_by, keys_verified
from .store_client import client_for, refused, verified

if TYPE_CHECKING:
    from plugin_server.runtime import Runtime


@dataclass(frozen=True)
class Confirmation:
    """``state``: connected, another_connection (the store is connected, not by this
    request), not_connected (no keys arrived, or the store refused them), unreachable."""

    state: str
    shop: str
    store_id: str
    widget_secret: str | None = None
    detail: str = ""


def confirm_connection(runtime: Runtime, merchant_id: int, nonce: str) -> Confirmation:
    encryption_key = runtime.settings.ENCRYPTION_KEY
    with unit_of_work(runtime.database) as session:
        merchant = get_merchant(session, merchant_id)
        shop, store_id = merchant.shop, merchant.store_id
        keys = api_keys(merchant, encryption_key)
        if merchant.status != "active" or keys is None:
            return Confirmation("not_connected", shop, store_id)
        if not connected_by(merchant, encryption_key, nonce):
            return Confirmation("another_connection", shop, store_id)
        checked = keys_verified(merchant, encryption_key)
    if not checked:
        try:
            client_for(runtime, shop, keys[0], keys[1]).webhooks()
        except WooAuthError as error:
            refused(runtime, merchant_id, keys[0])
            return Confirmation("not_connected", shop, store_id, detail=str(error))
        except WooError as error:
            return Confirmation("unreachable", shop, store_id, detail=str(error))
        verified(runtime, merchant_id, keys[0])
    with unit_of_work(runtime.database) as session:
        secret = widget_secret_for(session, get_merchant(session, merchant_id), encryption_key)
    return Confirmation("connected", shop, store_id, widget_secret=secret)
