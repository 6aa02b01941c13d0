"""Pure point and tier rules: plain dataclasses in, numbers out. Standard library only.

Every function here is deterministic and free of I/O so it can be tested exhaustively and
reused by the merchant's "preview" (what a rule change would do) without touching the ledger.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for type hints: at run time this module needs the standard library
    from integrations.base import Order, Refund

MAX_POINTS_PER_ORDER = 10**9


class RuleError(ValueError):
    """A rule or an input that the engine cannot work with; the message says which and why."""


class Rounding(StrEnum):
    DOWN = "down"
    NEAREST = "nearest"
    UP = "up"


class AwardTrigger(StrEnum):
    PAYMENT = "payment"
    FULFILMENT = "fulfilment"


class TierBasis(StrEnum):
    POINTS_EARNED = "points_earned"
    AMOUNT_SPENT = "amount_spent"
    ORDERS = "orders"


class TierWindow(StrEnum):
    LIFETIME = "lifetime"
    CALENDAR_YEAR = "calendar_year"
    ROLLING_12_MONTHS = "rolling_12_months"


_ROUNDING_MODES = {
    Rounding.DOWN: ROUND_FLOOR,
    Rounding.NEAREST: ROUND_HALF_UP,
    Rounding.UP: ROUND_CEILING,
}


def round_points(value: Decimal, rounding: Rounding) -> int:
    """Round a fractional number of points to a whole number the merchant's way."""
    return int(value.to_integral_value(rounding=_ROUNDING_MODES[rounding]))


@dataclass(frozen=True, slots=True)
class Multiplier:
    """Extra weight for lines of one product or one collection (2 = double points)."""

    target: str  # "product" | "collection"
    target_id: str
    factor: Decimal


@dataclass(frozen=True, slots=True)
class EarningPolicy:
    points_per_unit: Decimal = Decimal(1)
    rounding: Rounding = Rounding.DOWN
    award_on: AwardTrigger = AwardTrigger.PAYMENT
    pending_days: int = 0
    include_shipping: bool = False
    include_taxes: bool = False
    include_tips: bool = False
    include_gift_cards: bool = False
    award_test_orders: bool = False
    multipliers: tuple[Multiplier, ...] = ()
    # Orders placed before this moment earn nothing: the shop installed the program then and
    # chose not to award past orders. None: every order can earn.
    earning_starts: datetime | None = None

    def __post_init__(self) -> None:
        if self.points_per_unit < 0:
            raise RuleError("points_per_unit must not be negative")
        if self.pending_days < 0 or self.pending_days > 365:
            raise RuleError("pending_days must be between 0 and 365")
        for multiplier in self.multipliers:
            if multiplier.factor < 0:
                raise RuleError(f"multiplier for {multiplier.target} {multiplier.target_id} "
                                "must not be negative")

    def line_multiplier(self, product_id: str | None, collection_ids: Iterable[str]) -> Decimal:
        """A product multiplier wins over collection ones; among collections the largest wins."""
        collections = set(collection_ids)
        best: Decimal | None = None
        for multiplier in self.multipliers:
            if multiplier.target == "product" and multiplier.target_id == product_id:
                return multiplier.factor
            if multiplier.target == "collection" and multiplier.target_id in collections:
                best = multiplier.factor if best is None else max(best, multiplier.factor)
        return Decimal(1) if best is None else best


