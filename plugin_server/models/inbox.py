"""The webhook inbox: every delivery stored once, then processed by a job."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId, UTCDateTime, utcnow

INBOX_STATES = ("received", "processed", "failed", "ignored")


class InboxEvent(Base):
    __tablename__ = "inbox_events"
    __table_args__ = (
        UniqueConstraint("merchant_id", "topic", "event_id"),
        CheckConstraint(f"state IN {INBOX_STATES!r}", name="state"),
        Index("ix_inbox_events_state_received", "state", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"),
                                             index=True)
    platform: Mapped[str] = mapped_column(String(20))
    topic: Mapped[str] = mapped_column(String(80))
    event_id: Mapped[str] = mapped_column(String(190))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    headers_json: Mapped[str] = mapped_column(Text, default="{}")
    state: Mapped[str] = mapped_column(String(12), default="received")
    reason: Mapped[str] = mapped_column(String(1000), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
