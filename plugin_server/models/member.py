"""Members (shoppers in a merchant's program) and their tier history."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId, FixedDecimal, UTCDateTime, utcnow


class Member(Base):
    """A shopper. ``balance`` and ``pending`` cache the sums of the member's ledger entries
    (invariant L4); only the ledger service changes them, always with an entry."""

    __tablename__ = "members"
    __table_args__ = (
        UniqueConstraint("merchant_id", "customer_id"),
        UniqueConstraint("merchant_id", "email"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"),
                                             index=True)
    # The platform's customer id; None while the member is a guest known only by email.
    customer_id: Mapped[str | None] = mapped_column(String(64), default=None)
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    first_name: Mapped[str] = mapped_column(String(120), default="")
    last_name: Mapped[str] = mapped_column(String(120), default="")
    # 64-bit: a few large orders must never overflow a balance.
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    pending: Mapped[int] = mapped_column(BigInteger, default=0)
    tier_id: Mapped[int | None] = mapped_column(ForeignKey("tiers.id"), default=None)
    tier_progress: Mapped[Decimal] = mapped_column(FixedDecimal, default=Decimal(0))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    redacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    @property
    def is_guest(self) -> bool:
        return self.customer_id is None

    @property
    def display_name(self) -> str:
        full = f"{self.first_name} {self.last_name}".strip()
        return full or (self.email or f"member {self.id}")


class TierChange(Base):
    """Every tier a member entered or left, with why."""

    __tablename__ = "tier_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"),
                                             index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"),
                                           index=True)
    from_tier_id: Mapped[int | None] = mapped_column(ForeignKey("tiers.id"), default=None)
    to_tier_id: Mapped[int | None] = mapped_column(ForeignKey("tiers.id"), default=None)
    progress: Mapped[Decimal] = mapped_column(FixedDecimal)
    reason: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
