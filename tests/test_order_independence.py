"""L5 (refund symmetry) and L6 (order independence) with Hypothesis.

A generated order (1-4 lines, product and collection multipliers, the merchant's rounding and
rate) goes through its life on the platform: created unpaid, updated, paid, refunded in up to
three parts (some units of some lines, or amounts), maybe cancelled, and the last event is
delivered twice. Those deliveries are replayed in a generated order to a fresh merchant, and
the end state must be the one that delivering them in time order gives.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from integrations.base import LineItem, Order, Refund, RefundLine
from plugin_server.db import Database, unit_of_work
from plugin_server.loyalty.audit import ledger_differences
from plugin_server.loyalty.orders import sync_order
from plugin_server.models import LedgerEntry, Member
from plugin_server.models import Order as OrderRow
from plugin_server.runtime import Runtime
from tests.conftest import seed_merchant
from tests.support.builders import T0, line, order, refund
from tests.support.program import add_multipliers, set_program

EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ORDER_ID = "5001"


@dataclass(frozen=True)
class Story:
    """One order's life on the platform, and the merchant's program it is earned under."""

    lines: tuple[LineItem, ...]
    refunds: tuple[Refund, ...]
    cancelled: bool
    rounding: str
    points_per_unit: Decimal

    def deliveries(self) -> dict[str, Order]:
        """Every webhook the platform sends for the order, in time order, by name."""
        created = order(ORDER_ID, *self.lines, paid=False, updated=T0)
        events = {
            "orders/create": created,
            "orders/updated (before payment)": replace(created,
                                                       updated_at=T0 + timedelta(minutes=30)),
            "orders/paid": replace(created, paid=True, updated_at=T0 + timedelta(hours=1)),
        }
        for count, given_back in enumerate(self.refunds, start=1):
            events[f"refunds/create {given_back.refund_id}"] = replace(
                created, paid=True, refunds=self.refunds[:count],
                updated_at=given_back.created_at + timedelta(minutes=1))
        if self.cancelled:
            events["orders/cancelled"] = replace(
                created, paid=True, cancelled=True, refunds=self.refunds,
                updated_at=T0 + timedelta(days=len(self.refunds) + 1, hours=1))
        last = list(events.values())[-1]
        events["redelivery of the last event"] = last
        return events

    @property
    def refunds_everything(self) -> bool:
        money = sum((refund.lines_subtotal if refund.lines else refund.amount
                     for refund in self.refunds), Decimal(0))
        return money == sum((item.net_amount for item in self.lines), Decimal(0))


@dataclass(frozen=True)
class EndState:
    balance: int
    pending: int
    awarded: int
    reversed: int
    entries_net: int


line_specs = st.tuples(st.sampled_from(["p1", "p2", "p3"]), st.booleans(),
                       st.integers(min_value=1, max_value=5000),
                       st.integers(min_value=1, max_value=3))


@st.composite
def stories(draw: st.DrawFn, *, cancelled: bool, refund_everything: bool | None = None) -> Story:
    """Refunds split the order's units between up to three refunds (the rest is kept). A
    refund is either "lines" (the units it got, at their price) or "amount": amount refunds
    share the money of the units given to them, cut at random cent boundaries."""
    specs = draw(st.lists(line_specs, min_size=1, max_size=4), label="lines")
    lines = tuple(line(str(index + 1), str(Decimal(cents) / 100), quantity,
                       product_id=product, collections=("sale",) if sale else ())
                  for index, (product, sale, cents, quantity) in enumerate(specs))
    count = draw(st.integers(1 if refund_everything else 0, 3), label="refunds")
    everything = (count > 0 and draw(st.booleans(), label="refund everything")
                  if refund_everything is None else refund_everything)
    kinds = draw(st.lists(st.sampled_from(["lines", "amount"]), min_size=count,
                          max_size=count), label="refund kinds")
    units = [item for item in lines for _ in range(item.quantity)]
    owners = draw(st.lists(st.integers(0, count - 1 if everything else count),
                           min_size=len(units), max_size=len(units)), label="unit owners")
    taken_lines: list[Counter[str]] = [Counter() for _ in range(count)]
    amount_cents = 0
    for item, owner in zip(units, owners, strict=True):
        if owner == count:
            continue  # kept by the shopper
        if kinds[owner] == "lines":
            taken_lines[owner][item.line_id] += 1
        else:
            amount_cents += int(item.unit_price * 100)
    amount_refunds = [index for index, kind in enumerate(kinds) if kind == "amount"]
    cuts = sorted(draw(st.lists(st.integers(0, amount_cents),
                                min_size=max(len(amount_refunds) - 1, 0),
                                max_size=max(len(amount_refunds) - 1, 0)), label="cuts"))
    shares = [high - low for low, high in
              zip([0, *cuts], [*cuts, amount_cents], strict=True)]
    amounts = dict(zip(amount_refunds, shares, strict=True)) if amount_refunds else {}
    prices = {item.line_id: item.unit_price for item in lines}
    refunds = tuple(
        Refund(f"r{index + 1}", ORDER_ID, T0 + timedelta(days=index + 1),
               lines=tuple(RefundLine(line_id, units_taken, prices[line_id] * units_taken)
                           for line_id, units_taken in sorted(taken_lines[index].items())),
               amount=Decimal(amounts.get(index, 0)) / 100)
        for index in range(count))
    return Story(lines, refunds, cancelled,
                 rounding=draw(st.sampled_from(["down", "nearest", "up"]), label="rounding"),
                 points_per_unit=draw(st.sampled_from([Decimal(1), Decimal(2),
                                                       Decimal("0.5"), Decimal("1.25")]),
                                      label="points per unit"))


def fresh_merchant(database: Database, story: Story) -> int:
    merchant_id = seed_merchant(database, shop=f"l6-{uuid.uuid4().hex}.example")
    with unit_of_work(database) as session:
        set_program(session, merchant_id, rounding=story.rounding,
                    points_per_unit=story.points_per_unit)
        add_multipliers(session, merchant_id, ("product", "p2", 2), ("product", "p3", 0),
                        ("collection", "sale", "0.5"))
    return merchant_id


def deliver_all(database: Database, story: Story, names: list[str]) -> EndState:
    """Deliver the story's events in the given order to a new merchant; its end state."""
    merchant_id = fresh_merchant(database, story)
    events = story.deliveries()
    for name in names:
        with unit_of_work(database) as session:
            sync_order(session, merchant_id, events[name])
    with unit_of_work(database) as session:
        assert ledger_differences(session, merchant_id) == []
        member = session.execute(select(Member).where(Member.merchant_id == merchant_id)
                                 ).scalar_one()
        row = session.execute(select(OrderRow).where(OrderRow.merchant_id == merchant_id)
                              ).scalar_one()
        net = session.execute(
            select(func.coalesce(func.sum(LedgerEntry.points + LedgerEntry.pending_points), 0))
            .where(LedgerEntry.order_id == row.id)).scalar_one()
        awards = session.execute(select(func.count()).where(
            LedgerEntry.order_id == row.id, LedgerEntry.kind == "award")).scalar_one()
        assert awards <= 1, f"{awards} award entries for one order (L1)"
        return EndState(member.balance, member.pending, row.awarded_points, row.reversed_points,
                        int(net))


