"""Which merchant a Shopify shop domain is, asked on every webhook and storefront request:
remembered for a few seconds, and looked up again at once after an install or uninstall in
this process."""

from __future__ import annotations

import time
from dataclasses import dataclass

from flask import current_app

from plugin_server.shopify.install import shopify_merchant, status_changes

from .session import db_read_session, release_read_session

REMEMBER_SECONDS = 5.0
MAX_REMEMBERED = 10_000


@dataclass(frozen=True)
class KnownShop:
    merchant_id: int
    platform: str
    status: str


def known_shop(shop: str) -> KnownShop | None:
    cache: dict[str, tuple[float, int, KnownShop | None]] = current_app.extensions.setdefault(
        "shopify_shops", {})
    now, generation = time.monotonic(), status_changes()
    hit = cache.get(shop)
    if hit is not None and now - hit[0] < REMEMBER_SECONDS and hit[1] == generation:
        return hit[2]
    found = shopify_merchant(db_read_session(), shop)
    value = None if found is None else KnownShop(found.id, found.platform, found.status)
    # Give the connection back at once: a request holds one connection at a time.
    release_read_session()
    if len(cache) > MAX_REMEMBERED:
        cache.clear()
    cache[shop] = (now, generation, value)
    return value
