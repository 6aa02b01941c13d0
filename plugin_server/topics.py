"""Which code handles which (platform, topic) delivery from the inbox, and the handlers every
platform shares: an order delivery, a burst of them, a customer delivery."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlalchemy.orm import Session

from integrations.base import Customer, Order
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

# A platform's parser: raw body -> Order, or PayloadError naming the problem.
OrderParser = Callable[[bytes], Order]


def order_handler(parse: OrderParser) -> TopicHandler:
    def handle(session: Session, merchant_id: int, body: bytes) -> None:
        sync_order(session, merchant_id, parse(body))

    return handle


def orders_handler(parse: OrderParser) -> BatchTopicHandler:
    """Many order deliveries at once (the burst path); a body that does not parse fails alone."""

    def handle(session: Session, merchant_id: int, bodies: list[bytes]) -> list[str | None]:
        reasons: list[str | None] = [None] * len(bodies)
        orders: list[Order] = []
        positions: list[int] = []
        for index, body in enumerate(bodies):
            try:
                orders.append(parse(body))
                positions.append(index)
            except PayloadError as error:
                reasons[index] = f"PayloadError: {error}"
        for index, reason in zip(positions, sync_orders(session, merchant_id, orders),
                                 strict=True):
            reasons[index] = reason
        return reasons

    return handle


def customer_changed(session: Session, merchant_id: int, customer: Customer) -> None:
    if customer.customer_id is None and customer.email is None:
        raise PayloadError("customer has neither customer_id nor email")
    member = member_for_customer(session, merchant_id, customer, update_profile=True)
    if member is not None:
        # A claimed guest brings orders that may move the account to another tier.
        reevaluate_member_tier(session, load_program(session, merchant_id), member, utcnow(),
                               reason="account")


def canonical_customer(session: Session, merchant_id: int, body: bytes) -> None:
    customer_changed(session, merchant_id, parse_customer(decode_json(body)))


def _canonical_order(body: bytes) -> Order:
    return parse_order(decode_json(body))


def build_batch_handlers() -> dict[tuple[str, str], BatchTopicHandler]:
    from plugin_server.shopify.topics import build_shopify_batch_handlers
    from plugin_server.woocommerce.topics import build_woocommerce_batch_handlers

    # One handler object for every order topic: the inbox groups consecutive deliveries by it.
    burst = orders_handler(_canonical_order)
    handlers = {("demo", topic): burst for topic in ORDER_TOPICS}
    handlers.update(build_shopify_batch_handlers())
    handlers.update(build_woocommerce_batch_handlers())
    return handlers


def build_handlers() -> Mapping[tuple[str, str], TopicHandler]:
    from plugin_server.shopify.topics import build_shopify_handlers
    from plugin_server.woocommerce.topics import build_woocommerce_handlers

    handlers: dict[tuple[str, str], TopicHandler] = {}
    single = order_handler(_canonical_order)
    for topic in ORDER_TOPICS:
        handlers[("demo", topic)] = single
    for topic in CUSTOMER_TOPICS:
        handlers[("demo", topic)] = canonical_customer
    handlers.update(build_shopify_handlers())
    handlers.update(build_woocommerce_handlers())
    return handlers
