"""Merchants (one installed store each) and their program settings."""

from __future__ import annotations

import secrets
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, BigId, FixedDecimal, UTCDateTime, utcnow

PLATFORMS = ("shopify", "woocommerce", "demo")
MERCHANT_STATUSES = ("pending", "active", "uninstalled", "disconnected", "purging")


def new_store_id() -> str:
    """A public, unguessable store id (64 random bits, hex): it names the store in storefront
    URLs and signed identities without revealing the row id or how many stores there are."""
    return secrets.token_hex(8)


class Merchant(Base):
    __tablename__ = "merchants"
    __table_args__ = (
        UniqueConstraint("platform", "shop"),
        CheckConstraint(f"platform IN {PLATFORMS!r}", name="platform"),
        CheckConstraint(f"status IN {MERCHANT_STATUSES!r}", name="status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    shop: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    status: Mapped[str] = mapped_column(String(20), default="active")
    # Platform credentials (access/refresh tokens, API keys), encrypted with ENCRYPTION_KEY.
    credentials: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    # The store's public id for the storefront API (DESIGN §8); never changes.
    store_id: Mapped[str] = mapped_column(String(32), unique=True, index=True,
                                          default=new_store_id)
    # The secret the store's plugin signs shopper identities with, encrypted with
    # ENCRYPTION_KEY; created the first time it is asked for (loyalty.widget_identity).
    widget_secret: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    # When the program started in this shop (the first install): orders placed before it
    # earn only if the merchant awards past orders.
    program_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # The latest install; deliveries triggered before it (a stale uninstall) change nothing.
    installed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    uninstalled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Reconciliation has seen every order the platform changed before this moment.
    sync_checkpoint: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    settings: Mapped[ProgramSettings] = relationship(back_populates="merchant", uselist=False)


class ProgramSettings(Base):
    """How a merchant's program earns and ranks. One row per merchant."""

    __tablename__ = "program_settings"
    __table_args__ = (
        CheckConstraint("points_per_unit >= 0", name="rate_not_negative"),
        CheckConstraint("pending_days BETWEEN 0 AND 365", name="pending_days_range"),
        CheckConstraint("rounding IN ('down', 'nearest', 'up')", name="rounding"),
        CheckConstraint("award_on IN ('payment', 'fulfilment')", name="award_on"),
        CheckConstraint("tier_basis IN ('points_earned', 'amount_spent', 'orders')",
                        name="tier_basis"),
        CheckConstraint("tier_window IN ('lifetime', 'calendar_year', 'rolling_12_months')",
                        name="tier_window"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"),
                                             unique=True)
    program_name: Mapped[str] = mapped_column(String(120), default="Rewards")
    points_per_unit: Mapped[Decimal] = mapped_column(FixedDecimal, default=Decimal(1))
    rounding: Mapped[str] = mapped_column(String(10), default="down")
    award_on: Mapped[str] = mapped_column(String(12), default="payment")
    pending_days: Mapped[int] = mapped_column(Integer, default=0)
    include_shipping: Mapped[bool] = mapped_column(Boolean, default=False)
    include_taxes: Mapped[bool] = mapped_column(Boolean, default=False)
    include_tips: Mapped[bool] = mapped_column(Boolean, default=False)
    include_gift_cards: Mapped[bool] = mapped_column(Boolean, default=False)
    award_test_orders: Mapped[bool] = mapped_column(Boolean, default=False)
    # Whether orders placed before the install earn points when the history is imported.
    award_past_orders: Mapped[bool] = mapped_column(Boolean, default=False)
    tier_basis: Mapped[str] = mapped_column(String(20), default="points_earned")
    tier_window: Mapped[str] = mapped_column(String(20), default="lifetime")
    # Widget look and per-language texts, as JSON; owned by the widget and admin features.
    widget_json: Mapped[str] = mapped_column(Text, default="{}")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    merchant: Mapped[Merchant] = relationship(back_populates="settings")


class EarningRule(Base):
    """A points multiplier for one product or one collection."""

    __tablename__ = "earning_rules"
    __table_args__ = (
        UniqueConstraint("merchant_id", "target", "target_id"),
        CheckConstraint("target IN ('product', 'collection')", name="target"),
        CheckConstraint("factor >= 0", name="factor_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"),
                                             index=True)
    target: Mapped[str] = mapped_column(String(12))
    target_id: Mapped[str] = mapped_column(String(64))
    factor: Mapped[Decimal] = mapped_column(FixedDecimal)
    label: Mapped[str] = mapped_column(String(120), default="")


class Tier(Base):
    __tablename__ = "tiers"
    __table_args__ = (
        UniqueConstraint("merchant_id", "name"),
        CheckConstraint("threshold >= 0", name="threshold_not_negative"),
        CheckConstraint("retention_threshold IS NULL OR retention_threshold <= threshold",
                        name="retention_not_above_threshold"),
        CheckConstraint("multiplier >= 0", name="multiplier_not_negative"),
        CheckConstraint("entry_reward_points >= 0", name="entry_reward_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"),
                                             index=True)
    name: Mapped[str] = mapped_column(String(60))
    threshold: Mapped[Decimal] = mapped_column(FixedDecimal)
    retention_threshold: Mapped[Decimal | None] = mapped_column(FixedDecimal, default=None)
    multiplier: Mapped[Decimal] = mapped_column(FixedDecimal, default=Decimal(1))
    entry_reward_points: Mapped[int] = mapped_column(Integer, default=0)
    perks: Mapped[str] = mapped_column(Text, default="")
    # Retired tiers stay so tier history keeps pointing at them.
    active: Mapped[bool] = mapped_column(Boolean, default=True)


REWARD_KINDS = ("fixed_amount", "percentage", "free_shipping")


class Reward(Base):
    __tablename__ = "rewards"
    __table_args__ = (
        CheckConstraint(f"kind IN {REWARD_KINDS!r}", name="kind"),
        CheckConstraint("points_cost > 0", name="cost_positive"),
        CheckConstraint("value >= 0", name="value_not_negative"),
        CheckConstraint("kind <> 'percentage' OR value <= 1000000", name="percentage_max_100"),
        CheckConstraint("expires_days IS NULL OR expires_days > 0", name="expiry_positive"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"),
                                             index=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(20))
    points_cost: Mapped[int] = mapped_column(Integer)
    value: Mapped[Decimal] = mapped_column(FixedDecimal, default=Decimal(0))
    minimum_subtotal: Mapped[Decimal | None] = mapped_column(FixedDecimal, default=None)
    # None: codes never expire.
    expires_days: Mapped[int | None] = mapped_column(Integer, default=None)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
