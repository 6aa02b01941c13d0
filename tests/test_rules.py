"""The pure point and tier rules (plugin_server/loyalty/rules.py, DESIGN.md §4)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integrations.base import LineItem, Order, Refund, RefundLine
from plugin_server.loyalty.rules import (
    AwardSnapshot,
    AwardTrigger,
    EarningPolicy,
    Multiplier,
    Rounding,
    RuleError,
    TierSpec,
    TierWindow,
    award_is_due,
    base_amount,
    compute_award,
    evaluate_tier,
    pending_until,
    points_to_reverse,
    round_points,
    tier_progress,
    window_start,
)
from tests.support.builders import T0, line, order, refund

D = Decimal
PROPERTY = settings(max_examples=100, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def extras_order(**fields: object) -> Order:
    """40.00 line with 5.00 off, a 10.00 gift card, shipping 7, taxes 3.20, tips 2."""
    return order("1001", line("1", "20.00", quantity=2, discount="5.00"),
                 line("2", "10.00", product_id="gift", gift_card=True),
                 shipping=D("7.00"), taxes=D("3.20"), tips=D("2.00"), **fields)


# --- Base amount ------------------------------------------------------------------------


def test_base_amount_subtracts_discounts_and_excludes_extras_by_default() -> None:
    assert base_amount(extras_order(), EarningPolicy()) == D("35.00")


@pytest.mark.parametrize(("setting", "expected"), [
    ("include_shipping", D("42.00")),
    ("include_taxes", D("38.20")),
    ("include_tips", D("37.00")),
    ("include_gift_cards", D("45.00")),
])
def test_each_setting_includes_its_extra(setting: str, expected: Decimal) -> None:
    assert base_amount(extras_order(), EarningPolicy(**{setting: True})) == expected


def test_every_extra_included_together() -> None:
    policy = EarningPolicy(include_shipping=True, include_taxes=True, include_tips=True,
                           include_gift_cards=True)
    assert base_amount(extras_order(), policy) == D("57.20")
    assert compute_award(extras_order(), policy).points == 57


def test_award_is_decimal_exact_not_float() -> None:
    # 0.1 + 0.2 in float is 0.30000000000000004; three 0.10 lines at 10 points per unit
    # must give exactly 3 points rounding up, not 4.
    placed = order("1", line("1", "0.10"), line("2", "0.10"), line("3", "0.10"))
    policy = EarningPolicy(points_per_unit=D(10), rounding=Rounding.UP)
    assert compute_award(placed, policy).points == 3


# --- Rounding ---------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "rounding", "expected"), [
    ("10.50", Rounding.DOWN, 10),
    ("10.50", Rounding.NEAREST, 11),
    ("10.50", Rounding.UP, 11),
    ("10.49", Rounding.NEAREST, 10),
    ("10.4999999", Rounding.NEAREST, 10),
    ("10.99", Rounding.DOWN, 10),
    ("10.01", Rounding.UP, 11),
    ("10.00", Rounding.DOWN, 10),
    ("10.00", Rounding.NEAREST, 10),
    ("10.00", Rounding.UP, 10),
    ("0.0001", Rounding.UP, 1),
    ("0.0001", Rounding.DOWN, 0),
    ("11.50", Rounding.NEAREST, 12),  # half up, not banker's rounding
    ("12.50", Rounding.NEAREST, 13),
])
def test_round_points(value: str, rounding: Rounding, expected: int) -> None:
    assert round_points(D(value), rounding) == expected


@pytest.mark.parametrize(("rounding", "expected"), [
    (Rounding.DOWN, 10), (Rounding.NEAREST, 11), (Rounding.UP, 11)])
def test_order_of_10_50_rounds_the_merchants_way(rounding: Rounding, expected: int) -> None:
    placed = order("1", line("1", "10.50"))
    assert compute_award(placed, EarningPolicy(rounding=rounding)).points == expected


# --- Earning rates and multipliers ------------------------------------------------------


@pytest.mark.parametrize(("rate", "rounding", "expected"), [
    ("0.5", Rounding.DOWN, 16),     # 33.99 * 0.5 = 16.995
    ("0.5", Rounding.NEAREST, 17),
    ("0.1", Rounding.DOWN, 3),      # 3.399
    ("0.1", Rounding.UP, 4),
    ("2.5", Rounding.DOWN, 84),     # 84.975
    ("2.5", Rounding.NEAREST, 85),
    ("0", Rounding.UP, 0),
])
def test_fractional_points_per_unit(rate: str, rounding: Rounding, expected: int) -> None:
    placed = order("1", line("1", "33.99"))
    policy = EarningPolicy(points_per_unit=D(rate), rounding=rounding)
    assert compute_award(placed, policy).points == expected


def test_product_multiplier_beats_collection_multiplier() -> None:
    multipliers = (Multiplier("collection", "tea", D(3)), Multiplier("product", "p1", D(2)))
    policy = EarningPolicy(multipliers=multipliers)
    placed = order("1", line("1", "10.00", product_id="p1", collections=("tea",)))
    assert policy.line_multiplier("p1", ["tea"]) == D(2)
    assert compute_award(placed, policy).points == 20
    # Whatever order the rules are listed in.
    flipped = EarningPolicy(multipliers=tuple(reversed(multipliers)))
    assert compute_award(placed, flipped).points == 20


def test_largest_collection_multiplier_wins() -> None:
    policy = EarningPolicy(multipliers=(Multiplier("collection", "tea", D("1.5")),
                                        Multiplier("collection", "premium", D(3)),
                                        Multiplier("collection", "ceramics", D(5))))
    placed = order("1", line("1", "10.00", product_id="p9", collections=("tea", "premium")),
                   line("2", "10.00", product_id="p8"))
    assert policy.line_multiplier("p9", ["tea", "premium"]) == D(3)
    assert compute_award(placed, policy).points == 40  # 10 * 3 + 10 * 1


def test_zero_multiplier_excludes_a_product() -> None:
    policy = EarningPolicy(multipliers=(Multiplier("product", "p1", D(0)),))
    placed = order("1", line("1", "10.00", product_id="p1"), line("2", "5.00", product_id="p2"))
    assert compute_award(placed, policy).points == 5


def test_tier_multiplier_applies_to_the_whole_order() -> None:
    placed = order("1", line("1", "10.00", product_id="p1"), line("2", "10.00", product_id="p2"))
    policy = EarningPolicy(multipliers=(Multiplier("product", "p1", D(2)),),
                           points_per_unit=D("1.5"))
    snapshot = compute_award(placed, policy, tier_multiplier=D("1.25"))
    assert snapshot.points == 56  # (20 + 10) * 1.5 * 1.25 = 56.25
    assert snapshot.tier_multiplier == D("1.25")
    assert snapshot.weighted_amount == D(30)
    assert snapshot.base_amount == D(20)


def test_award_above_the_per_order_limit_is_refused() -> None:
    placed = order("1", line("1", "1000000000", quantity=2))
    with pytest.raises(RuleError, match="more than the limit"):
        compute_award(placed, EarningPolicy())


# --- When points are due ----------------------------------------------------------------


@pytest.mark.parametrize(("fields", "policy", "due", "why"), [
    ({}, EarningPolicy(), True, "due"),
    ({"paid": False}, EarningPolicy(), False, "waiting for payment"),
    ({"paid": False, "fulfilled": True}, EarningPolicy(), False, "waiting for payment"),
    ({"fulfilled": False},
     EarningPolicy(award_on=AwardTrigger.FULFILMENT), False, "waiting for fulfilment"),
    ({"paid": False, "fulfilled": True},
     EarningPolicy(award_on=AwardTrigger.FULFILMENT), True, "due"),
    ({"test": True}, EarningPolicy(), False, "test orders do not earn"),
    ({"test": True}, EarningPolicy(award_test_orders=True), True, "due"),
    # A paid order that was cancelled still earns; sync_order reverses it in the same breath.
    ({"cancelled": True}, EarningPolicy(), True, "due"),
    ({"cancelled": True, "paid": False}, EarningPolicy(), False, "waiting for payment"),
    ({"cancelled": True, "test": True}, EarningPolicy(), False, "test orders do not earn"),
])
def test_award_is_due(fields: dict[str, bool], policy: EarningPolicy, due: bool,
                      why: str) -> None:
    assert award_is_due(order("1", **fields), policy) == (due, why)


def test_pending_until() -> None:
    assert pending_until(T0, EarningPolicy()) is None
    assert pending_until(T0, EarningPolicy(pending_days=14)) == T0 + timedelta(days=14)
    assert pending_until(T0, EarningPolicy(pending_days=365)) == T0 + timedelta(days=365)


# --- Invalid arguments ------------------------------------------------------------------


@pytest.mark.parametrize(("make", "message"), [
    (lambda: EarningPolicy(points_per_unit=D("-0.01")), "points_per_unit must not be negative"),
    (lambda: EarningPolicy(pending_days=-1), "pending_days must be between 0 and 365"),
    (lambda: EarningPolicy(pending_days=366), "pending_days must be between 0 and 365"),
    (lambda: EarningPolicy(multipliers=(Multiplier("product", "p1", D(-1)),)),
     "multiplier for product p1 must not be negative"),
    (lambda: compute_award(order("1"), EarningPolicy(), D("-1")),
     "tier multiplier must not be negative"),
])
def test_invalid_arguments_raise_rule_error(make: Callable[[], object], message: str) -> None:
    with pytest.raises(RuleError, match=message):
        make()


def test_rule_error_is_a_value_error() -> None:
    assert issubclass(RuleError, ValueError)


# --- Reversals --------------------------------------------------------------------------


def test_partial_refund_reverses_in_proportion() -> None:
    placed = order("1001", line("1", "40.00"), line("2", "10.50"))
    snapshot = compute_award(placed, EarningPolicy())
    assert snapshot.points == 50
    assert points_to_reverse(snapshot, [refund("r1", ("1", 1, "40.00"))]) == 40
    assert points_to_reverse(snapshot, [refund("r1", ("2", 1, "10.50"))]) == 10
    both = [refund("r1", ("1", 1, "40.00")), refund("r2", ("2", 1, "10.50"))]
    assert points_to_reverse(snapshot, both) == 50
    assert points_to_reverse(snapshot, []) == 0


def test_refund_of_a_multiplied_line_reverses_its_weight() -> None:
    policy = EarningPolicy(multipliers=(Multiplier("product", "p1", D(3)),))
    placed = order("1", line("1", "10.00", product_id="p1"), line("2", "10.00", product_id="p2"))
    snapshot = compute_award(placed, policy)
    assert snapshot.points == 40
    assert points_to_reverse(snapshot, [refund("r1", ("1", 1, "10.00"))]) == 30
    assert points_to_reverse(snapshot, [refund("r1", ("2", 1, "10.00"))]) == 10


def test_amount_only_refund_uses_the_average_weight() -> None:
    policy = EarningPolicy(multipliers=(Multiplier("product", "p1", D(3)),))
    placed = order("1", line("1", "10.00", product_id="p1"), line("2", "10.00", product_id="p2"))
    snapshot = compute_award(placed, policy)
    assert points_to_reverse(snapshot, [refund("r1", amount="10.00")]) == 20
    assert points_to_reverse(snapshot, [refund("r1", amount="20.00")]) == 40
    assert points_to_reverse(snapshot, [refund("r1", amount="500.00")]) == 40


@pytest.mark.parametrize("gift_card", ["25.00", "30.00", "40.00"])
def test_refund_of_an_excluded_gift_card_reverses_nothing(gift_card: str) -> None:
    placed = order("1", line("1", "30.00"), line("2", gift_card, product_id="gc",
                                                  gift_card=True))
    snapshot = compute_award(placed, EarningPolicy())
    assert snapshot.points == 30
    assert points_to_reverse(snapshot, [refund("r1", ("2", 1, gift_card))]) == 0


def test_gift_card_refund_does_not_count_toward_the_earning_lines() -> None:
    placed = order("1", line("1", "30.00"), line("2", "25.00", product_id="gc", gift_card=True))
    snapshot = compute_award(placed, EarningPolicy())
    refunds = [refund("r1", ("2", 1, "25.00")), refund("r2", ("1", 1, "5.00"))]
    assert points_to_reverse(snapshot, refunds) == 5


def test_reversal_uses_the_award_snapshot_not_todays_policy() -> None:
    placed = order("1001", line("1", "40.00"), line("2", "10.50"))
    then = EarningPolicy(points_per_unit=D(2), rounding=Rounding.UP,
                         multipliers=(Multiplier("product", "p1", D(2)),))
    snapshot = compute_award(placed, then, tier_multiplier=D("1.5"))
    assert snapshot.points == 303  # (40 + 10.50) * 2 (product) * 2 (rate) * 1.5 (tier)
    stored = AwardSnapshot.from_json(snapshot.to_json())
    partial = [refund("r1", ("1", 1, "40.00"))]
    # The shopper keeps 10.50 * 2 * 2 * 1.5 = 63 points, so 240 are taken back ...
    assert points_to_reverse(stored, partial) == 240
    # ... whatever the merchant's program says today.
    today = EarningPolicy(points_per_unit=D("0.1"), rounding=Rounding.DOWN)
    assert compute_award(placed, today).points == 5
    assert points_to_reverse(stored, partial) == 240
    assert points_to_reverse(stored, [*partial, refund("r2", ("2", 1, "10.50"))]) == 303


def test_included_shipping_is_reversed_with_its_refund() -> None:
    placed = order("1", line("1", "20.00"), shipping=D("5.00"))
    snapshot = compute_award(placed, EarningPolicy(include_shipping=True))
    assert snapshot.points == 25
    full = Refund("r1", "1", T0, lines=(RefundLine("1", 1, D("20.00")),), shipping=D("5.00"))
    assert points_to_reverse(snapshot, [full]) == 25


def test_amount_only_refunds_in_thirds_reverse_everything() -> None:
    """A 3.00 order with a double-points line, rounded up: 4 points. Refunding 1.00 three
    times is a full refund and must take all 4 back (L5)."""
    policy = EarningPolicy(rounding=Rounding.UP, multipliers=(Multiplier("product", "p1", D(2)),))
    placed = order("1", line("1", "1.00", product_id="p1"), line("2", "2.00", product_id="p2"))
    snapshot = compute_award(placed, policy)
    assert snapshot.points == 4
    thirds = [refund(f"r{i}", amount="1.00") for i in range(3)]
    assert points_to_reverse(snapshot, thirds) == 4


def test_even_amount_only_splits_reverse_everything() -> None:
    """Every small two-line order, split into 2-7 equal amount-only refunds: all reversed."""
    failures = []
    prices = ("1.00", "2.00", "3.00", "7.00", "10.50")
    for first, second in itertools.product(prices, prices):
        for factor, rounding, rate, tier in itertools.product(
                (D(2), D("1.5"), D("0.5")), list(Rounding), (D(1), D("1.5")), (D(1), D("1.25"))):
            policy = EarningPolicy(points_per_unit=rate, rounding=rounding,
                                   multipliers=(Multiplier("product", "p1", factor),))
            placed = order("1", line("1", first, product_id="p1"),
                           line("2", second, product_id="p2"))
            snapshot = compute_award(placed, policy, tier)
            cents = int(snapshot.base_amount * 100)
            for parts in range(2, 8):
                amounts = [cents // parts + (1 if i < cents % parts else 0) for i in range(parts)]
                refunds = [refund(f"r{i}", amount=str(D(a) / 100)) for i, a in enumerate(amounts)]
                got = points_to_reverse(snapshot, refunds)
                if got != snapshot.points:
                    failures.append(f"{first}+{second} x{factor} {rounding} rate {rate} tier "
                                    f"{tier} in {parts}: {got} of {snapshot.points}")
    assert failures == [], f"{len(failures)} full refunds not fully reversed, e.g. {failures[:5]}"


def test_award_snapshot_json_round_trip() -> None:
    policy = EarningPolicy(points_per_unit=D("1.25"), rounding=Rounding.NEAREST,
                           include_shipping=True,
                           multipliers=(Multiplier("collection", "tea", D("1.5")),))
    placed = order("1", line("1", "12.34", collections=("tea",)), line("2", "0.99"),
                   shipping=D("4.50"))
    snapshot = compute_award(placed, policy, D("1.1"))
    again = AwardSnapshot.from_json(snapshot.to_json())
    assert again == snapshot
    assert isinstance(again.points_per_unit, Decimal)
    assert again.line_weights == {"1": D("1.5"), "2": D(1)}
    assert again.extras_included == D("4.50")
    assert again.rounding is Rounding.NEAREST
    assert again.to_json() == snapshot.to_json()


def test_award_snapshot_from_json_without_extras_defaults_to_zero() -> None:
    snapshot = compute_award(order("1"), EarningPolicy())
    data = json.loads(snapshot.to_json())
    del data["extras_included"]
    assert AwardSnapshot.from_json(json.dumps(data)).extras_included == D(0)


# --- Reversal properties (Hypothesis) ---------------------------------------------------

MULTIPLIERS = (Multiplier("product", "p1", D(2)), Multiplier("product", "p2", D(0)),
               Multiplier("collection", "c1", D("1.5")), Multiplier("collection", "c2", D(3)),
               Multiplier("product", "p3", D("0.5")))


@st.composite
def orders_and_policies(draw: st.DrawFn, small: bool = False
                        ) -> tuple[Order, EarningPolicy, Decimal]:
    """An order, a policy and a tier multiplier. ``small``: a few round prices, which often
    make the base a multiple of 3 or 7, ratios that do not terminate in decimal."""
    count = draw(st.integers(1, 3 if small else 4))
    lines = []
    for index in range(count):
        price = draw(st.sampled_from([100, 200, 300, 700, 1050]) if small
                     else st.one_of(st.sampled_from([0, 1, 100, 200, 300, 700, 1050]),
                                    st.integers(0, 50_000)))
        quantity = draw(st.integers(1, 4))
        discount = draw(st.integers(0, price * quantity))
        lines.append(LineItem(
            line_id=str(index + 1), quantity=quantity, unit_price=D(price) / 100,
            total_discount=D(discount) / 100,
            product_id=draw(st.sampled_from(["p1", "p2", "p3", "p4"])),
            collection_ids=tuple(draw(st.sets(st.sampled_from(["c1", "c2", "c3"])))),
            is_gift_card=draw(st.booleans()) and index > 0,
        ))
    policy = EarningPolicy(
        points_per_unit=draw(st.sampled_from([D(1), D("0.5"), D("1.5"), D(2), D("0.1"),
                                              D(3), D(10), D("0.25")])),
        rounding=draw(st.sampled_from(list(Rounding))),
        include_shipping=draw(st.booleans()),
        include_gift_cards=draw(st.booleans()),
        multipliers=tuple(draw(st.lists(st.sampled_from(MULTIPLIERS), max_size=4,
                                        unique=True))),
    )
    shipping = D(draw(st.integers(0, 2_000))) / 100
    placed = order("1", *lines, shipping=shipping)
    tier = draw(st.sampled_from([D(1), D("1.25"), D("1.5"), D(2)]))
    return placed, policy, tier


def split_cents(draw: st.DrawFn, cents: int, parts: int) -> list[int]:
    cuts = sorted(draw(st.lists(st.integers(0, cents), min_size=parts - 1,
                                max_size=parts - 1)))
    bounds = [0, *cuts, cents]
    return [bounds[i + 1] - bounds[i] for i in range(parts)]


@st.composite
def full_refund_by_lines(draw: st.DrawFn, placed: Order) -> list[Refund]:
    """Every line and the shipping refunded, spread over 1-4 refunds in any shape."""
    parts = draw(st.integers(1, 4))
    shares: list[list[RefundLine]] = [[] for _ in range(parts)]
    for item in placed.line_items:
        cents = int(item.net_amount * 100)
        for index, amount in enumerate(split_cents(draw, cents, parts)):
            if amount or draw(st.booleans()):
                shares[index].append(RefundLine(item.line_id, 1, D(amount) / 100))
    shipping = split_cents(draw, int(placed.shipping * 100), parts)
    refunds = [Refund(f"r{i}", placed.order_id, T0, lines=tuple(shares[i]),
                      shipping=D(shipping[i]) / 100) for i in range(parts)]
    # A refund with no lines would be an amount-only refund of 0: keep it a line refund.
    refunds = [r if r.lines else replace(r, lines=(RefundLine("1", 0, D(0)),)) for r in refunds]
    return draw(st.permutations(refunds))


@st.composite
def full_refund_by_amounts(draw: st.DrawFn, total: Decimal) -> list[Refund]:
    parts = draw(st.integers(1, 5))
    cents = int(total * 100)
    if draw(st.booleans()):
        amounts = split_cents(draw, cents, parts)
    else:  # as even as cents allow: 1/3, 1/7 ... of the base
        amounts = [cents // parts + (1 if i < cents % parts else 0) for i in range(parts)]
    return [Refund(f"r{i}", "1", T0, amount=D(cents) / 100) for i, cents in enumerate(amounts)]


@PROPERTY
@given(data=st.data(), setup=orders_and_policies())
def test_any_split_of_a_full_line_refund_reverses_exactly_the_award(
        data: st.DataObject, setup: tuple[Order, EarningPolicy, Decimal]) -> None:
    placed, policy, tier = setup
    snapshot = AwardSnapshot.from_json(compute_award(placed, policy, tier).to_json())
    refunds = data.draw(full_refund_by_lines(placed))
    assert points_to_reverse(snapshot, refunds) == snapshot.points


@PROPERTY
@given(data=st.data(), setup=orders_and_policies(small=True))
def test_any_split_of_a_full_amount_refund_reverses_exactly_the_award(
        data: st.DataObject, setup: tuple[Order, EarningPolicy, Decimal]) -> None:
    placed, policy, tier = setup
    snapshot = compute_award(placed, policy, tier)
    refunds = data.draw(full_refund_by_amounts(snapshot.base_amount))
    assert points_to_reverse(snapshot, refunds) == snapshot.points


@st.composite
def full_refund_mixed(draw: st.DrawFn, placed: Order, snapshot: AwardSnapshot) -> list[Refund]:
    """Some earning lines refunded by line, the rest of the base by amount-only refunds."""
    by_line = [item for item in placed.line_items
               if item.line_id in snapshot.line_weights and draw(st.booleans())]
    refunds = [Refund(f"l{item.line_id}", "1", T0,
                      lines=(RefundLine(item.line_id, item.quantity, item.net_amount),))
               for item in by_line]
    rest = snapshot.base_amount - sum((item.net_amount for item in by_line), D(0))
    amounts = split_cents(draw, int(rest * 100), draw(st.integers(1, 4)))
    refunds += [Refund(f"a{i}", "1", T0, amount=D(cents) / 100) for i, cents in
                enumerate(amounts)]
    return draw(st.permutations(refunds))


@PROPERTY
@given(data=st.data(), setup=orders_and_policies(small=True))
def test_full_refund_mixing_lines_and_amounts_reverses_exactly_the_award(
        data: st.DataObject, setup: tuple[Order, EarningPolicy, Decimal]) -> None:
    placed, policy, tier = setup
    snapshot = compute_award(placed, policy, tier)
    refunds = data.draw(full_refund_mixed(placed, snapshot))
    assert points_to_reverse(snapshot, refunds) == snapshot.points


@PROPERTY
@given(data=st.data(), setup=orders_and_policies())
def test_refunding_lines_that_earned_nothing_reverses_nothing(
        data: st.DataObject, setup: tuple[Order, EarningPolicy, Decimal]) -> None:
    placed, policy, tier = setup
    snapshot = compute_award(placed, replace(policy, include_gift_cards=False), tier)
    gift_cards = [item for item in placed.line_items if item.is_gift_card]
    refunds = [Refund(f"g{item.line_id}", "1", T0,
                      lines=(RefundLine(item.line_id, item.quantity, item.net_amount),))
               for item in gift_cards]
    assert points_to_reverse(snapshot, data.draw(st.permutations(refunds))) == 0


@PROPERTY
@given(data=st.data(), setup=orders_and_policies())
def test_reversal_grows_with_refunds_and_never_exceeds_the_award(
        data: st.DataObject, setup: tuple[Order, EarningPolicy, Decimal]) -> None:
    placed, policy, tier = setup
    snapshot = compute_award(placed, policy, tier)
    # Any refunds at all, partial or over-generous, lines or amounts.
    line_ids = [item.line_id for item in placed.line_items] + ["unknown"]
    refunds = data.draw(st.lists(st.one_of(
        st.builds(lambda lid, cents: Refund("r", "1", T0, lines=(RefundLine(lid, 1,
                                                                          D(cents) / 100),)),
                  st.sampled_from(line_ids), st.integers(0, 60_000)),
        st.builds(lambda cents: Refund("r", "1", T0, amount=D(cents) / 100),
                  st.integers(0, 60_000)),
    ), max_size=6))
    previous = 0
    for count in range(len(refunds) + 1):
        reversed_points = points_to_reverse(snapshot, refunds[:count])
        assert previous <= reversed_points <= snapshot.points
        previous = reversed_points


# --- Tiers ------------------------------------------------------------------------------

BRONZE = TierSpec(1, "Bronze", D(0))
SILVER = TierSpec(2, "Silver", D(300), retention_threshold=D(250), multiplier=D("1.25"))
GOLD = TierSpec(3, "Gold", D(800), retention_threshold=D(700), multiplier=D("1.5"))
LADDER = (GOLD, BRONZE, SILVER)  # deliberately unsorted


@pytest.mark.parametrize(("progress", "current", "expected"), [
    # New members and upgrades at the entry thresholds.
    ("0", None, BRONZE),
    ("299.99", None, BRONZE),
    ("300", None, SILVER),
    ("300", 1, SILVER),
    ("800", 1, GOLD),
    ("800", 2, GOLD),
    ("5000", None, GOLD),
    # Kept while at or above the retention threshold.
    ("799", 3, GOLD),
    ("700", 3, GOLD),
    ("299", 2, SILVER),
    ("250", 2, SILVER),
    # Below retention: the best tier whose retention is still met.
    ("699.99", 3, SILVER),
    ("260", 3, SILVER),
    ("249.99", 3, BRONZE),
    ("249.99", 2, BRONZE),
    ("0", 2, BRONZE),
])
def test_evaluate_tier(progress: str, current: int | None, expected: TierSpec) -> None:
    assert evaluate_tier(D(progress), LADDER, current) == expected


def test_evaluate_tier_without_a_reachable_tier() -> None:
    ladder = (TierSpec(1, "Silver", D(100), retention_threshold=D(80)),)
    assert evaluate_tier(D(50), ladder, None) is None
    assert evaluate_tier(D(90), ladder, 1) == ladder[0]
    assert evaluate_tier(D(79), ladder, 1) is None
    assert evaluate_tier(D(10), (), None) is None


def test_evaluate_tier_with_a_tier_that_no_longer_exists() -> None:
    assert evaluate_tier(D(400), LADDER, 99) == SILVER


def test_keep_threshold_defaults_to_the_entry_threshold() -> None:
    ladder = (BRONZE, TierSpec(2, "Silver", D(300)))
    assert evaluate_tier(D(300), ladder, 2).name == "Silver"  # type: ignore[union-attr]
    assert evaluate_tier(D("299.99"), ladder, 2) == BRONZE


@pytest.mark.parametrize(("progress", "current", "following", "remaining"), [
    ("0", None, BRONZE, "0"),
    ("120", BRONZE, SILVER, "180"),
    ("299.5", BRONZE, SILVER, "0.5"),
    ("310", SILVER, GOLD, "490"),
    ("720", GOLD, None, "0"),
    ("5000", GOLD, None, "0"),
    ("900", SILVER, GOLD, "0"),  # not re-evaluated yet: nothing left to earn
])
def test_tier_progress(progress: str, current: TierSpec | None, following: TierSpec | None,
                       remaining: str) -> None:
    result = tier_progress(D(progress), LADDER, current)
    assert result.current == current
    assert result.next == following
    assert result.progress == D(progress)
    assert result.remaining == D(remaining)


def test_window_start() -> None:
    now = datetime(2025, 6, 15, 10, 30, tzinfo=UTC)
    assert window_start(TierWindow.LIFETIME, now) is None
    assert window_start(TierWindow.CALENDAR_YEAR, now) == datetime(2025, 1, 1, tzinfo=UTC)
    assert window_start(TierWindow.ROLLING_12_MONTHS, now) == datetime(2024, 6, 15, 10, 30,
                                                                       tzinfo=UTC)


def test_calendar_year_starts_in_the_given_time_zone() -> None:
    tokyo = timezone(timedelta(hours=9))
    now = datetime(2026, 1, 1, 0, 30, tzinfo=tokyo)
    start = window_start(TierWindow.CALENDAR_YEAR, now)
    assert start == datetime(2026, 1, 1, tzinfo=tokyo)
    assert start is not None and start <= now


def test_a_shipping_only_refund_takes_back_no_points() -> None:
    """Money given back for shipping is not part of the base (unless shipping counts)."""
    bought = order("1", line("1", "100.00"), shipping=Decimal("20.00"),
                   total=Decimal("120.00"))
    snapshot = compute_award(bought, EarningPolicy())
    assert snapshot.points == 100
    shipping_back = Refund(refund_id="r1", order_id="1", created_at=T0,
                           amount=Decimal("20.00"), shipping=Decimal("20.00"))
    assert points_to_reverse(snapshot, [shipping_back]) == 0
    counted = compute_award(bought, EarningPolicy(include_shipping=True))
    assert counted.points == 120
    assert points_to_reverse(counted, [shipping_back]) == 20
    # An amount-only refund of 50 of which 20 was shipping takes back 30 of the base.
    partial = replace(shipping_back, amount=Decimal("50.00"))
    assert points_to_reverse(snapshot, [partial]) == 30
