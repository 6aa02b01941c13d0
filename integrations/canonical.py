"""The platform-neutral JSON form of an order: what the demo platform sends, and how the engine
stores an order's latest snapshot. Parsing is strict: every problem names its field."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .base import Customer, LineItem, Order, Refund, RefundLine
from .currencies import is_known_currency
from .errors import PayloadError

MAX_QUANTITY = 100_000
MAX_AMOUNT = Decimal("1000000000")
MAX_LINES = 1_000
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _field(data: Mapping[str, Any], name: str, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise PayloadError(f"{where} must be a JSON object")
    if name not in data or data[name] is None:
        raise PayloadError(f"{where}.{name} is missing")
    return data[name]


def money(value: Any, where: str, *, allow_negative: bool = False) -> Decimal:
    """A money amount from a JSON string or number; never through float arithmetic."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise PayloadError(f"{where} must be a number, got {value!r}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation as error:
        raise PayloadError(f"{where} must be a number, got {value!r}") from error
    if not amount.is_finite():
        raise PayloadError(f"{where} must be a finite number, got {value!r}")
    if amount < 0 and not allow_negative:
        raise PayloadError(f"{where} must not be negative, got {value!r}")
    if abs(amount) > MAX_AMOUNT:
        raise PayloadError(f"{where} is beyond the limit of {MAX_AMOUNT}, got {value!r}")
    return amount.quantize(Decimal("0.0001"))


