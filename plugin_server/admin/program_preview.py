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
    AwardSnapshot,
    Multiplier,
    TierSpec,
    award_is_due,
    compute_award,
    evaluate_tier,
    points_to_reverse,
)
from plugin_server.loyalty.tiers import progress_by_member
from plugin_server.models import LedgerEntry, Member, Order, OrderRefund, Tier

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
    # A ladder change: saving it moves these members now and pays these welcome points.
    tiers_changed: bool = False
    entry_rewards: int = 0

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
            award_test_orders=earning.award_test_orders,
            multipliers=program.policy.multipliers if earning.multipliers is None else tuple(
                Multiplier(row.target, row.target_id, row.factor)
                for row in earning.multipliers)))
    if ladder is not None:
        program = replace(program, tier_basis=ladder.basis, tier_window=ladder.window, tiers=tuple(
            TierSpec(tier_id=row.tier_id if row.tier_id is not None else -number,
                     name=row.name, threshold=row.threshold,
                     retention_threshold=row.retention_threshold, multiplier=row.multiplier,
                     entry_reward_points=row.entry_reward_points)
            for number, row in enumerate(ladder.tiers, start=1)))
    return program


@dataclass
class _Standing:
    after: dict[int, int | None]
    moves: list[TierMove]
    names: dict[int, str]
    # (member id, tier) for every climb: the tier's entry reward is due unless already paid.
    climbs: list[tuple[int, TierSpec]]


def _current_tiers(session: Session, program: Program) -> _Standing:
    rows = session.execute(select(Member.id, Member.tier_id)
                           .where(Member.merchant_id == program.merchant_id))
    names = {tier.id: tier.name for tier in session.execute(
        select(Tier).where(Tier.merchant_id == program.merchant_id)).scalars()}
    return _Standing({member_id: tier_id for member_id, tier_id in rows}, [], names, [])


def _tiers_after(session: Session, program: Program, now: datetime) -> _Standing:
    """Each member's tier under the program, the moves from today's tiers, and the climbs;
    the same progress query and rules as the re-evaluation job that saving queues."""
    stored = list(session.execute(
        select(Tier).where(Tier.merchant_id == program.merchant_id)).scalars())
    names = {tier.id: tier.name for tier in stored}
    names.update({tier.tier_id: tier.name for tier in program.tiers})
    # A move climbs when it lands on a higher entry threshold (no tier: below all), which is
    # tiers.is_upgrade once saved: a retired tier keeps its stored threshold.
    thresholds = {tier.id: tier.threshold for tier in stored}
    thresholds.update({tier.tier_id: tier.threshold for tier in program.tiers})
    progress = progress_by_member(session, program, None, now)
    members = session.execute(
        select(Member.id, Member.tier_id).where(Member.merchant_id == program.merchant_id))

    def height(tier_id: int | None) -> Decimal:
        return Decimal(-1) if tier_id is None else thresholds.get(tier_id, Decimal(-1))

    after: dict[int, int | None] = {}
    moved: dict[tuple[int | None, int | None], int] = defaultdict(int)
    climbs: list[tuple[int, TierSpec]] = []
    for member_id, tier_id in members:
        if not program.tiers and tier_id is None:
            after[member_id] = None
            continue
        target = evaluate_tier(progress.get(member_id, Decimal(0)), program.tiers, tier_id)
        after[member_id] = target.tier_id if target else None
        if after[member_id] != tier_id:
            moved[(tier_id, after[member_id])] += 1
            if target is not None and height(target.tier_id) > height(tier_id):
                climbs.append((member_id, target))
    moves = [TierMove(names.get(old) if old is not None else None,
                      names.get(new) if new is not None else None, count,
                      upward=height(new) > height(old))
             for (old, new), count in moved.items()]
    moves.sort(key=lambda move: (-move.members, move.from_tier or "", move.to_tier or ""))
    return _Standing(after, moves, names, climbs)


