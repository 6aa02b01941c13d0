"""Orders read from the store rather than taken from a webhook body: refunds with their lines
(the order lists only each refund's total, shipping and tax included), and deletions (the
body is just the id, and only the body is signed, so a replayed deletion must not cancel an
order restored since)."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from integrations import canonical
from integrations.base import Order
from integrations.errors import PayloadError
from integrations.woocommerce.client import WooClient, WooError
from integrations.woocommerce.payloads import parse_order, parse_refund
from plugin_server.db import unit_of_work
from plugin_server.loyalty.errors import LoyaltyError
from plugin_server.loyalty.orders import sync_order
from plugin_server.loyalty.rules import RuleError
from plugin_server.models import Order as OrderRow
from plugin_server.models import utcnow

from .store_client import NotConnected, woo_client

if TYPE_CHECKING:
    from plugin_server.runtime import Runtime

log = logging.getLogger(__name__)
# Only WooCommerce's own answer for an id it has no order for means "deleted for good": a 404
# from a proxy, a missing route or a plugin that moved the API says nothing about the order.
ORDER_GONE = (404, "woocommerce_rest_shop_order_invalid_id")


def order_from_store(client: WooClient, data: Any) -> Order:
    """The order a REST document describes, with its refunds' details fetched when it has
    any. PayloadError when the document cannot be read (unknown status, missing totals)."""
    order = parse_order(data)
    if not order.refunds:
        return order
    details = tuple(parse_refund(item, order.order_id) for item in client.refunds(order.order_id))
    return replace(order, refunds=details)


def cancel_deleted(session: Session, merchant_id: int, order_id: str) -> str:
    """The store no longer has the order at all (deleted for good): take back what it earned."""
    row = session.execute(select(OrderRow).where(
        OrderRow.merchant_id == merchant_id, OrderRow.platform_order_id == order_id)
    ).scalar_one_or_none()
    if row is None or row.snapshot == "{}":
        return "unknown order, nothing to take back"
    known = canonical.parse_order(json.loads(row.snapshot))
    outcome = sync_order(session, merchant_id, replace(
        known, cancelled=True, updated_at=max(known.updated_at, utcnow())))
    return f"deleted in the store: {outcome.reversed} points taken back"


def refresh_order(runtime: Runtime, merchant_id: int, order_id: str) -> str:
    """Job: read one order as the store has it now and bring the ledger in line. Safe to run
    any number of times; the answer says what happened."""
    try:
        order_id = canonical.identifier(order_id, "order_id")
        with woo_client(runtime, merchant_id) as client:
            try:
                data: Any = client.order(order_id)
            except WooError as error:
                if (error.status, error.code) != ORDER_GONE:
                    raise
                data = None
            order = None if data is None else order_from_store(client, data)
    except NotConnected as error:
        return f"skipped: {error}"
    except PayloadError as error:
        log.warning("woocommerce order %s of merchant %s cannot be read: %s", order_id,
                    merchant_id, error)
        return f"failed: {error}"
    try:
        with unit_of_work(runtime.database) as session:
            if order is None:
                return cancel_deleted(session, merchant_id, order_id)
            outcome = sync_order(session, merchant_id, order)
    except (LoyaltyError, RuleError) as error:
        log.warning("woocommerce order %s of merchant %s failed: %s", order_id, merchant_id,
                    error)
        return f"failed: {error}"
    return f"synced: {outcome.awarded} awarded, {outcome.reversed} taken back"
