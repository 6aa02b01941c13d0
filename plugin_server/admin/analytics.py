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
  order without a member belongs to its platform customer id, else its email (lower-cased),
  else it is a customer of its own.
- *Loyalty-code revenue*: revenue of counted orders whose discount codes include (ignoring
  case) the code of one of the merchant's redemptions.
- *Trends*: 12 weeks, Monday to Sunday in UTC, the current week last.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import ColumnElement, String, case, cast, func, literal, select, type_coerce
from sqlalchemy.orm import Session

from plugin_server.models import LedgerEntry, Member, Order, Redemption, Reward, Tier
from plugin_server.models.base import FixedDecimal

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


def loyalty_code_orders(orders: Iterable[tuple[Decimal, str]],
                        loyalty_codes: Iterable[str]) -> tuple[int, Decimal]:
    """(count, revenue) of the orders, given as (revenue, discount codes JSON), that used one
    of the codes (ignoring case)."""
    codes = {code.casefold() for code in loyalty_codes}
    used = [revenue for revenue, raw in orders
            if any(code.casefold() in codes for code in _codes(raw))]
    return len(used), sum(used, Decimal(0))


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


def _order_groups(session: Session, counted: list[ColumnElement[bool]]
                  ) -> dict[bool, GroupOrders]:
    """Members' and non-members' orders, customers, repeat customers and revenue, summed by
    the database: each order keyed to its customer, one row per customer, one per group.
    (Grouping happens on subquery columns, never on expressions, which PostgreSQL would
    refuse when their constants are bound as different parameters.)"""
    key = case(
        (Order.member_id.is_not(None), literal("m:").concat(cast(Order.member_id, String))),
        (func.coalesce(Order.customer_id, "") != "",
         literal("c:").concat(Order.customer_id)),
        (func.coalesce(Order.email, "") != "", literal("e:").concat(func.lower(Order.email))),
        else_=literal("o:").concat(cast(Order.id, String)))
    keyed = select(key.label("key"),
                   case((Order.member_id.is_not(None), 1), else_=0).label("member"),
                   (Order.total - Order.refunded_amount).label("revenue")
                   ).where(*counted).subquery()
    per_customer = select(keyed.c.key, func.max(keyed.c.member).label("member"),
                          func.count().label("orders"),
                          func.sum(keyed.c.revenue).label("revenue")
                          ).group_by(keyed.c.key).subquery()
    groups = {False: GroupOrders(0, 0, 0, Decimal(0)), True: GroupOrders(0, 0, 0, Decimal(0))}
    for member, customers, repeat, orders, revenue in session.execute(
            select(per_customer.c.member, func.count(),
                   func.sum(case((per_customer.c.orders >= 2, 1), else_=0)),
                   func.sum(per_customer.c.orders),
                   type_coerce(func.sum(per_customer.c.revenue), FixedDecimal()))
            .group_by(per_customer.c.member)):
        groups[bool(member)] = GroupOrders(orders=int(orders), customers=int(customers),
                                           repeat_customers=int(repeat),
                                           revenue=revenue or Decimal(0))
    return groups


def _order_figures(session: Session, merchant_id: int) -> OrderFigures:
    counted: list[ColumnElement[bool]] = [
        Order.merchant_id == merchant_id, Order.test.is_(False), Order.cancelled.is_(False)]
    groups = _order_groups(session, counted)
    codes = [code for code in session.execute(select(Redemption.code).where(
        Redemption.merchant_id == merchant_id, Redemption.code.is_not(None))).scalars() if code]
    # Only orders with a discount code at all are read (a small share of a shop's orders).
    revenue = type_coerce(Order.total - Order.refunded_amount, FixedDecimal())
    with_codes = [(amount, raw) for amount, raw in session.execute(
        select(revenue, Order.discount_codes)
        .where(*counted, Order.discount_codes.not_in(["", "[]"])))] if codes else []
    count, code_revenue = loyalty_code_orders(with_codes, codes)
    return OrderFigures(members=groups[True], non_members=groups[False],
                        loyalty_code_orders=count, loyalty_code_revenue=code_revenue)


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
        orders=_order_figures(session, merchant_id),
        tiers=_tier_shares(session, merchant_id),
        weeks=weekly_trends(recent, joined, now))
