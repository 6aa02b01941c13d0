"""Shopify's background work: finishing an install, importing past orders, reconciling.

Each job takes ids, opens its own transactions, and is safe to run twice: orders go through
``sync_order``, which converges whatever copies it sees (L1, L6)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import select

from integrations.errors import PayloadError
from integrations.shopify.admin import AdminError, http_client
from integrations.shopify.order_queries import (
    BulkOperationError,
    ParsedOrder,
    bulk_operation_status,
    fetch_orders_page,
    orders_from_bulk_jsonl,
    start_bulk_orders,
)
from integrations.shopify.shop import fetch_shop, register_webhooks
from plugin_server.db import unit_of_work
from plugin_server.loyalty.errors import LoyaltyError
from plugin_server.loyalty.orders import sync_order
from plugin_server.loyalty.program import ensure_settings, get_merchant
from plugin_server.loyalty.rules import RuleError
from plugin_server.models import ImportRun, Merchant, utcnow

from .install import name_default_rewards
from .settings import WEBHOOK_PATH, app_url, shopify_config
from .tokens import NotConnected, admin_client

if TYPE_CHECKING:
    from plugin_server.runtime import Runtime

log = logging.getLogger(__name__)
CHUNK = 100
RECONCILE_EVERY = timedelta(minutes=15)
# Orders changed just before the checkpoint are looked at again: clocks and indexes lag.
RECONCILE_OVERLAP = timedelta(minutes=2)
_import_locks: dict[int, threading.Lock] = {}
_import_locks_guard = threading.Lock()


def after_install(runtime: Runtime, merchant_id: int) -> None:
    """What an install needs the Admin API for: the shop's details, the webhook
    subscriptions, and the import of past orders."""
    with admin_client(runtime, merchant_id) as client:
        info = fetch_shop(client)
        register_webhooks(client, app_url(runtime.settings, WEBHOOK_PATH))
    with unit_of_work(runtime.database) as session:
        merchant = get_merchant(session, merchant_id)
        merchant.name = info.name or merchant.name
        merchant.currency = info.currency or merchant.currency
        merchant.timezone = info.iana_timezone or merchant.timezone
        merchant.sync_checkpoint = merchant.sync_checkpoint or merchant.program_started_at
        name_default_rewards(session, merchant)
    start_history_import(runtime, merchant_id)


def start_history_import(runtime: Runtime, merchant_id: int) -> int:
    """Ask Shopify for every order placed before the install (one bulk operation) unless an
    import is already running; then take a first look at it."""
    with unit_of_work(runtime.database) as session:
        running = session.execute(
            select(ImportRun.id).where(ImportRun.merchant_id == merchant_id,
                                       ImportRun.state == "running")).scalar()
        merchant = get_merchant(session, merchant_id)
        created_before = merchant.program_started_at or utcnow()
        award = ensure_settings(session, merchant).award_past_orders
    if running is not None:
        return int(running)
    error = ""
    operation_id = ""
    try:
        with admin_client(runtime, merchant_id) as client:
            operation_id = start_bulk_orders(client, created_before)
    except (BulkOperationError, PayloadError) as refused:
        error = str(refused)[:1000]
    with unit_of_work(runtime.database) as session:
        run = ImportRun(merchant_id=merchant_id, operation_id=operation_id,
                        state="failed" if error else "running", error=error,
                        award_points=award, created_before=created_before,
                        finished_at=utcnow() if error else None)
        session.add(run)
        session.flush()
        import_id = run.id
    if not error:
        advance_import(runtime, import_id)
    return import_id


def _lock(import_id: int) -> threading.Lock:
    with _import_locks_guard:
        return _import_locks.setdefault(import_id, threading.Lock())


def advance_import(runtime: Runtime, import_id: int) -> str:
    """Look at the bulk operation; once Shopify has finished it, read its orders in chunks,
    recording progress as it goes so that a crash resumes where it stopped."""
    lock = _lock(import_id)
    if not lock.acquire(blocking=False):
        return "busy"
    try:
        with unit_of_work(runtime.database) as session:
            run = session.get(ImportRun, import_id)
            if run is None or run.state != "running":
                return run.state if run else "missing"
            merchant_id, operation_id = run.merchant_id, run.operation_id
        with admin_client(runtime, merchant_id) as client:
            status = bulk_operation_status(client, operation_id)
        if not status.finished:
            _update_run(runtime, import_id, total=status.object_count)
            return "running"
        if status.status != "COMPLETED":
            _update_run(runtime, import_id, state="failed",
                        error=f"Shopify's bulk operation ended {status.status}"
                              f" ({status.error_code or 'no error code'})")
            return "failed"
        if status.url:
            with http_client(shopify_config(runtime.settings)) as client, \
                    client.stream("GET", status.url) as response:
                response.raise_for_status()
                _import_orders(runtime, import_id, orders_from_bulk_jsonl(response.iter_lines()))
        _update_run(runtime, import_id, state="completed")
        return "completed"
    except (AdminError, NotConnected, BulkOperationError, PayloadError, httpx.HTTPError) as error:
        log.warning("import %s could not go on: %s", import_id, error)
        _update_run(runtime, import_id, error=str(error)[:1000])
        return "running"
    finally:
        lock.release()


def _update_run(runtime: Runtime, import_id: int, **values: Any) -> None:
    with unit_of_work(runtime.database) as session:
        run = session.get(ImportRun, import_id)
        if run is None:
            return
        for name, value in values.items():
            setattr(run, name, value)
        if values.get("state") in ("completed", "failed"):
            run.finished_at = utcnow()
            run.total = max(run.total, run.processed + run.failed)


def _chunks(items: Iterable[ParsedOrder], size: int) -> Iterator[list[ParsedOrder]]:
    chunk: list[ParsedOrder] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _import_orders(runtime: Runtime, import_id: int, parsed: Iterable[ParsedOrder]) -> None:
    with unit_of_work(runtime.database) as session:
        run = session.get(ImportRun, import_id)
        assert run is not None
        merchant_id, done = run.merchant_id, run.processed + run.failed
    for index, chunk in enumerate(_chunks(parsed, CHUNK)):
        start = index * CHUNK
        if start + len(chunk) <= done:
            continue  # imported before a restart
        chunk = chunk[max(done - start, 0):]
        with unit_of_work(runtime.database) as session:
            failed = 0
            for item in chunk:
                if not _sync(session, merchant_id, item):
                    failed += 1
            run = session.get(ImportRun, import_id)
            assert run is not None
            run.processed += len(chunk) - failed
            run.failed += failed
            run.total = max(run.total, run.processed + run.failed)


def _sync(session: Any, merchant_id: int, item: ParsedOrder) -> bool:
    if item.order is None:
        log.warning("import: order %s skipped: %s", item.order_id, item.error)
        return False
    try:
        with session.begin_nested():
            sync_order(session, merchant_id, item.order)
    except (LoyaltyError, RuleError) as error:
        log.warning("import: order %s skipped: %s", item.order_id, error)
        return False
    return True


@dataclass(frozen=True)
class ReconcileReport:
    merchant: str
    seen: int
    healed: int
    failed: int
    checkpoint: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def reconcile(runtime: Runtime, merchant_id: int, now: datetime | None = None) -> ReconcileReport:
    """Read every order Shopify changed since the checkpoint and sync it: a delivery Shopify
    gave up on (8 tries in 4 hours) is healed here. ``healed`` counts orders whose points
    changed."""
    started = now or utcnow()
    with unit_of_work(runtime.database) as session:
        merchant = get_merchant(session, merchant_id)
        shop = merchant.shop
        since = (merchant.sync_checkpoint or merchant.program_started_at
                 or started - timedelta(days=1))
    seen = healed = failed = 0
    cursor: str | None = None
    while True:
        with admin_client(runtime, merchant_id) as client:
            page = fetch_orders_page(client, since - RECONCILE_OVERLAP, cursor)
        with unit_of_work(runtime.database) as session:
            for item in page.orders:
                seen += 1
                if item.order is None:
                    failed += 1
                    continue
                try:
                    with session.begin_nested():
                        outcome = sync_order(session, merchant_id, item.order)
                except (LoyaltyError, RuleError):
                    failed += 1
                    continue
                healed += 1 if (outcome.awarded or outcome.reversed) else 0
        cursor = page.next_cursor
        if cursor is None:
            break
    checkpoint = since
    if not failed:
        # An order that could not be read keeps the checkpoint where it was, so the next run
        # looks at it again instead of skipping it for good.
        checkpoint = started
        with unit_of_work(runtime.database) as session:
            get_merchant(session, merchant_id).sync_checkpoint = started
    else:
        log.warning("reconcile %s: %s orders could not be read; checkpoint kept at %s",
                    shop, failed, since.isoformat())
    return ReconcileReport(shop, seen, healed, failed, checkpoint.isoformat())


def shopify_sweep(runtime: Runtime, now: datetime) -> None:
    """The minute sweep's Shopify part: move running imports on, and reconcile shops whose
    checkpoint is older than RECONCILE_EVERY."""
    with unit_of_work(runtime.database) as session:
        imports = list(session.execute(
            select(ImportRun.id).join(Merchant, Merchant.id == ImportRun.merchant_id)
            .where(ImportRun.state == "running", Merchant.status == "active")).scalars())
        due = list(session.execute(
            select(Merchant.id).where(Merchant.platform == "shopify",
                                      Merchant.status == "active",
                                      Merchant.credentials.is_not(None),
                                      Merchant.sync_checkpoint < now - RECONCILE_EVERY)
        ).scalars())
    for import_id in imports:
        runtime.jobs.enqueue("shopify_import", import_id)
    for merchant_id in due:
        runtime.jobs.enqueue("shopify_reconcile", merchant_id)


def run_reconcile(runtime: Runtime, merchant_id: int) -> dict[str, Any]:
    return reconcile(runtime, merchant_id).as_dict()


SHOPIFY_JOBS = {
    "shopify_after_install": after_install,
    "shopify_import": advance_import,
    "shopify_reconcile": run_reconcile,
}
