"""Keeping each member in the right tier: progress from their orders, pure rules decide."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from plugin_server.models import Member, Order, TierChange

from .ledger import entry_exists, post_entry
from .program import Program
from .rules import TierBasis, TierSpec, evaluate_tier, ordered_tiers, window_start


def member_progress(session: Session, program: Program, member_id: int,
                    now: datetime) -> Decimal:
    """The member's standing on the program's tier basis, within its window."""
    query = select(
        func.coalesce(func.sum(Order.awarded_points - Order.reversed_points), 0),
        func.coalesce(func.sum(Order.base_amount - Order.refunded_amount), 0),
        func.coalesce(func.sum(case((Order.base_amount > Order.refunded_amount, 1), else_=0)), 0),
    ).where(
        Order.merchant_id == program.merchant_id,
        Order.member_id == member_id,
        Order.award_snapshot.is_not(None),
        Order.cancelled.is_(False),
    )
    start = window_start(program.tier_window, now)
    if start is not None:
        query = query.where(Order.placed_at >= start)
    points, amount, orders = session.execute(query).one()
    if program.tier_basis is TierBasis.POINTS_EARNED:
        return Decimal(int(points))
    if program.tier_basis is TierBasis.AMOUNT_SPENT:
        # The sum comes back in the column's scaled integer form on some dialects.
        return amount if isinstance(amount, Decimal) else Decimal(int(amount)).scaleb(-4)
    return Decimal(int(orders))


def _rank(program: Program, tier: TierSpec | None) -> int:
    if tier is None:
        return -1
    return [t.tier_id for t in ordered_tiers(program.tiers)].index(tier.tier_id)


def reevaluate_member_tier(session: Session, program: Program, member: Member,
                           now: datetime, reason: str = "evaluation") -> TierChange | None:
    """Move the member to the tier the rules give; grant a tier's entry reward the first time
    the member ever enters it."""
    progress = member_progress(session, program, member.id, now)
    member.tier_progress = progress
    current = program.tier(member.tier_id)
    target = evaluate_tier(progress, program.tiers, member.tier_id)
    if (target.tier_id if target else None) == member.tier_id:
        return None
    change = TierChange(merchant_id=member.merchant_id, member_id=member.id,
                        from_tier_id=member.tier_id, to_tier_id=target.tier_id if target else None,
                        progress=progress, reason=reason, created_at=now)
    session.add(change)
    member.tier_id = target.tier_id if target else None
    session.flush()
    if target is not None and _rank(program, target) > _rank(program, current):
        grant_entry_reward(session, member, target, now)
    return change


def grant_entry_reward(session: Session, member: Member, tier: TierSpec, now: datetime) -> None:
    source_id = f"{member.id}:{tier.tier_id}"
    if tier.entry_reward_points <= 0 or entry_exists(session, member.merchant_id,
                                                     "tier_reward", source_id):
        return
    post_entry(session, member, kind="tier_reward", source_kind="tier_reward",
               source_id=source_id, points=tier.entry_reward_points,
               reason=f"welcome to {tier.name}", now=now)
