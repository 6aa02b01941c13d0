"""Keeping each member in the right tier: progress from their orders, pure rules decide."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, case, func, insert, select, type_coerce, update
from sqlalchemy.orm import Session

from plugin_server.models import LedgerEntry, Member, Order, Tier, TierChange
from plugin_server.models.base import FixedDecimal

from .ledger import Credit, post_credits
from .program import Program
from .rules import TierBasis, TierSpec, evaluate_tier, ordered_tiers, window_start


def progress_by_member(session: Session, program: Program, member_ids: Iterable[int] | None,
                       now: datetime) -> dict[int, Decimal]:
    """Each member's standing on the program's tier basis, within its window. ``None``: every
    member with an order (members missing from the answer stand at 0)."""
    ids = None if member_ids is None else list(member_ids)
    query = select(
        Order.member_id,
        func.coalesce(func.sum(Order.awarded_points - Order.reversed_points), 0),
        # The difference of two money columns is a plain integer to SQLAlchemy: read it back
        # through the money type so it is scaled on every database.
        type_coerce(func.coalesce(func.sum(Order.base_amount - Order.refunded_amount), 0),
                    FixedDecimal()),
        func.coalesce(func.sum(case((Order.base_amount > Order.refunded_amount, 1), else_=0)), 0),
    ).where(
        Order.merchant_id == program.merchant_id,
        Order.member_id.is_not(None) if ids is None else Order.member_id.in_(ids),
        Order.award_snapshot.is_not(None),
        Order.cancelled.is_(False),
    ).group_by(Order.member_id)
    start = window_start(program.tier_window, program.local(now))
    if start is not None:
        query = query.where(Order.placed_at >= start)
    progress = dict.fromkeys(ids or (), Decimal(0))
    for member_id, points, amount, orders in session.execute(query):
        if program.tier_basis is TierBasis.POINTS_EARNED:
            progress[member_id] = Decimal(int(points))
        elif program.tier_basis is TierBasis.AMOUNT_SPENT:
            progress[member_id] = amount
        else:
            progress[member_id] = Decimal(int(orders))
    return progress


def member_progress(session: Session, program: Program, member_id: int,
                    now: datetime) -> Decimal:
    return progress_by_member(session, program, [member_id], now)[member_id]


def _rank(program: Program, tier: TierSpec) -> int:
    return [t.tier_id for t in ordered_tiers(program.tiers)].index(tier.tier_id)


def is_upgrade(session: Session, program: Program, from_tier_id: int | None,
               target: TierSpec | None) -> bool:
    """Whether moving to ``target`` climbs (its entry reward is then due). From a retired
    tier, which is no longer on the ladder, it climbs only past that tier's own start: members
    of a retired top tier falling to the tier below earn no welcome."""
    if target is None:
        return False
    if from_tier_id is None:
        return True
    current = program.tier(from_tier_id)
    if current is not None:
        return _rank(program, target) > _rank(program, current)
    retired = session.get(Tier, from_tier_id)
    return retired is None or target.threshold > retired.threshold


def reevaluate_member_tier(session: Session, program: Program, member: Member,
                           now: datetime, reason: str = "evaluation") -> TierChange | None:
    """Move the member to the tier the rules give; grant a tier's entry reward the first time
    the member ever enters it. A program without tiers keeps no progress."""
    if not program.tiers and member.tier_id is None:
        return None
    progress = member_progress(session, program, member.id, now)
    change, upgrade = apply_tier(session, program, member, progress, now, reason)
    if upgrade is not None:
        grant_entry_rewards(session, [(member, upgrade)], now)
    return change


def apply_tier(session: Session, program: Program, member: Member, progress: Decimal,
               now: datetime, reason: str) -> tuple[TierChange | None, TierSpec | None]:
    """Record the member's progress and move them to the tier it earns. Returns the change,
    and the tier whose entry reward is due (an upgrade), for grant_entry_rewards."""
    if member.tier_progress != progress:
        member.tier_progress = progress
    target = evaluate_tier(progress, program.tiers, member.tier_id)
    if (target.tier_id if target else None) == member.tier_id:
        return None, None
    change = TierChange(merchant_id=member.merchant_id, member_id=member.id,
                        from_tier_id=member.tier_id, to_tier_id=target.tier_id if target else None,
                        progress=progress, reason=reason, created_at=now)
    upgrade = target if is_upgrade(session, program, member.tier_id, target) else None
    session.add(change)
    member.tier_id = target.tier_id if target else None
    return change, upgrade


def apply_tiers(session: Session, program: Program, standings: list[tuple[Member, Decimal]],
                now: datetime, reason: str) -> None:
    """apply_tier for many members at once, with set-based writes (the burst path)."""
    progress_rows: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    upgrades: list[tuple[Member, TierSpec]] = []
    for member, progress in standings:
        target = evaluate_tier(progress, program.tiers, member.tier_id)
        target_id = target.tier_id if target else None
        if target_id == member.tier_id and member.tier_progress == progress:
            continue
        progress_rows.append({"member": member.id, "tier": target_id, "progress": progress})
        if target_id == member.tier_id:
            continue
        changes.append({"merchant_id": member.merchant_id, "member_id": member.id,
                        "from_tier_id": member.tier_id, "to_tier_id": target_id,
                        "progress": progress, "reason": reason, "created_at": now})
        if target is not None and is_upgrade(session, program, member.tier_id, target):
            upgrades.append((member, target))
    if progress_rows:
        members = Member.__table__
        session.execute(
            update(members).where(members.c.id == bindparam("member"),
                                  members.c.merchant_id == program.merchant_id)
            .values(tier_id=bindparam("tier"),
                    tier_progress=bindparam("progress", type_=FixedDecimal())),
            progress_rows,
        )
        for member, _progress in standings:
            session.expire(member, ["tier_id", "tier_progress"])
    if changes:
        session.execute(insert(TierChange.__table__), changes)
    grant_entry_rewards(session, upgrades, now)


def reevaluate_members(session: Session, program: Program, members: list[Member],
                       now: datetime, reason: str) -> None:
    """Every given member into the tier the program gives them now (after the merchant changed
    the ladder or its basis); the same rules as a member's own re-evaluation."""
    if not program.tiers:
        members = [member for member in members if member.tier_id is not None]
    if not members:
        return
    progress = progress_by_member(session, program, [member.id for member in members], now)
    apply_tiers(session, program, [(member, progress[member.id]) for member in members],
                now, reason)


def grant_entry_rewards(session: Session, upgrades: list[tuple[Member, TierSpec]],
                        now: datetime) -> None:
    """Entry rewards, each granted only the first time a member ever enters that tier."""
    due = {f"{member.id}:{tier.tier_id}": (member, tier) for member, tier in upgrades
           if tier.entry_reward_points > 0}
    if not due:
        return
    merchant_id = next(iter(due.values()))[0].merchant_id
    granted = set(session.execute(
        select(LedgerEntry.source_id).where(LedgerEntry.merchant_id == merchant_id,
                                            LedgerEntry.source_kind == "tier_reward",
                                            LedgerEntry.source_id.in_(list(due)))
    ).scalars())
    post_credits(session, [
        Credit(member=member, kind="tier_reward", source_kind="tier_reward",
               source_id=source_id, points=tier.entry_reward_points,
               reason=f"welcome to {tier.name}")
        for source_id, (member, tier) in due.items() if source_id not in granted
    ], now)
