"""Small builders for orders and refunds in the platform-neutral dataclasses."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from integrations.base import Customer, LineItem, Order, Refund, RefundLine

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def customer(customer_id: str | None = "c1", email: str | None = "shopper@example.com") -> Customer:
    return Customer(customer_id=customer_id, email=email, first_name="Sam", last_name="Shopper")


def line(line_id: str = "1", price: str = "10.00", quantity: int = 1, discount: str = "0",
         product_id: str | None = "p1", collections: tuple[str, ...] = (),
         gift_card: bool = False) -> LineItem:
    return LineItem(line_id=line_id, quantity=quantity, unit_price=Decimal(price),
                    total_discount=Decimal(discount), product_id=product_id,
                    collection_ids=collections, is_gift_card=gift_card)


def order(order_id: str = "1001", *lines: LineItem, who: Customer | None = None,
          paid: bool = True, updated: datetime | None = None, **fields: object) -> Order:
    items = tuple(lines) or (line(),)
    subtotal = sum((item.net_amount for item in items), Decimal(0))
    base = Order(order_id=order_id, created_at=T0, updated_at=updated or T0, currency="USD",
                 customer=who or customer(), line_items=items, name=f"#{order_id}",
                 total=subtotal, paid=paid)
    return replace(base, **fields) if fields else base


def refund(refund_id: str, *lines: tuple[str, int, str], amount: str = "0",
           at: datetime | None = None, order_id: str = "1001") -> Refund:
    return Refund(refund_id=refund_id, order_id=order_id,
                  created_at=at or T0 + timedelta(days=1),
                  lines=tuple(RefundLine(line_id, qty, Decimal(sub))
                              for line_id, qty, sub in lines),
                  amount=Decimal(amount))


def with_refunds(base: Order, *refunds: Refund, later: timedelta = timedelta(days=1)) -> Order:
    return replace(base, refunds=base.refunds + tuple(refunds), updated_at=base.updated_at + later)
