"""WooCommerce REST JSON (``/wp-json/wc/v3`` orders, refunds, customers; webhook bodies are the
same documents) into ``integrations.base``.

WooCommerce facts this relies on: money fields are strings; ``customer_id`` is 0 for guests,
who are known by their billing email; ``*_gmt`` dates are naive GMT strings; a line item's
``subtotal`` and ``total`` exclude tax whatever ``prices_include_tax`` says (the tax is in
``subtotal_tax``/``total_tax``), and its ``price`` is ``total / quantity``, i.e. after
discounts. Parsing is as strict as ``integrations.canonical``: each problem raises
``PayloadError`` naming the field; unknown fields are ignored.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal
from types import MappingProxyType
from typing import Any, NamedTuple

from .. import canonical
from ..base import Customer, LineItem, Order, Refund, RefundLine
from ..errors import PayloadError

ZERO = Decimal("0.0000")  # the exponent canonical.money gives every amount
_CENT_FRACTION = Decimal("0.0001")


class OrderState(NamedTuple):
    """What an order status means for the engine."""

    paid: bool
    fulfilled: bool
    cancelled: bool


ORDER_STATUSES: Mapping[str, OrderState] = MappingProxyType({
    "pending": OrderState(paid=False, fulfilled=False, cancelled=False),
    "on-hold": OrderState(paid=False, fulfilled=False, cancelled=False),
    "checkout-draft": OrderState(paid=False, fulfilled=False, cancelled=False),
    "processing": OrderState(paid=True, fulfilled=False, cancelled=False),
    "completed": OrderState(paid=True, fulfilled=True, cancelled=False),
    "cancelled": OrderState(paid=False, fulfilled=False, cancelled=True),
    "failed": OrderState(paid=False, fulfilled=False, cancelled=True),
    # A refunded order was paid, and everything in it is given back: the cancel reverses
    # whatever the refunds listed on it did not.
    "refunded": OrderState(paid=True, fulfilled=False, cancelled=True),
    "trash": OrderState(paid=False, fulfilled=False, cancelled=True),
})


# ---- helpers ---------------------------------------------------------------------------------

def _object(data: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise PayloadError(f"{where} must be a JSON object")
    return data


def _required(data: Mapping[str, Any], name: str, where: str) -> Any:
    if data.get(name) is None:
        raise PayloadError(f"{where}.{name} is missing")
    return data[name]


def _list(data: Mapping[str, Any], name: str, where: str, *,
          limit: int = canonical.MAX_LINES) -> list[Any]:
    value = data.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > limit:
        raise PayloadError(f"{where}.{name} must be a list of at most {limit} entries")
    return value


def _text(value: Any, where: str, limit: int) -> str | None:
    """Display text, cut rather than refused: a long name must not cost the shopper points."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{where} must be text, got {value!r}")
    return value[:limit]


def _optional_id(value: Any, where: str) -> str | None:
    """WooCommerce writes 0 for "none" (no variation, deleted product, guest)."""
    if value in (None, "", 0, "0"):
        return None
    return canonical.identifier(value, where)


def _magnitude(value: Any, where: str) -> Decimal:
    """A refund figure WooCommerce writes negative ("-10.00"), as a positive amount."""
    return abs(canonical.money(value, where, allow_negative=True))


def _gmt(value: Any, where: str) -> datetime:
    """A ``*_gmt`` date: naive means GMT; an explicit offset is honoured."""
    if not isinstance(value, str):
        raise PayloadError(f"{where} must be an ISO 8601 date, got {value!r}")
    try:
        naive = datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is None
    except ValueError as error:
        raise PayloadError(f"{where} must be an ISO 8601 date, got {value!r}") from error
    return canonical.timestamp(value + "+00:00" if naive else value, where).astimezone(UTC)


def _total(amounts: list[Decimal], where: str) -> Decimal:
    total = sum(amounts, ZERO)
    if total > canonical.MAX_AMOUNT:
        raise PayloadError(f"{where} add up to {total}, beyond the limit of {canonical.MAX_AMOUNT}")
    return total


# ---- orders ----------------------------------------------------------------------------------

def _status(order: Mapping[str, Any]) -> OrderState:
    status = _required(order, "status", "order")
    state = ORDER_STATUSES.get(status) if isinstance(status, str) else None
    if state is None:
        shown = status[:40] if isinstance(status, str) else status
        raise PayloadError(f"order.status: unknown status {shown!r}")
    return state


