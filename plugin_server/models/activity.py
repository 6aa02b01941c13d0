"""The merchant admin's activity log: who changed which setting, and when (every manual
points adjustment is in the ledger too, with its reason)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId, UTCDateTime, utcnow


class AdminActivity(Base):
    __tablename__ = "admin_activity"
    __table_args__ = (Index("ix_admin_activity_merchant_created", "merchant_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"))
    # "Shopify staff 123", "sign-in link", "operator (CLI)": who, as far as we can tell.
    actor: Mapped[str] = mapped_column(String(120))
    # A dotted name, e.g. "settings.earning", "tier.create", "member.adjust".
    action: Mapped[str] = mapped_column(String(60))
    # What changed, as JSON: {"field": [before, after], ...} or the action's arguments.
    detail_json: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
