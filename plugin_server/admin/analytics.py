"""The dashboard's figures for one merchant: queries that gather plain facts, and pure
functions that compute the figures from them (so each rule is testable on its own).

Definitions (every figure is scoped to one merchant):

- *Members*: every member row, guests and redacted members included. *Active*: members with
  at least one ledger entry in the last 90 days.
- Each ledger entry's amount is ``points + pending_points``. Entries that only move points
  are ignored: ``release`` (pending → available) and transfers between members (claiming a
  guest, moving an order to its real customer: ``TRANSFER_SOURCES``).
  *Redeemed*: points spent on rewards, net of voided redemptions (``redemption`` and
  ``redemption_void`` entries). Every other entry (awards, tier rewards, imports, manual
  adjustments, reinstatements, refund reversals, cancellations) is *issued* when positive and
  *taken back* when negative. Hence issued - taken back - redeemed = outstanding.
- *Outstanding*: the sum of the members' available and pending balances.
- *Value of a point*: the program settings hold no point value, so it is the value per point
  of the fixed-amount reward that is cheapest in points among the enabled ones (ties: the
  best value per point). Percentage and free-shipping rewards have no fixed value. Without
  such a reward the liability is unknown (None).
- *Redemption rate*: redeemed / issued (None when nothing was issued).
- Orders counted: neither test nor cancelled. An order's *revenue* is its total minus what
  was refunded. *Average order value* is revenue / orders. *Repeat purchase rate*: among the
  customers with a counted order, the share with two or more. A member is a customer; an
  order without a member belongs to its platform customer id, else its email (case-folded),
  else it is a customer of its own.
- *Loyalty-code revenue*: revenue of counted orders whose discount codes include (ignoring
  case) the code of one of the merchant's redemptions.
- *Trends*: 12 weeks, Monday to Sunday in UTC, the current week last.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from plugin_server.models import LedgerEntry, Member, Order, Redemption, Reward, Tier

ACTIVE_DAYS = 90
TREND_WEEKS = 12
MOVES_ONLY = frozenset({"release"})
REDEEMING = frozenset({"redemption", "redemption_void"})
TRANSFER_SOURCES = frozenset({"guest_claim_in", "guest_claim_out", "moved_in", "moved_out"})


# -- facts (what the queries return) -----------------------------------------------------------

@dataclass(frozen=True)
class LedgerTotal:
    """The sums of the positive and of the negative amounts of one (kind, source kind)."""
    kind: str
    source_kind: str
    positive: int
    negative: int


@dataclass(frozen=True)
class LedgerFact:
    kind: str
    source_kind: str
    amount: int  # points + pending_points
    created_at: datetime


@dataclass(frozen=True)
class OrderFact:
    member_id: int | None
    customer_id: str | None
    email: str | None
    revenue: Decimal  # total - refunded
    discount_codes: tuple[str, ...]


# -- figures -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PointsFlow:
    issued: int
    taken_back: int
    redeemed: int

    @property
    def redemption_rate(self) -> Decimal | None:
        return Decimal(self.redeemed) / Decimal(self.issued) if self.issued else None


@dataclass(frozen=True)
class GroupOrders:
    orders: int
    customers: int
    repeat_customers: int
    revenue: Decimal

    @property
    def average_order_value(self) -> Decimal | None:
        return self.revenue / self.orders if self.orders else None

    @property
    def repeat_rate(self) -> Decimal | None:
        return (Decimal(self.repeat_customers) / Decimal(self.customers)
                if self.customers else None)


@dataclass(frozen=True)
class OrderFigures:
    members: GroupOrders
    non_members: GroupOrders
    loyalty_code_orders: int
    loyalty_code_revenue: Decimal


@dataclass(frozen=True)
class TierShare:
    name: str | None  # None: members without a tier
    members: int


@dataclass(frozen=True)
class Week:
    starts: datetime
    issued: int
    redeemed: int
    new_members: int


@dataclass(frozen=True)
class Dashboard:
    currency: str
    members: int
    active_members: int
    points: PointsFlow
    outstanding: int
    point_value: Decimal | None
    orders: OrderFigures
    tiers: list[TierShare]
    weeks: list[Week]

    @property
    def liability(self) -> Decimal | None:
        if self.point_value is None:
            return None
        return (self.point_value * self.outstanding).quantize(Decimal("0.01"))


# -- pure computations -------------------------------------------------------------------------

def _counts_as_flow(kind: str, source_kind: str) -> bool:
    return kind not in MOVES_ONLY and source_kind not in TRANSFER_SOURCES


def points_flow(totals: Iterable[LedgerTotal]) -> PointsFlow:
    issued = taken_back = redeemed = 0
    for total in totals:
        if not _counts_as_flow(total.kind, total.source_kind):
            continue
        if total.kind in REDEEMING:
            redeemed -= total.positive + total.negative
        else:
            issued += total.positive
            taken_back -= total.negative
    return PointsFlow(issued=issued, taken_back=taken_back, redeemed=redeemed)


def point_value(rewards: Iterable[tuple[int, Decimal]]) -> Decimal | None:
    """Value per point from (points cost, value) of enabled fixed-amount rewards."""
    usable = [(cost, value) for cost, value in rewards if cost > 0 and value > 0]
    if not usable:
        return None
    cost, value = min(usable, key=lambda reward: (reward[0], -(reward[1] / reward[0])))
    return value / cost


def _customer_key(order: OrderFact, position: int) -> str:
    if order.member_id is not None:
        return f"member:{order.member_id}"
    if order.customer_id:
        return f"customer:{order.customer_id}"
    if order.email:
        return f"email:{order.email.casefold()}"
    return f"order:{position}"


def _group(orders: Sequence[tuple[int, OrderFact]]) -> GroupOrders:
    per_customer = Counter(_customer_key(order, position) for position, order in orders)
    return GroupOrders(
        orders=len(orders), customers=len(per_customer),
        repeat_customers=sum(1 for count in per_customer.values() if count >= 2),
        revenue=sum((order.revenue for _, order in orders), Decimal(0)))


def order_figures(orders: Sequence[OrderFact], loyalty_codes: Iterable[str]) -> OrderFigures:
    codes = {code.casefold() for code in loyalty_codes}
    numbered = list(enumerate(orders))
    with_codes = [order for order in orders
                  if any(code.casefold() in codes for code in order.discount_codes)]
    return OrderFigures(
        members=_group([pair for pair in numbered if pair[1].member_id is not None]),
        non_members=_group([pair for pair in numbered if pair[1].member_id is None]),
        loyalty_code_orders=len(with_codes),
        loyalty_code_revenue=sum((order.revenue for order in with_codes), Decimal(0)))


def week_start(moment: datetime) -> datetime:
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def trend_start(now: datetime) -> datetime:
    return week_start(now) - timedelta(weeks=TREND_WEEKS - 1)


def weekly_trends(entries: Iterable[LedgerFact], joined: Iterable[datetime],
                  now: datetime) -> list[Week]:
    first = trend_start(now)
    issued, redeemed, new = Counter[int](), Counter[int](), Counter[int]()

    def index(moment: datetime) -> int | None:
        weeks = (week_start(moment) - first).days // 7
        return weeks if 0 <= weeks < TREND_WEEKS else None

    for entry in entries:
        at = index(entry.created_at)
        if at is None or not _counts_as_flow(entry.kind, entry.source_kind):
            continue
        if entry.kind in REDEEMING:
            redeemed[at] -= entry.amount
        elif entry.amount > 0:
            issued[at] += entry.amount
    for moment in joined:
        at = index(moment)
        if at is not None:
            new[at] += 1
    return [Week(starts=first + timedelta(weeks=number), issued=issued[number],
                 redeemed=redeemed[number], new_members=new[number])
            for number in range(TREND_WEEKS)]


# -- queries -----------------------------------------------------------------------------------

def _codes(raw: str) -> tuple[str, ...]:
    try:
        parsed = json.loads(raw or "[]")
    except ValueError:
        return ()
    # Codes are stored as strings; tolerate {"code": ...} objects from older snapshots.
    return tuple(str(item.get("code", "")) if isinstance(item, dict) else str(item)
                 for item in parsed) if isinstance(parsed, list) else ()


def _tier_shares(session: Session, merchant_id: int) -> list[TierShare]:
    counts = dict(session.execute(
        select(Member.tier_id, func.count(Member.id)).where(Member.merchant_id == merchant_id)
        .group_by(Member.tier_id)).all())
    tiers = session.execute(select(Tier).where(Tier.merchant_id == merchant_id)
                            .order_by(Tier.threshold, Tier.id)).scalars().all()
    # Retired tiers are listed only while members still hold them.
    shares = [TierShare(name=None, members=counts.get(None, 0))]
    shares += [TierShare(name=tier.name, members=counts.get(tier.id, 0)) for tier in tiers
               if tier.active or counts.get(tier.id)]
    return shares


def dashboard(session: Session, merchant_id: int, currency: str,
              now: datetime | None = None) -> Dashboard:
    now = now or datetime.now(UTC)
    amount = LedgerEntry.points + LedgerEntry.pending_points
    members = session.execute(
        select(func.count(Member.id), func.coalesce(func.sum(Member.balance + Member.pending), 0))
        .where(Member.merchant_id == merchant_id)).one()
    active = session.execute(
        select(func.count(func.distinct(LedgerEntry.member_id)))
        .where(LedgerEntry.merchant_id == merchant_id,
               LedgerEntry.created_at >= now - timedelta(days=ACTIVE_DAYS))).scalar_one()
    totals = [LedgerTotal(kind, source, int(positive), int(negative))
              for kind, source, positive, negative in session.execute(
                  select(LedgerEntry.kind, LedgerEntry.source_kind,
                         func.coalesce(func.sum(case((amount > 0, amount), else_=0)), 0),
                         func.coalesce(func.sum(case((amount < 0, amount), else_=0)), 0))
                  .where(LedgerEntry.merchant_id == merchant_id)
                  .group_by(LedgerEntry.kind, LedgerEntry.source_kind))]
    rewards = session.execute(
        select(Reward.points_cost, Reward.value).where(
            Reward.merchant_id == merchant_id, Reward.enabled.is_(True),
            Reward.kind == "fixed_amount")).all()
    orders = [OrderFact(member_id, customer_id, email, total - refunded, _codes(codes))
              for member_id, customer_id, email, total, refunded, codes in session.execute(
                  select(Order.member_id, Order.customer_id, Order.email, Order.total,
                         Order.refunded_amount, Order.discount_codes)
                  .where(Order.merchant_id == merchant_id, Order.test.is_(False),
                         Order.cancelled.is_(False)).order_by(Order.id))]
    codes = session.execute(select(Redemption.code).where(
        Redemption.merchant_id == merchant_id, Redemption.code.is_not(None))).scalars().all()
    since = trend_start(now)
    recent = [LedgerFact(kind, source, int(points), created_at)
              for kind, source, points, created_at in session.execute(
                  select(LedgerEntry.kind, LedgerEntry.source_kind, amount,
                         LedgerEntry.created_at)
                  .where(LedgerEntry.merchant_id == merchant_id,
                         LedgerEntry.created_at >= since))]
    joined = session.execute(select(Member.created_at).where(
        Member.merchant_id == merchant_id, Member.created_at >= since)).scalars().all()
    return Dashboard(
        currency=currency, members=int(members[0]), active_members=int(active),
        points=points_flow(totals), outstanding=int(members[1]),
        point_value=point_value(rewards),
        orders=order_figures(orders, [code for code in codes if code]),
        tiers=_tier_shares(session, merchant_id),
        weeks=weekly_trends(recent, joined, now))
