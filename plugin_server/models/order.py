"""Orders as the engine last saw them: what is needed to award, reverse and report."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId, FixedDecimal, UTCDateTime, utcnow


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("merchant_id", "platform_order_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"),
                                             index=True)
    platform_order_id: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"),
                                                  default=None, index=True)
    name: Mapped[str] = mapped_column(String(64), default="")
    customer_id: Mapped[str | None] = mapped_column(String(64), default=None)
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    currency: Mapped[str] = mapped_column(String(3))
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    platform_updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    subtotal: Mapped[Decimal] = mapped_column(FixedDecimal, default=Decimal(0))
    total: Mapped[Decimal] = mapped_column(FixedDecimal, default=Decimal(0))
    base_amount: Mapped[Decimal] = mapped_column(FixedDecimal, default=Decimal(0))
    refunded_amount: Mapped[Decimal] = mapped_column(FixedDecimal, default=Decimal(0))
    # Facts that only ever become true (order independence, L6).
    paid: Mapped[bool] = mapped_column(Boolean, default=False)
    fulfilled: Mapped[bool] = mapped_column(Boolean, default=False)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    test: Mapped[bool] = mapped_column(Boolean, default=False)
    discount_codes: Mapped[str] = mapped_column(Text, default="[]")
    # The normalised order (JSON) as of platform_updated_at.
    snapshot: Mapped[str] = mapped_column(Text, default="{}")
    # Set once, when points are awarded: the rules in force then (see rules.AwardSnapshot).
    award_snapshot: Mapped[str | None] = mapped_column(Text, default=None)
    awarded_points: Mapped[int] = mapped_column(BigInteger, default=0)
    reversed_points: Mapped[int] = mapped_column(BigInteger, default=0)
    awarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    pending_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None, index=True)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    status_note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def points_are_pending(self) -> bool:
        return self.pending_until is not None and self.released_at is None


class OrderRefund(Base):
    """A refund seen on an order, kept even when it arrives before the order is awarded."""

    __tablename__ = "order_refunds"
    __table_args__ = (UniqueConstraint("merchant_id", "order_id", "platform_refund_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"),
                                             index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"),
                                          index=True)
    platform_refund_id: Mapped[str] = mapped_column(String(64))
    refunded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    amount: Mapped[Decimal] = mapped_column(FixedDecimal, default=Decimal(0))
    shipping: Mapped[Decimal] = mapped_column(FixedDecimal, default=Decimal(0))
    lines_json: Mapped[str] = mapped_column(Text, default="[]")
    # Whether this refund's reversal has been worked out (it may have reversed 0 points).
    applied: Mapped[bool] = mapped_column(Boolean, default=False)
    points_reversed: Mapped[int] = mapped_column(BigInteger, default=0)
    # Raised when a copy with line details replaces one that only had an amount (Shopify's
    # GraphQL refunds): the reversal is then worked out again, in either direction.
    revision: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
