"""What each Shopify webhook topic does once its delivery is taken from the inbox."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from integrations.base import Order
from integrations.canonical import decode_json, identifier, optional_text
from integrations.errors import PayloadError
from integrations.shopify.payloads import parse_customer, parse_order, parse_refund
from plugin_server.loyalty.inbox import BatchTopicHandler, TopicHandler, WithHeaders
from plugin_server.loyalty.orders import sync_refund
from plugin_server.loyalty.privacy import erase_shop, record_data_request, redact_customer
from plugin_server.loyalty.program import get_merchant
from plugin_server.topics import customer_changed, order_handler, orders_handler

from .install import mark_uninstalled, predates_install

log = logging.getLogger(__name__)
ORDER_TOPICS = ("orders/create", "orders/paid", "orders/updated", "orders/cancelled",
                "orders/fulfilled")


def _object(body: bytes) -> Mapping[str, Any]:
    data = decode_json(body)
    if not isinstance(data, Mapping):
        raise PayloadError("body must be a JSON object")
    return data


def _order(body: bytes) -> Order:
    return parse_order(_object(body))


def refund(session: Session, merchant_id: int, body: bytes) -> None:
    currency = get_merchant(session, merchant_id).currency
    sync_refund(session, merchant_id, parse_refund(_object(body)), currency)


def customer(session: Session, merchant_id: int, body: bytes) -> None:
    customer_changed(session, merchant_id, parse_customer(_object(body)))


def _triggered_at(headers: Mapping[str, str]) -> datetime | None:
    value = headers.get("X-Shopify-Triggered-At", "")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def app_uninstalled(session: Session, merchant_id: int, _body: bytes,
                    headers: Mapping[str, str]) -> None:
    merchant = get_merchant(session, merchant_id)
    if predates_install(merchant, _triggered_at(headers)):
        log.info("%s: an uninstall from before the latest install is ignored", merchant.shop)
        return
    mark_uninstalled(session, merchant)


def shop_update(session: Session, merchant_id: int, body: bytes) -> None:
    data = _object(body)
    merchant = get_merchant(session, merchant_id)
    name = optional_text(data.get("name"), "shop.name", 255)
    currency = optional_text(data.get("currency"), "shop.currency", 3)
    timezone = optional_text(data.get("iana_timezone"), "shop.iana_timezone", 64)
    merchant.name = name or merchant.name
    merchant.currency = (currency or merchant.currency).upper()
    merchant.timezone = timezone or merchant.timezone


def _privacy_subject(data: Mapping[str, Any]) -> tuple[str | None, str | None, list[str]]:
    person = data.get("customer")
    if not isinstance(person, Mapping):
        raise PayloadError("customer must be a JSON object")
    raw_id = person.get("id")
    customer_id = None if raw_id in (None, "", 0) else identifier(raw_id, "customer.id")
    email = optional_text(person.get("email"), "customer.email")
    if customer_id is None and email is None:
        raise PayloadError("customer has neither id nor email")
    orders_key = "orders_requested" if "orders_requested" in data else "orders_to_redact"
    raw_orders = data.get(orders_key) or []
    if not isinstance(raw_orders, list):
        raise PayloadError(f"{orders_key} must be a list")
    order_ids = [identifier(value, f"{orders_key}[]") for value in raw_orders]
    return customer_id, email, order_ids


def _same_shop(shop: str, data: Mapping[str, Any]) -> None:
    """Privacy bodies name their shop: it must be the one the delivery was filed under."""
    named = data.get("shop_domain")
    if named is not None and named != shop:
        raise PayloadError(f"shop_domain {str(named)[:100]!r} is not this delivery's shop")


def customers_data_request(session: Session, merchant_id: int, body: bytes) -> None:
    data = _object(body)
    _same_shop(get_merchant(session, merchant_id).shop, data)
    customer_id, email, order_ids = _privacy_subject(data)
    request = data.get("data_request")
    request_id = ""
    if isinstance(request, Mapping) and request.get("id") is not None:
        request_id = identifier(request["id"], "data_request.id")
    record_data_request(session, merchant_id, request_id, customer_id, email, order_ids)


def customers_redact(session: Session, merchant_id: int, body: bytes) -> None:
    data = _object(body)
    _same_shop(get_merchant(session, merchant_id).shop, data)
    customer_id, email, order_ids = _privacy_subject(data)
    redact_customer(session, merchant_id, customer_id, email, order_ids)


def shop_redact(session: Session, merchant_id: int, body: bytes,
                headers: Mapping[str, str]) -> None:
    merchant = get_merchant(session, merchant_id)
    _same_shop(merchant.shop, _object(body))
    if merchant.status == "active" or predates_install(merchant, _triggered_at(headers)):
        # Shopify sends this 48 hours after an uninstall; a shop that came back meanwhile
        # keeps its program.
        raise PayloadError("shop/redact for a shop that has reinstalled the app; kept")
    erase_shop(session, merchant)


def build_shopify_handlers() -> dict[tuple[str, str], TopicHandler]:
    handlers: dict[tuple[str, str], TopicHandler] = {
        ("shopify", "refunds/create"): refund,
        ("shopify", "customers/create"): customer,
        ("shopify", "customers/update"): customer,
        ("shopify", "app/uninstalled"): WithHeaders(app_uninstalled),
        ("shopify", "shop/update"): shop_update,
        ("shopify", "customers/data_request"): customers_data_request,
        ("shopify", "customers/redact"): customers_redact,
        ("shopify", "shop/redact"): WithHeaders(shop_redact),
    }
    single = order_handler(_order)
    handlers.update({("shopify", topic): single for topic in ORDER_TOPICS})
    return handlers


def build_shopify_batch_handlers() -> dict[tuple[str, str], BatchTopicHandler]:
    burst = orders_handler(_order)  # one object: the inbox groups deliveries by it
    return {("shopify", topic): burst for topic in ORDER_TOPICS}
