"""WooCommerce's background work: after a store connects, subscribe to its webhooks and read
its history; then, because WooCommerce never retries a delivery, poll the orders modified
since the checkpoint every period and feed them through the same ``sync_order``.

Each job takes ids, opens its own transactions, and is safe to run twice."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select

from integrations.errors import PayloadError
from integrations.woocommerce.client import WooAuthError, WooClient, WooError
from integrations.woocommerce.payloads import parse_order
from integrations.woocommerce.webhooks import TOPICS
from plugin_server.db import unit_of_work
from plugin_server.loyalty.errors import LoyaltyError
from plugin_server.loyalty.orders import sync_order
from plugin_server.loyalty.program import get_merchant
from plugin_server.loyalty.rules import RuleError
from plugin_server.models import Merchant, utcnow

from .connect import api_keys, mark_disconnected, webhook_secret

if TYPE_CHECKING:
    from plugin_server.runtime import Runtime

log = logging.getLogger(__name__)
WEBHOOK_PATH = "/webhooks/woocommerce/{store_id}"
RECONCILE_EVERY = timedelta(minutes=15)
# Orders modified just before the checkpoint are read again: clocks and caches lag.
RECONCILE_OVERLAP = timedelta(minutes=2)
PAGE_SIZE = 50
WEBHOOK_NAME = "Loyalty: {topic}"


class NotConnected(RuntimeError):
    """The store holds no working API keys (never connected, or revoked)."""


@contextmanager
def woo_client(runtime: Runtime, merchant_id: int) -> Iterator[WooClient]:
    """A client with the store's keys; a 401/403 marks the store disconnected."""
    with unit_of_work(runtime.database) as session:
        merchant = get_merchant(session, merchant_id)
        keys = api_keys(merchant, runtime.settings.ENCRYPTION_KEY)
        if merchant.status != "active" or keys is None:
            raise NotConnected(f"{merchant.shop} is not connected")
        store_url = merchant.shop
    try:
        yield WooClient(store_url, keys[0], keys[1])
    except WooAuthError:
        with unit_of_work(runtime.database) as session:
            mark_disconnected(get_merchant(session, merchant_id),
                              runtime.settings.ENCRYPTION_KEY)
        log.warning("woocommerce store %s refused its API keys: marked disconnected",
                    store_url)
        raise


def delivery_url(runtime: Runtime, store_id: str) -> str:
    return runtime.settings.APP_URL.rstrip("/") + WEBHOOK_PATH.format(store_id=store_id)


def ensure_webhooks(runtime: Runtime, merchant_id: int) -> int:
    """Our subscriptions exist, are active and sign with the store's secret: created when
    missing, re-activated when WooCommerce disabled them (after five failed deliveries).
    Returns how many were created or repaired."""
    with unit_of_work(runtime.database) as session:
        merchant = get_merchant(session, merchant_id)
        secret = webhook_secret(merchant, runtime.settings.ENCRYPTION_KEY)
        target = delivery_url(runtime, merchant.store_id)
    if secret is None:
        raise NotConnected("the store has no webhook secret; connect it again")
    changed = 0
    with woo_client(runtime, merchant_id) as client:
        existing = {hook.get("topic"): hook for hook in client.webhooks()
                    if hook.get("delivery_url") == target}
        for topic in TOPICS:
            hook = existing.get(topic)
            if hook is None:
                client.create_webhook(topic=topic, delivery_url=target, secret=secret,
                                      name=WEBHOOK_NAME.format(topic=topic))
                changed += 1
            elif hook.get("status") != "active":
                client.update_webhook(int(hook["id"]), status="active", secret=secret)
                changed += 1
    return changed


def after_connect(runtime: Runtime, merchant_id: int) -> None:
    """Subscribe to the store's webhooks, then read its history (the first reconciliation)."""
    created = ensure_webhooks(runtime, merchant_id)
    log.info("woocommerce merchant %s: %s webhooks created or repaired", merchant_id, created)
    report = reconcile(runtime, merchant_id)
    log.info("woocommerce merchant %s: history read, %s orders, %s with points changed",
             merchant_id, report.seen, report.healed)


@dataclass(frozen=True)
class ReconcileReport:
    merchant: str
    seen: int
    healed: int
    failed: int
    webhooks_repaired: int
    checkpoint: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def reconcile(runtime: Runtime, merchant_id: int, now: datetime | None = None,
              progress: Any = None) -> ReconcileReport:
    """Every order modified since the checkpoint (all of them the first time), page by page,
    through ``sync_order``. A missed delivery is healed here within one period. An order
    that cannot be read keeps the checkpoint where it was, so it is read again next time."""
    started = now or utcnow()
    with unit_of_work(runtime.database) as session:
        merchant = get_merchant(session, merchant_id)
        store = merchant.shop
        checkpoint = merchant.sync_checkpoint
    since = checkpoint - RECONCILE_OVERLAP if checkpoint else None
    repaired = ensure_webhooks(runtime, merchant_id)
    seen = healed = failed = 0
    page = 1
    while True:
        with woo_client(runtime, merchant_id) as client:
            orders, pages = client.orders_page(since, page, PAGE_SIZE)
        with unit_of_work(runtime.database) as session:
            for data in orders:
                seen += 1
                try:
                    with session.begin_nested():
                        outcome = sync_order(session, merchant_id, parse_order(data))
                except (PayloadError, LoyaltyError, RuleError) as error:
                    log.warning("reconcile %s: order %s skipped: %s", store,
                                data.get("id") if isinstance(data, dict) else "?", error)
                    failed += 1
                    continue
                healed += 1 if (outcome.awarded or outcome.reversed) else 0
        if progress is not None:
            progress(page, pages, seen)
        if page >= pages or not orders:
            break
        page += 1
    if not failed:
        with unit_of_work(runtime.database) as session:
            get_merchant(session, merchant_id).sync_checkpoint = started
    return ReconcileReport(store, seen, healed, failed, repaired,
                           (started if not failed else checkpoint or started).isoformat())


def run_reconcile(runtime: Runtime, merchant_id: int) -> dict[str, Any]:
    return reconcile(runtime, merchant_id).as_dict()


def woocommerce_sweep(runtime: Runtime, now: datetime) -> None:
    """The minute sweep's WooCommerce part: reconcile stores whose checkpoint is older than
    RECONCILE_EVERY (or that were never read)."""
    with unit_of_work(runtime.database) as session:
        due = list(session.execute(
            select(Merchant.id).where(
                Merchant.platform == "woocommerce", Merchant.status == "active",
                Merchant.credentials.is_not(None),
                or_(Merchant.sync_checkpoint.is_(None),
                    Merchant.sync_checkpoint < now - RECONCILE_EVERY))).scalars())
    for merchant_id in due:
        runtime.jobs.enqueue("woocommerce_reconcile", merchant_id)


WOOCOMMERCE_JOBS = {
    "woocommerce_after_connect": after_connect,
    "woocommerce_reconcile": run_reconcile,
}
WOO_ERRORS = (NotConnected, WooError)
