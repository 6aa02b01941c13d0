"""Manual point adjustments by a merchant or operator, always with a reason and an actor."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin_server.models import LedgerEntry

from .errors import InvalidArgument
from .ledger import post_entry
from .rewards import get_member


def adjust_points(session: Session, merchant_id: int, member_id: int, points: int, *,
                  reason: str, actor: str, reference: str | None = None,
                  now: datetime | None = None) -> LedgerEntry:
    """Add or remove points. A deduction may not take the balance below zero. ``reference``
    makes the adjustment idempotent: repeating it returns the entry it made the first time."""
    if not reason or not reason.strip():
        raise InvalidArgument("a reason is required for a manual adjustment")
    if not actor or not actor.strip():
        raise InvalidArgument("an actor is required for a manual adjustment")
    if points == 0:
        raise InvalidArgument("an adjustment must add or remove at least one point")
    member = get_member(session, merchant_id, member_id)
    if reference is not None:
        done = session.execute(
            select(LedgerEntry).where(LedgerEntry.merchant_id == merchant_id,
                                      LedgerEntry.source_kind == "adjustment",
                                      LedgerEntry.source_id == reference)
        ).scalar_one_or_none()
        if done is not None:
            return done
    return post_entry(session, member, kind="adjustment", source_kind="adjustment",
                      source_id=reference or uuid.uuid4().hex, points=points,
                      reason=reason.strip(), actor=actor.strip(),
                      require_balance=points < 0, now=now)
