"""WooCommerce's webhook topics → the engine. Order topics carry the order as it is now and
go through ``sync_order`` (the burst path when many wait). Two things a body cannot be trusted
with are read from the store instead (``refresh_order``, enqueued by the webhook route): a
refund's details (the order lists only refund totals, shipping and tax included) and a
deletion (its body is just the id, and only the body is signed). A new customer becomes (or
updates) a member."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.orm import Session

from integrations import canonical
from integrations.base import Order
from integrations.errors import PayloadError
from integrations.woocommerce.payloads import parse_customer, parse_order
from plugin_server.loyalty.inbox import BatchTopicHandler, TopicHandler
from plugin_server.topics import customer_changed, order_handler, orders_handler

ORDER_TOPICS = ("order.created", "order.updated", "order.restored")


def _order(body: bytes) -> Order:
    # Refunds come with their lines from refresh_order; a total alone would take points back
    # for refunded shipping.
    return replace(parse_order(canonical.decode_json(body)), refunds=())


def order_deleted(session: Session, merchant_id: int, body: bytes) -> None:
    """Checked only: the order is read from the store by ``refresh_order`` (a replayed
    deletion must not cancel an order that was restored since)."""
    data = canonical.decode_json(body)
    if not isinstance(data, dict) or data.get("id") is None:
        raise PayloadError("order.deleted: body has no order id")
    canonical.identifier(data["id"], "order.id")


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
