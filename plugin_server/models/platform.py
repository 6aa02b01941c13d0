"""What connecting to a platform needs to remember: install nonces, history imports and the
privacy requests a platform sends about its shoppers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId, UTCDateTime, utcnow

IMPORT_STATES = ("running", "completed", "failed")


class OAuthNonce(Base):
    """An install ``state`` handed to a browser: usable once, for ten minutes. Only its hash is
    kept; the browser holds the value in a signed cookie."""

    __tablename__ = "oauth_nonces"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    nonce_hash: Mapped[str] = mapped_column(String(64), unique=True)
    shop: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class ImportRun(Base):
    """One import of a store's past orders, with its progress."""

    __tablename__ = "import_runs"
    __table_args__ = (CheckConstraint(f"state IN {IMPORT_STATES!r}", name="state"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"),
                                             index=True)
    kind: Mapped[str] = mapped_column(String(20), default="history")
    state: Mapped[str] = mapped_column(String(12), default="running")
    award_points: Mapped[bool] = mapped_column(Boolean, default=False)
    # The platform's handle on the work (a Shopify bulk operation id).
    operation_id: Mapped[str] = mapped_column(String(190), default="")
    # Orders placed before this moment belong to the import; later ones come by webhook.
    created_before: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(String(1000), default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class DataRequest(Base):
    """A shopper's data, gathered when the platform asks for it on their behalf (GDPR
    ``customers/data_request``), kept for the merchant to hand over."""

    __tablename__ = "data_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"),
                                             index=True)
    platform_request_id: Mapped[str] = mapped_column(String(64), default="")
    customer_id: Mapped[str | None] = mapped_column(String(64), default=None)
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    payload: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
