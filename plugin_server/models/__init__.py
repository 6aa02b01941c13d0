"""SQLAlchemy models. Every row belongs to one merchant."""

from .activity import AdminActivity
from .base import Base, utcnow
from .inbox import InboxEvent
from .ledger import IdempotencyRecord, LedgerEntry, Redemption
from .member import Member, TierChange
from .merchant import EarningRule, Merchant, ProgramSettings, Reward, Tier
from .order import Order, OrderRefund
from .platform import DataRequest, ImportRun, OAuthNonce

__all__ = [
    "AdminActivity",
    "Base",
    "DataRequest",
    "EarningRule",
    "IdempotencyRecord",
    "ImportRun",
    "InboxEvent",
    "LedgerEntry",
    "Member",
    "Merchant",
    "OAuthNonce",
    "Order",
    "OrderRefund",
    "ProgramSettings",
    "Redemption",
    "Reward",
    "Tier",
    "TierChange",
    "utcnow",
]
