"""Which code handles which (platform, topic) delivery from the inbox."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.orm import Session

from integrations.base import Order
from integrations.canonical import decode_json, parse_customer, parse_order
from integrations.errors import PayloadError
from plugin_server.loyalty.bulk_orders import sync_orders
from plugin_server.loyalty.inbox import BatchTopicHandler, TopicHandler
from plugin_server.loyalty.members import member_for_customer
from plugin_server.loyalty.orders import sync_order
from plugin_server.loyalty.program import load_program
from plugin_server.loyalty.tiers import reevaluate_member_tier
from plugin_server.models import utcnow

ORDER_TOPICS = ("orders/create", "orders/paid", "orders/updated", "orders/cancelled",
                "orders/fulfilled", "refunds/create")
CUSTOMER_TOPICS = ("customers/create", "customers/update")


def canonical_order(session: Session, merchant_id: int, body: bytes) -> None:
    sync_order(session, merchant_id, parse_order(decode_json(body)))


def canonical_orders(session: Session, merchant_id: int, bodies: list[bytes]) -> list[str | None]:
    """Many order deliveries at once (the burst path); a body that does not parse fails alone."""
    reasons: list[str | None] = [None] * len(bodies)
    orders: list[Order] = []
    positions: list[int] = []
    for index, body in enumerate(bodies):
        try:
            orders.append(parse_order(decode_json(body)))
            positions.append(index)
        except PayloadError as error:
            reasons[index] = f"PayloadError: {error}"
    for index, reason in zip(positions, sync_orders(session, merchant_id, orders), strict=True):
        reasons[index] = reason
    return reasons


def canonical_customer(session: Session, merchant_id: int, body: bytes) -> None:
    customer = parse_customer(decode_json(body))
    if customer.customer_id is None and customer.email is None:
        raise PayloadError("customer has neither customer_id nor email")
    member = member_for_customer(session, merchant_id, customer, update_profile=True)
    if member is not None:
        # A claimed guest brings orders that may move the account to another tier.
        reevaluate_member_tier(session, load_program(session, merchant_id), member, utcnow(),
                               reason="account")


def build_batch_handlers() -> Mapping[tuple[str, str], BatchTopicHandler]:
    return {("demo", topic): canonical_orders for topic in ORDER_TOPICS}


def build_handlers() -> Mapping[tuple[str, str], TopicHandler]:
    handlers: dict[tuple[str, str], TopicHandler] = {}
    for topic in ORDER_TOPICS:
        handlers[("demo", topic)] = canonical_order
    for topic in CUSTOMER_TOPICS:
        handlers[("demo", topic)] = canonical_customer
    return handlers