def _line(data: Any, where: str, prices_include_tax: bool) -> LineItem:
    line = _object(data, where)
    quantity = canonical.quantity(_required(line, "quantity", where), f"{where}.quantity")
    subtotal = canonical.money(_required(line, "subtotal", where), f"{where}.subtotal")
    total = canonical.money(_required(line, "total", where), f"{where}.total")
    included_tax = ZERO
    if prices_include_tax:
        # The shopper saw prices with tax in them; keep that price and say how much of it is
        # tax, so the line's net amount is still WooCommerce's ex-tax total.
        subtotal += canonical.money(line.get("subtotal_tax", "0"), f"{where}.subtotal_tax")
        included_tax = canonical.money(line.get("total_tax", "0"), f"{where}.total_tax")
    paid = total + included_tax
    if quantity == 0:
        # Nothing was bought on this line; nothing can earn on it.
        unit_price, discount, included_tax = ZERO, ZERO, ZERO
    else:
        # ``price`` is after discounts and a float; the exact unit price is subtotal/quantity,
        # rounded up so that the discount (what makes up the difference to the line's total)
        # is never negative and the net amount is exactly the line's total.
        before = max(subtotal, paid)
        unit_price = (before / quantity).quantize(_CENT_FRACTION, rounding=ROUND_CEILING)
        discount = unit_price * quantity - paid
    return LineItem(
        line_id=canonical.identifier(_required(line, "id", where), f"{where}.id"),
        quantity=quantity,
        unit_price=unit_price,
        total_discount=discount,
        included_tax=included_tax,
        product_id=_optional_id(line.get("product_id"), f"{where}.product_id"),
        variant_id=_optional_id(line.get("variation_id"), f"{where}.variation_id"),
        # Names come HTML-escaped ("Ship Your Idea &ndash; Black"); the widget shows text.
        title=html.unescape(_text(line.get("name"), f"{where}.name", 255) or "")[:255],
    )


def _order_customer(order: Mapping[str, Any]) -> Customer:
    raw_billing = order.get("billing")
    billing = {} if raw_billing is None else _object(raw_billing, "order.billing")
    customer_id = _optional_id(order.get("customer_id"), "order.customer_id")
    return Customer(
        customer_id=customer_id,
        # Guests earn against this email; for members it is the email of this purchase,
        # typed at checkout, which must not claim a guest's points.
        email=canonical.optional_text(billing.get("email"), "order.billing.email"),
        email_is_account=customer_id is None,
        first_name=_text(billing.get("first_name"), "order.billing.first_name", 120),
        last_name=_text(billing.get("last_name"), "order.billing.last_name", 120),
    )


def _coupon_codes(order: Mapping[str, Any]) -> tuple[str, ...]:
    codes = []
    for i, entry in enumerate(_list(order, "coupon_lines", "order")):
        where = f"order.coupon_lines[{i}]"
        codes.append(_required(_object(entry, where), "code", where))
    return canonical.string_list(codes, "order.coupon_lines[].code")


def order_modified_at(data: Any) -> datetime:
    """When the order last changed (``date_modified_gmt``, UTC): newer wins, older is stale.
    An order never modified has no modification date; its creation date stands in."""
    order = _object(data, "order")
    if order.get("date_modified_gmt") is None:
        return _gmt(_required(order, "date_created_gmt", "order"), "order.date_created_gmt")
    return _gmt(order["date_modified_gmt"], "order.date_modified_gmt")


def parse_order(data: Any) -> Order:
    """An ``Order`` from a REST order or an ``order.*`` webhook body."""
    order = _object(data, "order")
    order_id = canonical.identifier(_required(order, "id", "order"), "order.id")
    state = _status(order)
    created_at = _gmt(_required(order, "date_created_gmt", "order"), "order.date_created_gmt")
    updated_at = order_modified_at(order)
    prices_include_tax = canonical.flag(order.get("prices_include_tax"),
                                        "order.prices_include_tax")
    raw_lines = _list(order, "line_items", "order")
    number = order.get("number")
    number = order_id if number in (None, "") else _text(number, "order.number", 63)
    refunds = []
    for i, entry in enumerate(_list(order, "refunds", "order")):
        where = f"order.refunds[{i}]"
        refund = _object(entry, where)
        refunds.append(Refund(
            refund_id=canonical.identifier(_required(refund, "id", where), f"{where}.id"),
            order_id=order_id,
            # The summary has no date; the order's last change is the closest known moment.
            created_at=updated_at,
            amount=_magnitude(_required(refund, "total", where), f"{where}.total"),
        ))
    parsed = Order(
        order_id=order_id,
        name=f"#{number}",
        created_at=created_at,
        updated_at=updated_at,
        currency=canonical.currency(_required(order, "currency", "order"), "order.currency"),
        customer=_order_customer(order),
        line_items=tuple(_line(line, f"order.line_items[{i}]", prices_include_tax)
                         for i, line in enumerate(raw_lines)),
        shipping=canonical.money(order.get("shipping_total", "0"), "order.shipping_total"),
        taxes=canonical.money(order.get("total_tax", "0"), "order.total_tax"),
        total=canonical.money(_required(order, "total", "order"), "order.total"),
        paid=state.paid,
        fulfilled=state.fulfilled,
        cancelled=state.cancelled,
        discount_codes=_coupon_codes(order),
        refunds=tuple(refunds),
        # Statuses move back and forth (failed → processing, trash → restored).
        reopenable=True,
    )
    if parsed.lines_subtotal > canonical.MAX_AMOUNT:
        raise PayloadError(f"order.line_items add up to {parsed.lines_subtotal}, beyond the "
                           f"limit of {canonical.MAX_AMOUNT}")
    return parsed


