"""Plain, platform-neutral dataclasses that every adapter returns and the engine consumes.

Money is always ``Decimal`` in the shop's currency; ids are the platform's ids as strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Customer:
    """A shopper as the platform knows them. ``customer_id`` is ``None`` for guests."""

    customer_id: str | None
    email: str | None
    first_name: str | None = None
    last_name: str | None = None
    accepts_marketing: bool = False
    # False when ``email`` was typed for one purchase (WooCommerce's billing email of a
    # registered customer) rather than being the account's own: it names the member's
    # contact address but never claims a guest's points.
    email_is_account: bool = True


@dataclass(frozen=True, slots=True)
class LineItem:
    """One order line. ``total_discount`` is the part of the line's price taken off by discounts;
    ``included_tax`` is tax already inside ``unit_price`` (shops whose prices include tax), kept
    apart so that tax never earns points whichever way the shop prices."""

    line_id: str
    quantity: int
    unit_price: Decimal
    total_discount: Decimal = Decimal(0)
    included_tax: Decimal = Decimal(0)
    product_id: str | None = None
    variant_id: str | None = None
    collection_ids: tuple[str, ...] = ()
    title: str = ""
    is_gift_card: bool = False

    @property
    def net_amount(self) -> Decimal:
        """What the shopper paid for the line after its discounts, without tax."""
        return self.unit_price * self.quantity - self.total_discount - self.included_tax


@dataclass(frozen=True, slots=True)
class RefundLine:
    line_id: str
    quantity: int
    subtotal: Decimal


@dataclass(frozen=True, slots=True)
class Refund:
    """Money given back on an order. ``lines`` is empty for an amount-only refund."""

    refund_id: str
    order_id: str
    created_at: datetime
    lines: tuple[RefundLine, ...] = ()
    amount: Decimal = Decimal(0)
    shipping: Decimal = Decimal(0)

    @property
    def lines_subtotal(self) -> Decimal:
        return sum((line.subtotal for line in self.lines), Decimal(0))


@dataclass(frozen=True, slots=True)
class Order:
    """An order as it is now. Flags are facts that, once true, stay true for the engine, except
    ``cancelled`` on a ``reopenable`` order: WooCommerce moves an order back out of
    cancelled, failed or trash, and its newest copy then says whether it is cancelled."""

    order_id: str
    created_at: datetime
    updated_at: datetime
    currency: str
    customer: Customer
    line_items: tuple[LineItem, ...]
    name: str = ""
    shipping: Decimal = Decimal(0)
    taxes: Decimal = Decimal(0)
    tips: Decimal = Decimal(0)
    total: Decimal = Decimal(0)
    paid: bool = False
    fulfilled: bool = False
    cancelled: bool = False
    test: bool = False
    discount_codes: tuple[str, ...] = ()
    refunds: tuple[Refund, ...] = field(default_factory=tuple)
    reopenable: bool = False

    @property
    def lines_subtotal(self) -> Decimal:
        return sum((line.net_amount for line in self.line_items), Decimal(0))


@dataclass(frozen=True, slots=True)
class DiscountRequest:
    """What a platform adapter needs to create one single-use code for one shopper."""

    merchant_id: int
    redemption_id: int
    code: str
    kind: str  # "fixed_amount" | "percentage" | "free_shipping"
    value: Decimal
    currency: str
    customer_id: str | None
    email: str | None
    starts_at: datetime
    ends_at: datetime | None
    minimum_subtotal: Decimal | None
    title: str


@dataclass(frozen=True, slots=True)
class IssuedCode:
    code: str
    platform_discount_id: str | None = None


@dataclass(frozen=True, slots=True)
class CodeToDisable:
    """What a platform adapter needs to disable one code this app created for a redemption.
    ``platform_discount_id`` is what the platform answered at creation, when it did."""

    merchant_id: int
    redemption_id: int
    code: str
    platform_discount_id: str | None


@dataclass(frozen=True, slots=True)
class DisabledCode:
    """A code the platform has disabled (it no longer applies at checkout), with the use the
    platform had recorded for it by then."""

    code: str
    platform_discount_id: str | None
    usage_count: int
    used_by: tuple[str, ...] = ()

    @property
    def used(self) -> bool:
        return self.usage_count > 0 or bool(self.used_by)