def _entry_rewards(session: Session, merchant_id: int,
                   climbs: list[tuple[int, TierSpec]]) -> int:
    """Welcome points the climbs would pay: each tier's once per member, ever (the ledger's
    ``tier_reward`` entries say who already had it)."""
    due = {f"{member_id}:{tier.tier_id}": tier.entry_reward_points
           for member_id, tier in climbs if tier.entry_reward_points > 0}
    if not due:
        return 0
    paid = set(session.execute(
        select(LedgerEntry.source_id).where(LedgerEntry.merchant_id == merchant_id,
                                            LedgerEntry.source_kind == "tier_reward")).scalars())
    return sum(points for key, points in due.items() if key not in paid)


def _refunds(session: Session, merchant_id: int,
             order_ids: list[int]) -> dict[int, list[Refund]]:
    refunds: dict[int, list[Refund]] = defaultdict(list)
    rows = session.execute(select(OrderRefund).where(OrderRefund.merchant_id == merchant_id,
                                                     OrderRefund.order_id.in_(order_ids)))
    for row in rows.scalars():
        refunds[row.order_id].append(refund_from_row(row))
    return refunds


def preview_program(session: Session, program: Program, now: datetime, *,
                    tiers_changed: bool) -> ProgramPreview:
    """The last 12 months of orders under ``program``, against what the ledger holds.

    An earning change recomputes every order's award under the new rules at the tier
    multiplier it was awarded with (saving changes no past award; this is what the orders
    would hold had the rules been in force). A ladder change leaves past awards alone: its
    effect is the members it moves now and the entry rewards those moves pay."""
    since = now - timedelta(days=PREVIEW_DAYS)
    standing = (_tiers_after(session, program, now) if tiers_changed
                else _current_tiers(session, program))
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
            held = row.awarded_points - row.reversed_points
            months[month][0] += held
            months[month][1] += held if tiers_changed else _points_under(
                program, row, refunds.get(row.id, []), standing.after)
    entry_rewards = _entry_rewards(session, program.merchant_id, standing.climbs)
    if entry_rewards:
        months[program.local(now).strftime("%Y-%m")][1] += entry_rewards
    ordered = tuple(MonthPoints(month, issued, proposed)
                    for month, (issued, proposed) in sorted(months.items()))
    ladder = sorted(program.tiers, key=lambda tier: tier.threshold)
    counts: dict[int | None, int] = defaultdict(int)
    for tier_id in standing.after.values():
        counts[tier_id] += 1
    members_after = tuple([(standing.names.get(tier.tier_id), counts.get(tier.tier_id, 0))
                           for tier in ladder] + [(None, counts.get(None, 0))])
    return ProgramPreview(since=since, orders=counted,
                          issued=sum(month.issued for month in ordered),
                          proposed=sum(month.proposed for month in ordered),
                          months=ordered, moves=tuple(standing.moves),
                          members_after=members_after, tiers_changed=tiers_changed,
                          entry_rewards=entry_rewards)


def _points_under(program: Program, row: Order, refunds: list[Refund],
                  tiers: dict[int, int | None]) -> int:
    """What one order would hold now under ``program``: its award, at the tier multiplier it
    was awarded with (today's tier's for an order not yet awarded), less what its refunds
    take back; nothing once cancelled, nothing without a member to earn it."""
    if row.member_id is None or row.cancelled or row.snapshot in ("", "{}"):
        return 0
    order = with_facts(parse_order(json.loads(row.snapshot)), row)
    due, _why = award_is_due(order, program.policy)
    if not due:
        return 0
    multiplier = (AwardSnapshot.from_json(row.award_snapshot).tier_multiplier
                  if row.award_snapshot else program.tier_multiplier(tiers.get(row.member_id)))
    award = compute_award(order, program.policy, multiplier)
    return award.points - points_to_reverse(award, refunds)