@dataclass(frozen=True, slots=True)
class AwardSnapshot:
    """The rules in force when an order was awarded, kept so reversals use them, not today's."""

    points: int
    points_per_unit: Decimal
    rounding: Rounding
    tier_multiplier: Decimal
    base_amount: Decimal
    weighted_amount: Decimal
    line_weights: dict[str, Decimal] = field(default_factory=dict)
    extras_included: Decimal = Decimal(0)
    # What each earning line contributed to the base: a refund never takes back more.
    line_amounts: dict[str, Decimal] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({
            "points": self.points,
            "points_per_unit": str(self.points_per_unit),
            "rounding": self.rounding.value,
            "tier_multiplier": str(self.tier_multiplier),
            "base_amount": str(self.base_amount),
            "weighted_amount": str(self.weighted_amount),
            "line_weights": {key: str(value) for key, value in self.line_weights.items()},
            "extras_included": str(self.extras_included),
            "line_amounts": {key: str(value) for key, value in self.line_amounts.items()},
        }, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> AwardSnapshot:
        data = json.loads(text)
        return cls(
            points=int(data["points"]),
            points_per_unit=Decimal(data["points_per_unit"]),
            rounding=Rounding(data["rounding"]),
            tier_multiplier=Decimal(data["tier_multiplier"]),
            base_amount=Decimal(data["base_amount"]),
            weighted_amount=Decimal(data["weighted_amount"]),
            line_weights={key: Decimal(value) for key, value in data["line_weights"].items()},
            extras_included=Decimal(data.get("extras_included", "0")),
            line_amounts={key: Decimal(value)
                          for key, value in data.get("line_amounts", {}).items()},
        )


def earning_lines(order: Order, policy: EarningPolicy) -> list[tuple[str, Decimal, Decimal]]:
    """(line id, net amount, multiplier) for every line that earns points."""
    lines = []
    for line in order.line_items:
        if line.is_gift_card and not policy.include_gift_cards:
            continue
        multiplier = policy.line_multiplier(line.product_id, line.collection_ids)
        lines.append((line.line_id, max(line.net_amount, Decimal(0)), multiplier))
    return lines


def included_extras(order: Order, policy: EarningPolicy) -> Decimal:
    """Shipping, taxes and tips that the merchant chose to count."""
    extras = Decimal(0)
    if policy.include_shipping:
        extras += order.shipping
    if policy.include_taxes:
        extras += order.taxes
    if policy.include_tips:
        extras += order.tips
    return extras


def base_amount(order: Order, policy: EarningPolicy) -> Decimal:
    """The money that earns points: lines after discounts plus the extras the merchant counts."""
    lines = earning_lines(order, policy)
    return sum((amount for _, amount, _ in lines), Decimal(0)) + included_extras(order, policy)


def compute_award(order: Order, policy: EarningPolicy,
                  tier_multiplier: Decimal = Decimal(1)) -> AwardSnapshot:
    """Points an order earns now, with the snapshot needed to reverse them later."""
    if tier_multiplier < 0:
        raise RuleError("tier multiplier must not be negative")
    lines = earning_lines(order, policy)
    extras = included_extras(order, policy)
    base = sum((amount for _, amount, _ in lines), Decimal(0)) + extras
    weighted = sum((amount * factor for _, amount, factor in lines), Decimal(0)) + extras
    points = round_points(weighted * policy.points_per_unit * tier_multiplier, policy.rounding)
    if points > MAX_POINTS_PER_ORDER:
        raise RuleError(f"order {order.order_id} would earn {points} points, "
                        f"more than the limit of {MAX_POINTS_PER_ORDER}")
    return AwardSnapshot(
        points=max(points, 0),
        points_per_unit=policy.points_per_unit,
        rounding=policy.rounding,
        tier_multiplier=tier_multiplier,
        base_amount=base,
        weighted_amount=weighted,
        line_weights={line_id: factor for line_id, _, factor in lines},
        extras_included=extras,
        line_amounts={line_id: amount for line_id, amount, _ in lines},
    )


@dataclass(frozen=True, slots=True)
class RefundedShare:
    """How much of an award's base the refunds so far took back, and at what weight."""

    base: Decimal
    weight: Decimal


def refunded_share(snapshot: AwardSnapshot, refunds: Iterable[Refund]) -> RefundedShare:
    """Cumulative over all refunds: each line is capped at what it contributed, the extras
    (shipping, taxes, tips the merchant counts) at what they contributed. A line refund's
    ``amount``, when larger than its lines, says how much of the extras it returned; without
    one, its ``shipping`` does. Amount-only refunds count at the order's average weight, less
    the shipping they say they returned."""
    per_line: dict[str, Decimal] = {}
    extras = Decimal(0)
    amounts = Decimal(0)
    for refund in refunds:
        if not refund.lines:
            # Shipping given back is an extra, not part of the base (a shipping-only refund
            # takes back no points unless the merchant counts shipping).
            amounts += max(refund.amount - refund.shipping, Decimal(0))
            extras += min(refund.shipping, refund.amount) if refund.amount else refund.shipping
            continue
        for line in refund.lines:
            if line.line_id in snapshot.line_weights:
                per_line[line.line_id] = per_line.get(line.line_id, Decimal(0)) + line.subtotal
        lines_money = refund.lines_subtotal
        extras += refund.amount - lines_money if refund.amount > lines_money else refund.shipping
    base = weight = Decimal(0)
    for line_id, refunded in per_line.items():
        capped = min(refunded, snapshot.line_amounts.get(line_id, refunded))
        base += capped
        weight += capped * snapshot.line_weights[line_id]
    extras = min(extras, snapshot.extras_included)
    base += extras + amounts
    weight += extras
    if amounts and snapshot.base_amount > 0:
        # Summed first, so that thirds of a total add up to the whole.
        weight += amounts * snapshot.weighted_amount / snapshot.base_amount
    return RefundedShare(base=min(base, snapshot.base_amount), weight=weight)


def points_to_reverse(snapshot: AwardSnapshot, refunds: Iterable[Refund]) -> int:
    """Total points that the given refunds take back, cumulatively.

    What the shopper keeps is recomputed on what they kept, with the award's own rules, so
    refunding everything, in any number of parts, takes back exactly what was awarded."""
    share = refunded_share(snapshot, refunds)
    if share.base >= snapshot.base_amount:
        return snapshot.points
    kept_weight = max(snapshot.weighted_amount - share.weight, Decimal(0))
    kept = round_points(kept_weight * snapshot.points_per_unit * snapshot.tier_multiplier,
                        snapshot.rounding)
    return snapshot.points - min(max(kept, 0), snapshot.points)


def award_is_due(order: Order, policy: EarningPolicy) -> tuple[bool, str]:
    """Whether an order earns now, and if not, why not.

    A cancelled order that was paid still earns: its cancellation then reverses the award in
    the same transaction, so the ledger tells the same story whichever delivery came first."""
    if order.test and not policy.award_test_orders:
        return False, "test orders do not earn"
    if policy.earning_starts is not None and order.created_at < policy.earning_starts:
        return False, "placed before the program started; past orders do not earn"
    if policy.award_on is AwardTrigger.FULFILMENT and not order.fulfilled:
        return False, "waiting for fulfilment"
    if policy.award_on is AwardTrigger.PAYMENT and not order.paid:
        return False, "waiting for payment"
    return True, "due"


def pending_until(awarded_at: datetime, policy: EarningPolicy) -> datetime | None:
    if policy.pending_days == 0:
        return None
    return awarded_at + timedelta(days=policy.pending_days)


# --- Tiers ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TierSpec:
    tier_id: int
    name: str
    threshold: Decimal
    retention_threshold: Decimal | None = None
    multiplier: Decimal = Decimal(1)
    entry_reward_points: int = 0

    @property
    def keep_threshold(self) -> Decimal:
        return self.threshold if self.retention_threshold is None else self.retention_threshold


@dataclass(frozen=True, slots=True)
class TierProgress:
    current: TierSpec | None
    next: TierSpec | None
    progress: Decimal
    remaining: Decimal


def window_start(window: TierWindow, now: datetime) -> datetime | None:
    """First instant that counts toward a tier, or None for a lifetime window."""
    if window is TierWindow.LIFETIME:
        return None
    if window is TierWindow.CALENDAR_YEAR:
        return datetime(now.year, 1, 1, tzinfo=now.tzinfo or UTC)
    # Twelve calendar months back (29 February falls back to the 28th).
    try:
        return now.replace(year=now.year - 1)
    except ValueError:
        return now.replace(year=now.year - 1, day=28)


def ordered_tiers(tiers: Sequence[TierSpec]) -> list[TierSpec]:
    return sorted(tiers, key=lambda tier: (tier.threshold, tier.tier_id))


def evaluate_tier(progress: Decimal, tiers: Sequence[TierSpec],
                  current_tier_id: int | None) -> TierSpec | None:
    """The tier a member should hold. Upgrades at entry thresholds; downgrades only below the
    current tier's retention threshold, and then to the best tier whose retention is still met."""
    ladder = ordered_tiers(tiers)
    qualified = None
    for tier in ladder:
        if progress >= tier.threshold:
            qualified = tier
    current = next((tier for tier in ladder if tier.tier_id == current_tier_id), None)
    if current is None:
        return qualified
    rank = {tier.tier_id: index for index, tier in enumerate(ladder)}
    if qualified is not None and rank[qualified.tier_id] >= rank[current.tier_id]:
        return qualified
    if progress >= current.keep_threshold:
        return current
    fallback = qualified
    for tier in ladder[: rank[current.tier_id]]:
        if progress >= tier.keep_threshold and (
            fallback is None or rank[tier.tier_id] > rank[fallback.tier_id]
        ):
            fallback = tier
    return fallback


def tier_progress(progress: Decimal, tiers: Sequence[TierSpec],
                  current: TierSpec | None) -> TierProgress:
    ladder = ordered_tiers(tiers)
    following = [tier for tier in ladder
                 if current is None or tier.threshold > current.threshold]
    upcoming = following[0] if following else None
    remaining = max(upcoming.threshold - progress, Decimal(0)) if upcoming else Decimal(0)
    return TierProgress(current=current, next=upcoming, progress=progress, remaining=remaining)