def with_delivery_order(story_strategy: st.SearchStrategy[Story]
                        ) -> st.SearchStrategy[tuple[Story, list[str]]]:
    """A story and one permutation of its deliveries."""
    return story_strategy.flatmap(
        lambda story: st.tuples(st.just(story), st.permutations(list(story.deliveries()))))


IN_TIME_ORDER = ["orders/create", "orders/updated (before payment)", "orders/paid"]


@EXAMPLES
@given(case=with_delivery_order(stories(cancelled=False)))
def test_updates_and_refunds_in_any_delivery_order_end_in_the_same_state(
        any_runtime: Runtime, case: tuple[Story, list[str]]) -> None:
    story, shuffled = case
    in_time_order = deliver_all(any_runtime.database, story, list(story.deliveries()))
    assert deliver_all(any_runtime.database, story, shuffled) == in_time_order


@EXAMPLES
@given(case=with_delivery_order(stories(cancelled=True)))
@example(case=(  # the cancel webhook arrives before the paid one
    Story(lines=(line("1", "10.00"),), refunds=(), cancelled=True, rounding="down",
          points_per_unit=Decimal(1)),
    ["orders/cancelled", *IN_TIME_ORDER, "redelivery of the last event"]))
def test_cancel_in_any_delivery_order_ends_in_the_same_state(
        any_runtime: Runtime, case: tuple[Story, list[str]]) -> None:
    story, shuffled = case
    in_time_order = deliver_all(any_runtime.database, story, list(story.deliveries()))
    assert (in_time_order.balance, in_time_order.pending, in_time_order.entries_net) == (0, 0, 0)
    reordered = deliver_all(any_runtime.database, story, shuffled)
    assert (reordered.balance, reordered.pending, reordered.entries_net) == (0, 0, 0)
    # The order's own record must not depend on the delivery order either: it was paid (and
    # so awarded) before it was cancelled, whichever webhook arrived first.
    assert (reordered.awarded, reordered.reversed) == (
        in_time_order.awarded, in_time_order.reversed), (
        f"delivered as {shuffled}: awarded/reversed {reordered.awarded}/{reordered.reversed}, "
        f"in time order {in_time_order.awarded}/{in_time_order.reversed} (L6)")


@settings(EXAMPLES, max_examples=80)
@given(case=with_delivery_order(stories(cancelled=False, refund_everything=True)))
@example(case=(  # one line refunded, then the rest of the money as an amount-only refund
    Story(lines=(line("1", "10.00", product_id="p2"), line("2", "10.00")),
          refunds=(refund("r1", ("2", 1, "10.00"), order_id=ORDER_ID),
                   refund("r2", amount="10.00", at=T0 + timedelta(days=2), order_id=ORDER_ID)),
          cancelled=False, rounding="down", points_per_unit=Decimal(1)),
    [*IN_TIME_ORDER, "refunds/create r1", "refunds/create r2", "redelivery of the last event"]))
def test_refunding_everything_in_any_split_nets_zero(
        any_runtime: Runtime, case: tuple[Story, list[str]]) -> None:
    story, shuffled = case
    assert story.refunds_everything
    end = deliver_all(any_runtime.database, story, shuffled)
    assert end == EndState(0, 0, end.awarded, end.awarded, 0), (
        f"refunding everything in {len(story.refunds)} part(s) "
        f"({', '.join('lines' if r.lines else 'amount' for r in story.refunds)}) left "
        f"{end.awarded - end.reversed} of {end.awarded} points (L5)")
