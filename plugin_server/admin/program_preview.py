"""What a change to earning or tiers would do, worked out on the last 12 months of orders
before anything is saved: points those orders would have earned, and members who would
change tier. Nothing is written: the proposal becomes a ``Program`` like the saved one and
goes through the same pure rules and the same progress query as the real pipeline."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from integrations.base import Refund
from integrations.canonical import parse_order
from plugin_server.loyalty.orders import refund_from_row, with_facts
from plugin_server.loyalty.program import Program, load_program
from plugin_server.loyalty.rules import (
    TierSpec,
    award_is_due,
    compute_award,
    evaluate_tier,
    points_to_reverse,
)
from plugin_server.loyalty.tiers import progress_by_member
from plugin_server.models import Member, Order, OrderRefund, Tier

from .settings_forms import EarningForm, TierLadder

PREVIEW_DAYS = 365
ORDER_BATCH = 500


@dataclass(frozen=True)
class MonthPoints:
    month: str  # "2026-11", in the shop's timezone
    issued: int
    proposed: int


@dataclass(frozen=True)
class TierMove:
    from_tier: str | None
    to_tier: str | None
    members: int
    upward: bool


@dataclass(frozen=True)
class ProgramPreview:
    since: datetime
    orders: int
    # What those orders hold in the ledger now, and what they would have earned instead.
    issued: int
    proposed: int
    months: tuple[MonthPoints, ...]
    moves: tuple[TierMove, ...]
    # Members per tier once the change applies, in ladder order, then those in no tier.
    members_after: tuple[tuple[str | None, int], ...]

    @property
    def members_moving(self) -> int:
        return sum(move.members for move in self.moves)


def proposed_program(session: Session, merchant_id: int, earning: EarningForm | None,
                     ladder: TierLadder | None) -> Program:
    """The program as it would be with the change; new tiers get ids below zero."""
    program = load_program(session, merchant_id)
    if earning is not None:
        program = replace(program, policy=replace(
            program.policy, points_per_unit=earning.points_per_unit, rounding=earning.rounding,
            award_on=earning.award_on, pending_days=earning.pending_days,
            include_shipping=earning.include_shipping, include_taxes=earning.include_taxes,
            include_tips=earning.include_tips, include_gift_cards=earning.include_gift_cards,
            award_test_orders=earning.award_test_orders))
    if ladder is not None:
        program = replace(program, tier_basis=ladder.basis, tier_window=ladder.window, tiers=tuple(
            TierSpec(tier_id=row.tier_id if row.tier_id is not None else -number,
                     name=row.name, threshold=row.threshold,
                     retention_threshold=row.retention_threshold, multiplier=row.multiplier,
                     entry_reward_points=row.entry_reward_points)
            for number, row in enumerate(ladder.tiers, start=1)))
    return program


def _tiers_after(session: Session, program: Program,
                 now: datetime) -> tuple[dict[int, int | None], list[TierMove], dict[int, str]]:
    """Each member's tier under the program, the moves from today's tiers, tier names."""
    stored = list(session.execute(
        select(Tier).where(Tier.merchant_id == program.merchant_id)).scalars())
    names = {tier.id: tier.name for tier in stored}
    names.update({tier.tier_id: tier.name for tier in program.tiers})
    # A move is upward when it lands on a higher entry threshold (no tier: below all).
    thresholds = {tier.id: tier.threshold for tier in stored}
    thresholds.update({tier.tier_id: tier.threshold for tier in program.tiers})
    progress = progress_by_member(session, program, None, now)
    members = session.execute(
        select(Member.id, Member.tier_id).where(Member.merchant_id == program.merchant_id))
    after: dict[int, int | None] = {}
    moved: dict[tuple[int | None, int | None], int] = defaultdict(int)
    for member_id, tier_id in members:
        if not program.tiers and tier_id is None:
            after[member_id] = None
            continue
        target = evaluate_tier(progress.get(member_id, Decimal(0)), program.tiers, tier_id)
        after[member_id] = target.tier_id if target else None
        if after[member_id] != tier_id:
            moved[(tier_id, after[member_id])] += 1

    def height(tier_id: int | None) -> Decimal:
        return Decimal(-1) if tier_id is None else thresholds.get(tier_id, Decimal(-1))

    moves = [TierMove(names.get(old) if old is not None else None,
                      names.get(new) if new is not None else None, count,
                      upward=height(new) > height(old))
             for (old, new), count in moved.items()]
    moves.sort(key=lambda move: (-move.members, move.from_tier or "", move.to_tier or ""))
    return after, moves, names


def _refunds(session: Session, merchant_id: int,
             order_ids: list[int]) -> dict[int, list[Refund]]:
    refunds: dict[int, list[Refund]] = defaultdict(list)
    rows = session.execute(select(OrderRefund).where(OrderRefund.merchant_id == merchant_id,
                                                     OrderRefund.order_id.in_(order_ids)))
    for row in rows.scalars():
        refunds[row.order_id].append(refund_from_row(row))
    return refunds


def preview_program(session: Session, program: Program, now: datetime) -> ProgramPreview:
    """The last 12 months of orders under ``program``, against what the ledger holds."""
    since = now - timedelta(days=PREVIEW_DAYS)
    after, moves, names = _tiers_after(session, program, now)
    months: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    counted = 0
    last_id = 0
    while True:
        rows = list(session.execute(
            select(Order).where(Order.merchant_id == program.merchant_id,
                                Order.placed_at >= since, Order.id > last_id)
            .order_by(Order.id).limit(ORDER_BATCH)).scalars())
        if not rows:
            break
        last_id = rows[-1].id
        refunds = _refunds(session, program.merchant_id, [row.id for row in rows])
        for row in rows:
            counted += 1
            month = program.local(row.placed_at).strftime("%Y-%m")
            months[month][0] += row.awarded_points - row.reversed_points
            months[month][1] += _points_under(program, row, refunds.get(row.id, []), after)
    ordered = tuple(MonthPoints(month, issued, proposed)
                    for month, (issued, proposed) in sorted(months.items()))
    ladder = sorted(program.tiers, key=lambda tier: tier.threshold)
    counts: dict[int | None, int] = defaultdict(int)
    for tier_id in after.values():
        counts[tier_id] += 1
    members_after = tuple([(names.get(tier.tier_id), counts.get(tier.tier_id, 0))
                           for tier in ladder] + [(None, counts.get(None, 0))])
    return ProgramPreview(since=since, orders=counted,
                          issued=sum(month.issued for month in ordered),
                          proposed=sum(month.proposed for month in ordered),
                          months=ordered, moves=tuple(moves), members_after=members_after)


def _points_under(program: Program, row: Order, refunds: list[Refund],
                  tiers: dict[int, int | None]) -> int:
    """What one order would hold now under ``program``: its award, less what its refunds
    take back; nothing once cancelled, nothing without a member to earn it."""
    if row.member_id is None or row.cancelled or row.snapshot in ("", "{}"):
        return 0
    order = with_facts(parse_order(json.loads(row.snapshot)), row)
    due, _why = award_is_due(order, program.policy)
    if not due:
        return 0
    award = compute_award(order, program.policy,
                          program.tier_multiplier(tiers.get(row.member_id)))
    return award.points - points_to_reverse(award, refunds)
