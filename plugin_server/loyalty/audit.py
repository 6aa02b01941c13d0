"""Checking invariant L4: every member's cached balances equal the sums of their entries."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from plugin_server.models import LedgerEntry, Member


@dataclass(frozen=True, slots=True)
class BalanceDifference:
    merchant_id: int
    member_id: int
    cached_balance: int
    ledger_balance: int
    cached_pending: int
    ledger_pending: int


def ledger_differences(session: Session, merchant_id: int | None = None) -> list[BalanceDifference]:
    sums = (
        select(LedgerEntry.member_id,
               func.sum(LedgerEntry.points).label("points"),
               func.sum(LedgerEntry.pending_points).label("pending"))
        .group_by(LedgerEntry.member_id)
        .subquery()
    )
    ledger_points = func.coalesce(sums.c.points, 0)
    ledger_pending = func.coalesce(sums.c.pending, 0)
    query = (
        select(Member.merchant_id, Member.id, Member.balance, ledger_points, Member.pending,
               ledger_pending)
        .outerjoin(sums, sums.c.member_id == Member.id)
        .where(or_(Member.balance != ledger_points, Member.pending != ledger_pending))
        .order_by(Member.merchant_id, Member.id)
    )
    if merchant_id is not None:
        query = query.where(Member.merchant_id == merchant_id)
    return [BalanceDifference(*(int(value) for value in row)) for row in session.execute(query)]
