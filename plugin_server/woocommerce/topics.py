"""WooCommerce's webhook topics → the engine. Order topics carry the order as it is now and
go through ``sync_order`` (the burst path when many wait); a deleted order carries only its
id, so the copy we hold is cancelled; a new customer becomes (or updates) a member."""

from __future__ import annotations

import json
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from integrations import canonical
from integrations.base import Order
from integrations.errors import PayloadError
from integrations.woocommerce.payloads import parse_customer, parse_order
from plugin_server.loyalty.inbox import BatchTopicHandler, TopicHandler
from plugin_server.loyalty.orders import sync_order
from plugin_server.models import Order as OrderRow
from plugin_server.models import utcnow
from plugin_server.topics import customer_changed, order_handler, orders_handler

ORDER_TOPICS = ("order.created", "order.updated", "order.restored")


def _order(body: bytes) -> Order:
    return parse_order(canonical.decode_json(body))


def order_deleted(session: Session, merchant_id: int, body: bytes) -> None:
    data = canonical.decode_json(body)
    if not isinstance(data, dict) or data.get("id") is None:
        raise PayloadError("order.deleted: body has no order id")
    order_id = canonical.identifier(data["id"], "order.id")
    row = session.execute(select(OrderRow).where(
        OrderRow.merchant_id == merchant_id, OrderRow.platform_order_id == order_id)
    ).scalar_one_or_none()
    if row is None or row.snapshot == "{}":
        return  # never seen, nothing earned: nothing to take back
    known = canonical.parse_order(json.loads(row.snapshot))
    # Deleting (trashing) an order takes back whatever it earned, like a cancel.
    sync_order(session, merchant_id, replace(known, cancelled=True,
                                             updated_at=max(known.updated_at, utcnow())))


def customer_created(session: Session, merchant_id: int, body: bytes) -> None:
    customer_changed(session, merchant_id, parse_customer(canonical.decode_json(body)))


def build_woocommerce_handlers() -> dict[tuple[str, str], TopicHandler]:
    single = order_handler(_order)
    handlers: dict[tuple[str, str], TopicHandler] = {
        ("woocommerce", topic): single for topic in ORDER_TOPICS}
    handlers[("woocommerce", "order.deleted")] = order_deleted
    handlers[("woocommerce", "customer.created")] = customer_created
    return handlers


def build_woocommerce_batch_handlers() -> dict[tuple[str, str], BatchTopicHandler]:
    burst = orders_handler(_order)  # one object: the inbox groups deliveries by it
    return {("woocommerce", topic): burst for topic in ORDER_TOPICS}
