"""Read-only figures about one merchant's program, for the demo landing page and the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin_server.models import InboxEvent, LedgerEntry, Member, Order, Tier

from .errors import NotFound
from .members import find_member


@dataclass(frozen=True)
class ProgramOverview:
    members: int
    orders: int
    points_outstanding: int
    points_pending: int
    points_issued: int
    points_redeemed: int
    inbox: dict[str, int]
    tiers: list[tuple[str, int]]
    top_members: list[dict[str, Any]] = field(default_factory=list)
    recent: list[dict[str, Any]] = field(default_factory=list)


def program_overview(session: Session, merchant_id: int) -> ProgramOverview:
    members, outstanding, pending = session.execute(
        select(func.count(Member.id), func.coalesce(func.sum(Member.balance), 0),
               func.coalesce(func.sum(Member.pending), 0))
        .where(Member.merchant_id == merchant_id)
    ).one()
    issued, redeemed = session.execute(
        select(func.coalesce(func.sum(LedgerEntry.points + LedgerEntry.pending_points)
                             .filter(LedgerEntry.kind.in_(("award", "tier_reward"))), 0),
               func.coalesce(-func.sum(LedgerEntry.points)
                             .filter(LedgerEntry.kind == "redemption"), 0))
        .where(LedgerEntry.merchant_id == merchant_id)
    ).one()
    orders = session.execute(
        select(func.count(Order.id)).where(Order.merchant_id == merchant_id)).scalar_one()
    inbox = dict(session.execute(
        select(InboxEvent.state, func.count(InboxEvent.id))
        .where(InboxEvent.merchant_id == merchant_id).group_by(InboxEvent.state)
    ).all())
    tier_names = dict(session.execute(
        select(Tier.id, Tier.name).where(Tier.merchant_id == merchant_id)).all())
    tier_counts = session.execute(
        select(Member.tier_id, func.count(Member.id)).where(Member.merchant_id == merchant_id)
        .group_by(Member.tier_id)
    ).all()
    top = session.execute(
        select(Member).where(Member.merchant_id == merchant_id)
        .order_by(Member.balance.desc(), Member.id).limit(10)
    ).scalars()
    recent = session.execute(
        select(LedgerEntry, Member).join(Member, Member.id == LedgerEntry.member_id)
        .where(LedgerEntry.merchant_id == merchant_id)
        .order_by(LedgerEntry.id.desc()).limit(12)
    )
    return ProgramOverview(
        members=int(members), orders=int(orders), points_outstanding=int(outstanding),
        points_pending=int(pending), points_issued=int(issued), points_redeemed=int(redeemed),
        inbox={str(k): int(v) for k, v in inbox.items()},
        tiers=[(tier_names.get(tier_id, "No tier") if tier_id else "No tier", int(count))
               for tier_id, count in tier_counts],
        top_members=[{"name": m.display_name, "email": m.email, "balance": m.balance,
                      "customer_id": m.customer_id,
                      "pending": m.pending, "tier": tier_names.get(m.tier_id, "")
                      if m.tier_id else ""} for m in top],
        recent=[{"member": m.display_name, "kind": e.kind, "points": e.points,
                 "pending_points": e.pending_points, "reason": e.reason,
                 "at": e.created_at.strftime("%Y-%m-%d %H:%M:%S")} for e, m in recent],
    )


def member_details(session: Session, merchant_id: int, customer: str,
                   history_limit: int = 50) -> dict[str, Any]:
    """The member as ``loyalty member`` prints it; NotFound for an unknown customer."""
    member = find_member(session, merchant_id, customer)
    tier = session.get(Tier, member.tier_id) if member.tier_id else None
    if tier is not None and tier.merchant_id != merchant_id:
        raise NotFound("tier belongs to another merchant")
    entries = session.execute(
        select(LedgerEntry).where(LedgerEntry.merchant_id == merchant_id,
                                  LedgerEntry.member_id == member.id)
        .order_by(LedgerEntry.id.desc()).limit(history_limit)
    ).scalars()
    return {
        "customer_id": member.customer_id,
        "email": member.email,
        "balance": member.balance,
        "pending": member.pending,
        "tier": tier.name if tier else None,
        "tier_progress": str(member.tier_progress),
        "history": [{"kind": e.kind, "points": e.points, "pending_points": e.pending_points,
                     "reason": e.reason, "actor": e.actor,
                     "created_at": e.created_at.isoformat()} for e in entries],
    }
