"""The append-only points ledger, redemptions and idempotency records."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId, FixedDecimal, UTCDateTime, utcnow

ENTRY_KINDS = (
    "award",
    "release",
    "reversal",
    "cancellation",
    "redemption",
    "redemption_void",
    "adjustment",
    "tier_reward",
    "import",
)


class LedgerEntry(Base):
    """One change to a member's points. Never updated or deleted (L3): a database trigger
    refuses both, except while the whole shop is being purged on the platform's request.

    ``points`` changes the available balance, ``pending_points`` the pending one. The unique
    (merchant, source kind, source id) key makes every effect happen exactly once (L1)."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("merchant_id", "source_kind", "source_id"),
        CheckConstraint(f"kind IN {ENTRY_KINDS!r}", name="kind"),
        CheckConstraint("points <> 0 OR pending_points <> 0", name="not_empty"),
        Index("ix_ledger_entries_member_created", "member_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"),
                                             index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    pending_points: Mapped[int] = mapped_column(BigInteger, default=0)
    source_kind: Mapped[str] = mapped_column(String(30))
    source_id: Mapped[str] = mapped_column(String(190))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"),
                                                 default=None, index=True)
    redemption_id: Mapped[int | None] = mapped_column(
        ForeignKey("redemptions.id", ondelete="CASCADE"), default=None)
    reason: Mapped[str] = mapped_column(String(500), default="")
    actor: Mapped[str] = mapped_column(String(120), default="system")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


REDEMPTION_STATES = ("held", "issued", "voided", "cancelled")


class Redemption(Base):
    """Points spent on a reward: held first, then issued with a code, or voided (L7)."""

    __tablename__ = "redemptions"
    __table_args__ = (
        UniqueConstraint("merchant_id", "code"),
        CheckConstraint(f"state IN {REDEMPTION_STATES!r}", name="state"),
        CheckConstraint("points_cost > 0", name="cost_positive"),
        Index("ix_redemptions_state_created", "state", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"),
                                             index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"),
                                           index=True)
    reward_id: Mapped[int] = mapped_column(ForeignKey("rewards.id"))
    reward_name: Mapped[str] = mapped_column(String(120))
    reward_kind: Mapped[str] = mapped_column(String(20))
    reward_value: Mapped[Decimal] = mapped_column(FixedDecimal)
    points_cost: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(12), default="held")
    code: Mapped[str | None] = mapped_column(String(64), default=None)
    platform_discount_id: Mapped[str | None] = mapped_column(String(120), default=None)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    void_reason: Mapped[str] = mapped_column(String(500), default="")


class IdempotencyRecord(Base):
    """The first answer to a request made with an ``Idempotency-Key`` (L8)."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("merchant_id", "scope", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"),
                                             index=True)
    scope: Mapped[str] = mapped_column(String(120))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
