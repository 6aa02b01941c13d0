"""WooCommerce's background work: after a store connects, subscribe to its webhooks and read
its history; then, because WooCommerce never retries a delivery, poll the orders modified
since the checkpoint every period and feed them through the same ``sync_order``.

Each job takes ids, opens its own transactions, and is safe to run twice; two runs of one
store's reconciliation never overlap (``plugin_server.exclusive``)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from integrations.errors import PayloadError
from integrations.woocommerce.client import WooAuthError, WooClient, WooError
from integrations.woocommerce.webhooks import TOPICS
from plugin_server.db import unit_of_work
from plugin_server.exclusive import exclusive
from plugin_server.loyalty.errors import LoyaltyError
from plugin_server.loyalty.inbox import store_delivery
from plugin_server.loyalty.orders import sync_order
from plugin_server.loyalty.program import get_merchant
from plugin_server.loyalty.rules import RuleError
from plugin_server.models import InboxEvent, Merchant, utcnow

from .connect import webhook_secret
from .orders import order_from_store, refresh_order
from .store_client import NotConnected, verified, woo_client

if TYPE_CHECKING:
    from integrations.base import Order
    from plugin_server.runtime import Runtime

log = logging.getLogger(__name__)
WEBHOOK_PATH = "/webhooks/woocommerce/{store_id}"
RECONCILE_EVERY = timedelta(minutes=15)
# Orders modified just before the checkpoint are read again: clocks and caches lag.
RECONCILE_OVERLAP = timedelta(minutes=2)
PAGE_SIZE = 50
WEBHOOK_NAME = "Loyalty: {topic}"


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
        verified(runtime, merchant_id, client.consumer_key)
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
    """Subscribe to the store's webhooks, then read its history (the first reconciliation).
    A failure is logged, never raised: in eager mode this runs inside the wc-auth callback,
    and WooCommerce deletes the keys on any answer but 200. The periodic reconciliation
    tries again."""
    try:
        # reconcile subscribes first (ensure_webhooks), under the store's lock.
        report = reconcile(runtime, merchant_id)
    except (NotConnected, WooError, ReconcileBusy) as error:
        log.warning("woocommerce merchant %s: first sync did not finish (%s); the periodic "
                    "reconciliation will try again", merchant_id, error)
        return
    log.info("woocommerce merchant %s: %s webhooks created or repaired; history read, %s "
             "orders, %s with points changed", merchant_id, report.webhooks_repaired,
             report.seen, report.healed)


class ReconcileBusy(RuntimeError):
    """Another run is reconciling this store right now."""


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


# What ``orders?status=`` lists: every order status, then the trash, which "any" leaves out.
LISTINGS = ("any", "trash")
# Each window starts this many orders before the end of the last one: orders leaving the
# listing mid-run move the later ones back, and the overlap finds where the last one ended.
WINDOW_OVERLAP = 5

Read = tuple[Any, "Order | str"]


def _one_order_failed(error: WooError) -> bool:
    """A REST error that concerns one order (its refunds cannot be read), not the store:
    the order is kept as failed and the run goes on. Refused keys, a firewall, rate limits,
    a store that is down or unreachable stop the run (the checkpoint stays)."""
    return (error.status is not None and 400 <= error.status < 500 and error.status != 429
            and not isinstance(error, WooAuthError) and error.code != "blocked")


def _read_orders(client: WooClient, documents: list[Any]) -> list[Read]:
    """Each order with its refunds' details, or why it cannot be taken; read before any
    transaction opens."""
    read: list[Read] = []
    for data in documents:
        try:
            read.append((data, order_from_store(client, data)))
        except PayloadError as error:
            read.append((data, str(error)))
        except WooError as error:
            if not _one_order_failed(error):
                raise
            read.append((data, f"its refunds cannot be read: {error}"))
    return read


def _order_id(data: Any) -> int | None:
    raw = data.get("id") if isinstance(data, dict) else None
    return raw if isinstance(raw, int) and not isinstance(raw, bool) else None


def _listing(runtime: Runtime, merchant_id: int, since: datetime | None,
             status: str) -> Iterator[tuple[list[Read], int | None]]:
    """Every order of one listing exactly once, in windows, with the listing's size.

    Windows overlap by WINDOW_OVERLAP and ids at or below the highest one taken are skipped.
    A window that holds no id taken already may have jumped past orders (more of them left
    the listing than the overlap): it steps back until it overlaps, so none is missed."""
    offset, newest = 0, -1
    while True:
        with woo_client(runtime, merchant_id) as client:
            documents, total = client.orders_window(since, offset, PAGE_SIZE, status=status)
            ids = [_order_id(data) for data in documents]
            if offset > 0 and documents and min(i if i is not None else -1 for i in ids) > newest:
                offset = max(0, offset - PAGE_SIZE)
                continue
            fresh = [data for data, order_id in zip(documents, ids, strict=True)
                     if order_id is None or order_id > newest]
            read = _read_orders(client, fresh)
        newest = max([newest, *(i for i in ids if i is not None)])
        yield read, total
        if len(documents) < PAGE_SIZE:
            return
        offset += len(documents) - WINDOW_OVERLAP


def _keep_failure(session: Session, merchant_id: int, data: Any, reason: str) -> None:
    """An order the engine cannot take is kept in the inbox as a failed delivery with its
    reason (``loyalty events --failed``), and the checkpoint moves on: reading it every
    period would not change it."""
    raw = json.dumps(data, separators=(",", ":")).encode()
    key = "reconcile:" + hashlib.sha256(raw).hexdigest()[:40]
    event = store_delivery(session, merchant_id, "woocommerce", "order.updated", key, raw,
                           {"X-Loyalty-Source": "reconcile"})
    if event is not None:
        row = session.get(InboxEvent, event)
        row.state, row.reason, row.processed_at = "failed", reason[:500], utcnow()


def reconcile(runtime: Runtime, merchant_id: int, now: datetime | None = None,
              progress: Any = None) -> ReconcileReport:
    """Every order modified since the checkpoint (all of them the first time), page by page,
    through ``sync_order``; then the trash. A missed delivery is healed here within one
    period. An order that cannot be taken is kept as a failed delivery; a store that cannot
    be read keeps the checkpoint where it was. ReconcileBusy when another run has the store."""
    with exclusive(runtime.database, f"woocommerce-reconcile:{merchant_id}") as mine:
        if not mine:
            raise ReconcileBusy(f"merchant {merchant_id} is being reconciled already")
        return _reconcile(runtime, merchant_id, now or utcnow(), progress)


def _reconcile(runtime: Runtime, merchant_id: int, started: datetime,
               progress: Any) -> ReconcileReport:
    with unit_of_work(runtime.database) as session:
        merchant = get_merchant(session, merchant_id)
        store = merchant.shop
        checkpoint = merchant.sync_checkpoint
    since = checkpoint - RECONCILE_OVERLAP if checkpoint else None
    repaired = ensure_webhooks(runtime, merchant_id)
    seen = healed = failed = 0
    for status in LISTINGS:
        for read, total in _listing(runtime, merchant_id, since, status):
            with unit_of_work(runtime.database) as session:
                for data, order in read:
                    seen += 1
                    reason = order if isinstance(order, str) else None
                    if not isinstance(order, str):
                        try:
                            with session.begin_nested():
                                outcome = sync_order(session, merchant_id, order)
                            healed += 1 if (outcome.awarded or outcome.reversed) else 0
                        except (LoyaltyError, RuleError) as error:
                            reason = f"{type(error).__name__}: {error}"
                    if reason is not None:
                        log.warning("reconcile %s: order %s failed: %s", store,
                                    _order_id(data), reason)
                        failed += 1
                        _keep_failure(session, merchant_id, data, reason)
            if progress is not None:
                progress(status, seen, total)
    with unit_of_work(runtime.database) as session:
        get_merchant(session, merchant_id).sync_checkpoint = started
    return ReconcileReport(store, seen, healed, failed, repaired, started.isoformat())


def run_reconcile(runtime: Runtime, merchant_id: int) -> dict[str, Any]:
    try:
        return reconcile(runtime, merchant_id).as_dict()
    except ReconcileBusy as error:
        return {"skipped": str(error)}


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
    "woocommerce_refresh_order": refresh_order,
}
WOO_ERRORS = (NotConnected, WooError, ReconcileBusy)