def quantity(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError(f"{where} must be a whole number, got {value!r}")
    if value < 0 or value > MAX_QUANTITY:
        raise PayloadError(f"{where} must be between 0 and {MAX_QUANTITY}, got {value!r}")
    return value


def flag(value: Any, where: str) -> bool:
    """A JSON boolean; missing or null is false. "false" (a string) is refused, not truthy."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise PayloadError(f"{where} must be true or false, got {value!r}")
    return value


def string_list(value: Any, where: str, limit: int = 64) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise PayloadError(f"{where} must be a list of strings")
    return tuple(item[:limit] for item in value)


def timestamp(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise PayloadError(f"{where} must be an ISO 8601 timestamp, got {value!r}")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise PayloadError(f"{where} must be an ISO 8601 timestamp, got {value!r}") from error
    if moment.tzinfo is None:
        raise PayloadError(f"{where} must include a UTC offset, got {value!r}")
    try:
        in_utc = moment.astimezone(UTC)  # the offset is kept; this only proves it converts
    except OverflowError as error:
        raise PayloadError(f"{where} is out of range, got {value!r}") from error
    if not EARLIEST <= in_utc <= LATEST:
        raise PayloadError(f"{where} must be between {EARLIEST.year} and {LATEST.year}, "
                           f"got {value!r}")
    return moment


def currency(value: Any, where: str) -> str:
    if not isinstance(value, str) or not is_known_currency(value.upper()):
        raise PayloadError(f"{where} is not a known ISO 4217 currency code, got {value!r}")
    return value.upper()


def identifier(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) == "":
        raise PayloadError(f"{where} must be a non-empty id, got {value!r}")
    text = str(value)
    if len(text) > 64:
        raise PayloadError(f"{where} is longer than 64 characters")
    return text


def optional_text(value: Any, where: str, limit: int = 320) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise PayloadError(f"{where} must be text of at most {limit} characters")
    return value


def decode_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as error:  # bad UTF-8 or JSON, absurd nesting or digits
        raise PayloadError(f"body is not valid JSON: {type(error).__name__}: "
                           f"{str(error)[:200]}") from error


def parse_customer(data: Any, where: str = "customer") -> Customer:
    if data is None:
        return Customer(customer_id=None, email=None)
    if not isinstance(data, Mapping):
        raise PayloadError(f"{where} must be a JSON object")
    raw_id = data.get("customer_id")
    return Customer(
        customer_id=None if raw_id in (None, "", 0, "0") else identifier(raw_id,
                                                                         f"{where}.customer_id"),
        email=optional_text(data.get("email"), f"{where}.email"),
        first_name=optional_text(data.get("first_name"), f"{where}.first_name", 120),
        last_name=optional_text(data.get("last_name"), f"{where}.last_name", 120),
        email_is_account=flag(data.get("email_is_account", True), f"{where}.email_is_account"),
    )


def _parse_line(data: Any, where: str) -> LineItem:
    collections = data.get("collection_ids", []) if isinstance(data, Mapping) else []
    if not isinstance(collections, list):
        raise PayloadError(f"{where}.collection_ids must be a list")
    line = LineItem(
        line_id=identifier(_field(data, "line_id", where), f"{where}.line_id"),
        quantity=quantity(_field(data, "quantity", where), f"{where}.quantity"),
        unit_price=money(_field(data, "unit_price", where), f"{where}.unit_price"),
        total_discount=money(data.get("total_discount", "0"), f"{where}.total_discount"),
        included_tax=money(data.get("included_tax", "0"), f"{where}.included_tax"),
        product_id=None if data.get("product_id") is None else identifier(
            data["product_id"], f"{where}.product_id"),
        collection_ids=tuple(identifier(c, f"{where}.collection_ids[]") for c in collections),
        title=(optional_text(data.get("title"), f"{where}.title", 255) or ""),
        is_gift_card=flag(data.get("is_gift_card"), f"{where}.is_gift_card"),
    )
    if line.net_amount < 0:
        # Name the discount when it alone overshoots, so the message points at the real culprit.
        culprit = ("total_discount is" if line.net_amount + line.included_tax < 0
                   else "included_tax (with total_discount) is")
        raise PayloadError(f"{where}.{culprit} larger than the line's price")
    return line


def _parse_refund(data: Any, order_id: str, where: str) -> Refund:
    lines = data.get("lines", []) if isinstance(data, Mapping) else []
    if not isinstance(lines, list):
        raise PayloadError(f"{where}.lines must be a list")
    return Refund(
        refund_id=identifier(_field(data, "refund_id", where), f"{where}.refund_id"),
        order_id=order_id,
        created_at=timestamp(_field(data, "created_at", where), f"{where}.created_at"),
        lines=tuple(
            RefundLine(identifier(_field(line, "line_id", f"{where}.lines[{i}]"),
                                  f"{where}.lines[{i}].line_id"),
                       quantity(_field(line, "quantity", f"{where}.lines[{i}]"),
                                f"{where}.lines[{i}].quantity"),
                       money(_field(line, "subtotal", f"{where}.lines[{i}]"),
                             f"{where}.lines[{i}].subtotal"))
            for i, line in enumerate(lines)
        ),
        amount=money(data.get("amount", "0"), f"{where}.amount"),
        shipping=money(data.get("shipping", "0"), f"{where}.shipping"),
    )


def parse_order(data: Any) -> Order:
    """An ``Order`` from its canonical JSON form, or ``PayloadError`` naming the problem."""
    if not isinstance(data, Mapping):
        raise PayloadError("order must be a JSON object")
    order_id = identifier(_field(data, "order_id", "order"), "order.order_id")
    raw_lines = _field(data, "line_items", "order")
    if not isinstance(raw_lines, list) or len(raw_lines) > MAX_LINES:
        raise PayloadError(f"order.line_items must be a list of at most {MAX_LINES} lines")
    raw_refunds = data.get("refunds", [])
    if not isinstance(raw_refunds, list):
        raise PayloadError("order.refunds must be a list")
    order = Order(
        order_id=order_id,
        name=optional_text(data.get("name"), "order.name", 64) or "",
        created_at=timestamp(_field(data, "created_at", "order"), "order.created_at"),
        updated_at=timestamp(_field(data, "updated_at", "order"), "order.updated_at"),
        currency=currency(_field(data, "currency", "order"), "order.currency"),
        customer=parse_customer(data.get("customer")),
        line_items=tuple(_parse_line(line, f"order.line_items[{i}]")
                         for i, line in enumerate(raw_lines)),
        shipping=money(data.get("shipping", "0"), "order.shipping"),
        taxes=money(data.get("taxes", "0"), "order.taxes"),
        tips=money(data.get("tips", "0"), "order.tips"),
        total=money(_field(data, "total", "order"), "order.total"),
        paid=flag(data.get("paid"), "order.paid"),
        fulfilled=flag(data.get("fulfilled"), "order.fulfilled"),
        cancelled=flag(data.get("cancelled"), "order.cancelled"),
        test=flag(data.get("test"), "order.test"),
        discount_codes=string_list(data.get("discount_codes"), "order.discount_codes"),
        refunds=tuple(_parse_refund(refund, order_id, f"order.refunds[{i}]")
                      for i, refund in enumerate(raw_refunds)),
        reopenable=flag(data.get("reopenable"), "order.reopenable"),
    )
    if order.lines_subtotal > MAX_AMOUNT:
        raise PayloadError(f"order.line_items add up to {order.lines_subtotal}, beyond the limit "
                           f"of {MAX_AMOUNT}")
    return order


def order_to_dict(order: Order) -> dict[str, Any]:
    customer = order.customer
    return {
        "order_id": order.order_id,
        "name": order.name,
        "created_at": order.created_at.isoformat(),
        "updated_at": order.updated_at.isoformat(),
        "currency": order.currency,
        "customer": {"customer_id": customer.customer_id, "email": customer.email,
                     "first_name": customer.first_name, "last_name": customer.last_name,
                     "email_is_account": customer.email_is_account},
        "line_items": [
            {"line_id": line.line_id, "quantity": line.quantity,
             "unit_price": str(line.unit_price), "total_discount": str(line.total_discount),
             "included_tax": str(line.included_tax),
             "product_id": line.product_id, "collection_ids": list(line.collection_ids),
             "title": line.title, "is_gift_card": line.is_gift_card}
            for line in order.line_items
        ],
        "shipping": str(order.shipping),
        "taxes": str(order.taxes),
        "tips": str(order.tips),
        "total": str(order.total),
        "paid": order.paid,
        "fulfilled": order.fulfilled,
        "cancelled": order.cancelled,
        "reopenable": order.reopenable,
        "test": order.test,
        "discount_codes": list(order.discount_codes),
        "refunds": [
            {"refund_id": refund.refund_id, "created_at": refund.created_at.isoformat(),
             "amount": str(refund.amount), "shipping": str(refund.shipping),
             "lines": [{"line_id": line.line_id, "quantity": line.quantity,
                        "subtotal": str(line.subtotal)} for line in refund.lines]}
            for refund in order.refunds
        ],
    }