# ---- refunds and customers -------------------------------------------------------------------

def _refunded_item_id(line: Mapping[str, Any], where: str) -> str | None:
    """The order line a refund line gives back: its ``_refunded_item_id`` meta, when the
    store shows it (the refund line's own ``id`` is a different item)."""
    for i, meta in enumerate(_list(line, "meta_data", where)):
        at = f"{where}.meta_data[{i}]"
        if _object(meta, at).get("key") == "_refunded_item_id":
            return _optional_id(meta.get("value"), f"{at}.value")
    return None


def parse_refund(data: Any, order_id: str) -> Refund:
    """A ``Refund`` from an entry of ``GET /orders/{order_id}/refunds``.

    Line quantities and amounts arrive negative and are made positive. Lines are kept only
    when every one names the order line it refunds; otherwise the refund counts by amount
    alone, because a line the engine cannot match would take back nothing."""
    refund = _object(data, "refund")
    lines: list[RefundLine] = []
    matched = True
    for i, entry in enumerate(_list(refund, "line_items", "refund")):
        where = f"refund.line_items[{i}]"
        line = _object(entry, where)
        raw_quantity = _required(line, "quantity", where)
        if isinstance(raw_quantity, bool) or not isinstance(raw_quantity, int):
            raise PayloadError(f"{where}.quantity must be a whole number, got {raw_quantity!r}")
        item_id = _refunded_item_id(line, where)
        matched = matched and item_id is not None
        lines.append(RefundLine(
            line_id=item_id or canonical.identifier(_required(line, "id", where), f"{where}.id"),
            quantity=canonical.quantity(abs(raw_quantity), f"{where}.quantity"),
            subtotal=_magnitude(_required(line, "subtotal", where), f"{where}.subtotal"),
        ))
    shipping = [_magnitude(_required(_object(entry, f"refund.shipping_lines[{i}]"), "total",
                                     f"refund.shipping_lines[{i}]"),
                           f"refund.shipping_lines[{i}].total")
                for i, entry in enumerate(_list(refund, "shipping_lines", "refund"))]
    return Refund(
        refund_id=canonical.identifier(_required(refund, "id", "refund"), "refund.id"),
        order_id=canonical.identifier(order_id, "refund order_id"),
        created_at=_gmt(_required(refund, "date_created_gmt", "refund"),
                        "refund.date_created_gmt"),
        lines=tuple(lines) if matched else (),
        amount=_magnitude(_required(refund, "amount", "refund"), "refund.amount"),
        shipping=_total(shipping, "refund.shipping_lines"),
    )


def parse_customer(data: Any) -> Customer:
    """A ``Customer`` from a ``customer.created`` body or ``GET /customers/{id}``."""
    customer = _object(data, "customer")
    if "line_items" in customer or "order_key" in customer:
        # Only the body is signed, not the topic header: a captured order must not be
        # replayed as a "new customer" that rewrites a member's email.
        raise PayloadError("customer: the body is an order, not a customer")
    raw_billing = customer.get("billing")
    billing = {} if raw_billing is None else _object(raw_billing, "customer.billing")
    email = (canonical.optional_text(customer.get("email"), "customer.email")
             or canonical.optional_text(billing.get("email"), "customer.billing.email"))
    customer_id = _optional_id(_required(customer, "id", "customer"), "customer.id")
    if customer_id is None:
        raise PayloadError("customer.id must be a registered customer's id, got 0")
    return Customer(
        customer_id=customer_id,
        email=email,
        first_name=_text(customer.get("first_name") or billing.get("first_name"),
                         "customer.first_name", 120),
        last_name=_text(customer.get("last_name") or billing.get("last_name"),
                        "customer.last_name", 120),
    )
