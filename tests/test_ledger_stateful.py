"""The ledger as a Hypothesis state machine (L1, L2, L4, L5, L6 at the service layer).

Orders arrive new, duplicated, stale and out of order; they are refunded in parts and
cancelled; points are redeemed (hold + confirm, or ``redeem_reward``), voided and adjusted.
After every step the database must agree with its own entries (L4), hold at most one award
per order (L1), net zero for orders that were fully refunded or cancelled (L5), and match a
model kept here with exact fractions from the rules in DESIGN.md section 4.

Each run gets a fresh merchant in a database made for the test (a SQLite file, and a
PostgreSQL database when LOYALTY_TEST_POSTGRES_URL is set), so runs never see each other.
"""

from __future__ import annotations

import math
import os
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import cached_property
from typing import Any, ClassVar

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select

from integrations.base import IssuedCode, LineItem, Order, Refund, RefundLine
from plugin_server.db import Database, unit_of_work
from plugin_server.loyalty.adjustments import adjust_points
from plugin_server.loyalty.audit import ledger_differences
from plugin_server.loyalty.errors import InsufficientPoints, InvalidState
from plugin_server.loyalty.members import member_for_customer
from plugin_server.loyalty.orders import OrderOutcome, sync_order
from plugin_server.loyalty.redeem import redeem_reward
from plugin_server.loyalty.rewards import (
    confirm_redemption,
    generate_code,
    hold_redemption,
    void_redemption,
)
from plugin_server.models import EarningRule, LedgerEntry, Member, Redemption, Reward
from plugin_server.models import Order as OrderRow
from plugin_server.runtime import Runtime
from tests.conftest import seed_merchant
from tests.support.builders import T0, customer, line, order

# Every step is real database work (~20-50 ms), so shrinking a failure would take minutes;
# by default a failing run prints its whole (at most 25-step) history instead. Set
# LOYALTY_HYPOTHESIS_SHRINK=1 to get a minimal failing example.
STATEFUL_SETTINGS = settings(
    max_examples=30,
    stateful_step_count=25,
    deadline=None,
    derandomize=True,
    report_multiple_bugs=False,
    phases=[Phase.explicit, Phase.reuse, Phase.generate]
    + ([Phase.shrink] if os.environ.get("LOYALTY_HYPOTHESIS_SHRINK") else []),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# (key, platform customer id, email): two account holders and one guest.
SHOPPERS = (("ann", "c-ann", "ann@example.com"), ("bob", "c-bob", "bob@example.com"),
            ("gus", None, "gus@example.com"))
SHOPPER_KEYS = tuple(key for key, _, _ in SHOPPERS)
REWARD_COSTS = (15, 40)


def line_factor(item: LineItem) -> Fraction:
    """The merchant's multipliers set up in ``__init__``: a product multiplier (p2 x2, p3 x0)
    wins over the collection one (sale x0.5)."""
    if item.product_id == "p2":
        return Fraction(2)
    if item.product_id == "p3":
        return Fraction(0)
    if "sale" in item.collection_ids:
        return Fraction(1, 2)
    return Fraction(1)


def refund_money(refund: Refund) -> Fraction:
    return Fraction(refund.lines_subtotal if refund.lines else refund.amount)


@dataclass
class OrderModel:
    order_id: str
    shopper: str
    lines: tuple[LineItem, ...]
    versions: list[Order] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)
    paid: bool = False
    cancelled: bool = False
    awarded: bool = False  # paid while not cancelled: the engine has awarded the order

    @property
    def latest(self) -> Order:
        return max(self.versions, key=lambda version: version.updated_at)

    @cached_property
    def base(self) -> Fraction:
        return sum((Fraction(item.net_amount) for item in self.lines), Fraction(0))

    @cached_property
    def weighted(self) -> Fraction:
        return sum((Fraction(item.net_amount) * line_factor(item) for item in self.lines),
                   Fraction(0))

    @cached_property
    def weights(self) -> dict[str, Fraction]:
        return {item.line_id: line_factor(item) for item in self.lines}

    @property
    def money_left(self) -> Fraction:
        return self.base - sum((refund_money(refund) for refund in self.refunds), Fraction(0))

    def units_left(self, line_id: str) -> int:
        item = next(item for item in self.lines if item.line_id == line_id)
        taken = sum(refund_line.quantity for refund in self.refunds
                    for refund_line in refund.lines if refund_line.line_id == line_id)
        return item.quantity - taken

    @property
    def fully_refunded(self) -> bool:
        return bool(self.refunds) and self.money_left <= 0

    @property
    def full_points(self) -> int:
        return math.floor(self.weighted)

    @property
    def points(self) -> int:
        return self.full_points if self.awarded else 0

    @property
    def paid_and_cancelled(self) -> bool:
        return self.paid and self.cancelled

    @property
    def reversed(self) -> int:
        """Refunds take back what keeping the rest would not have earned, at the award's
        weights (line refunds at their line's weight, amount-only refunds at the order's
        average weight); refunding everything or cancelling takes back everything (L5)."""
        if not self.awarded:
            return 0
        if self.cancelled or self.fully_refunded:
            return self.points
        taken = Fraction(0)
        for refund in self.refunds:
            if refund.lines:
                taken += sum((Fraction(refund_line.subtotal) * self.weights[refund_line.line_id]
                              for refund_line in refund.lines), Fraction(0))
            else:
                taken += Fraction(refund.amount) * self.weighted / self.base
        kept = math.floor(max(self.weighted - taken, Fraction(0)))
        return self.points - min(kept, self.points)

    @property
    def net(self) -> int:
        return self.points - self.reversed


@dataclass
class RedemptionModel:
    shopper: str
    cost: int
    state: str  # held | issued | voided | cancelled

    @property
    def holds_points(self) -> bool:
        return self.state in ("held", "issued")


line_specs = st.lists(
    st.tuples(st.sampled_from(["p1", "p2", "p3"]), st.booleans(),
              st.integers(min_value=100, max_value=3000), st.integers(min_value=1, max_value=3)),
    min_size=1, max_size=3,
)


class LedgerMachine(RuleBasedStateMachine):
    runtime: ClassVar[Runtime]

    def __init__(self) -> None:
        super().__init__()
        self.database: Database = self.runtime.database
        self.merchant_id = seed_merchant(self.database, shop=f"stateful-{uuid.uuid4().hex}")
        self.clock = T0
        self.orders: dict[str, OrderModel] = {}
        self.redemptions: dict[int, RedemptionModel] = {}
        self.adjusted: dict[str, int] = dict.fromkeys(SHOPPER_KEYS, 0)
        self.customers = {key: customer(customer_id, email)
                          for key, customer_id, email in SHOPPERS}
        with unit_of_work(self.database) as session:
            session.add_all([
                EarningRule(merchant_id=self.merchant_id, target="product", target_id="p2",
                            factor=Decimal(2)),
                EarningRule(merchant_id=self.merchant_id, target="product", target_id="p3",
                            factor=Decimal(0)),
                EarningRule(merchant_id=self.merchant_id, target="collection",
                            target_id="sale", factor=Decimal("0.5")),
            ])
            rewards = [Reward(merchant_id=self.merchant_id, name=f"{cost} points off",
                              kind="fixed_amount", points_cost=cost, value=Decimal(1))
                       for cost in REWARD_COSTS]
            session.add_all(rewards)
            session.flush()
            self.reward_ids = {reward.points_cost: reward.id for reward in rewards}
            self.member_ids: dict[str, int] = {}
            for key in SHOPPER_KEYS:
                member = member_for_customer(session, self.merchant_id, self.customers[key])
                assert member is not None
                self.member_ids[key] = member.id
        self.previous_balances = dict.fromkeys(SHOPPER_KEYS, 0)
        self.step_reverses = False

    # --- helpers -------------------------------------------------------------------------

    def tick(self) -> datetime:
        self.clock += timedelta(minutes=1)
        return self.clock

    def deliver(self, copy: Order) -> OrderOutcome:
        with unit_of_work(self.database) as session:
            return sync_order(session, self.merchant_id, copy)

    def expected_balance(self, shopper: str) -> int:
        earned = sum(model.net for model in self.orders.values() if model.shopper == shopper)
        spent = sum(redemption.cost for redemption in self.redemptions.values()
                    if redemption.shopper == shopper and redemption.holds_points)
        return earned - spent + self.adjusted[shopper]

    def new_order(self, shopper: str, specs: list[tuple[str, bool, int, int]]) -> OrderModel:
        order_id = f"o{len(self.orders) + 1}"
        items = tuple(line(str(index + 1), str(Decimal(cents) / 100), quantity,
                           product_id=product, collections=("sale",) if sale else ())
                      for index, (product, sale, cents, quantity) in enumerate(specs))
        model = OrderModel(order_id, shopper, items)
        self.orders[order_id] = model
        return model

    def version(self, model: OrderModel, **changes: Any) -> Order:
        """A new copy of the order as it is now on the platform, newer than every other."""
        if model.versions:
            copy = replace(model.latest, updated_at=self.tick(), **changes)
        else:
            copy = order(model.order_id, *model.lines, who=self.customers[model.shopper],
                         updated=self.tick(), **changes)
        model.versions.append(copy)
        return copy

    def draw_refund(self, data: st.DataObject, model: OrderModel) -> Refund | None:
        """A refund the platform would allow: some units of one line, or an amount."""
        money_left = model.money_left
        lines = [item for item in model.lines
                 if model.units_left(item.line_id) > 0 and Fraction(item.unit_price) <= money_left]
        refund_id = f"r{len(model.refunds) + 1}"
        at = self.tick()
        if lines and data.draw(st.booleans(), label="line refund"):
            line_id = data.draw(st.sampled_from([item.line_id for item in lines]),
                                label="refunded line")
            item = next(item for item in lines if item.line_id == line_id)
            most = min(model.units_left(item.line_id),
                       math.floor(money_left / Fraction(item.unit_price)))
            units = data.draw(st.integers(1, most), label="units")
            return Refund(refund_id, model.order_id, at,
                          lines=(RefundLine(item.line_id, units, item.unit_price * units),),)
        cents_left = int(money_left * 100)
        if cents_left <= 0:
            return None
        everything = data.draw(st.booleans(), label="refund the rest")
        cents = cents_left if everything else data.draw(st.integers(1, cents_left),
                                                        label="cents")
        return Refund(refund_id, model.order_id, at, amount=Decimal(cents) / 100)

    def pick_order(self, data: st.DataObject, wanted: Any) -> OrderModel:
        candidates = sorted(key for key, model in self.orders.items() if wanted(model))
        return self.orders[data.draw(st.sampled_from(candidates), label="order")]

    # --- orders --------------------------------------------------------------------------

    @rule(shopper=st.sampled_from(SHOPPER_KEYS), specs=line_specs,
          flow=st.sampled_from(["paid", "create_then_paid", "unpaid"]))
    def place_order(self, shopper: str, specs: list[tuple[str, bool, int, int]],
                    flow: str) -> None:
        model = self.new_order(shopper, specs)
        if flow in ("create_then_paid", "unpaid"):
            outcome = self.deliver(self.version(model, paid=False))
            assert outcome.awarded == 0
        if flow == "unpaid":
            return
        model.paid = model.awarded = True
        outcome = self.deliver(self.version(model, paid=True))
        assert outcome.member_id == self.member_ids[shopper]
        assert outcome.awarded == model.points

    @precondition(lambda self: any(not model.paid for model in self.orders.values()))
    @rule(data=st.data())
    def pay(self, data: st.DataObject) -> None:
        model = self.pick_order(data, lambda model: not model.paid)
        model.paid = True
        model.awarded = not model.cancelled
        outcome = self.deliver(self.version(model, paid=True))
        if model.cancelled:  # award-and-reverse or nothing: see paid_and_cancelled below
            assert outcome.awarded in (0, model.full_points)
            assert outcome.reversed == outcome.awarded
        else:
            assert outcome.awarded == model.points

    @rule(shopper=st.sampled_from(SHOPPER_KEYS), specs=line_specs, data=st.data())
    def place_out_of_order(self, shopper: str, specs: list[tuple[str, bool, int, int]],
                           data: st.DataObject) -> None:
        """Create (unpaid), paid and refunded copies of a new order, delivered in any order:
        the refund may come before the payment, and the first delivery may already hold it."""
        model = self.new_order(shopper, specs)
        copies = {"create": self.version(model, paid=False),
                  "paid": self.version(model, paid=True)}
        model.paid = model.awarded = True
        refund = self.draw_refund(data, model)
        assert refund is not None
        model.refunds.append(refund)
        copies["refunded"] = self.version(model, refunds=(refund,))
        self.step_reverses = True
        for name in data.draw(st.permutations(list(copies)), label="delivery order"):
            self.deliver(copies[name])

    @precondition(lambda self: bool(self.orders))
    @rule(data=st.data())
    def duplicate(self, data: st.DataObject) -> None:
        model = self.pick_order(data, lambda model: True)
        outcome = self.deliver(model.latest)
        assert (outcome.awarded, outcome.reversed) == (0, 0)

    @precondition(lambda self: any(len(model.versions) > 1 for model in self.orders.values()))
    @rule(data=st.data())
    def stale(self, data: st.DataObject) -> None:
        model = self.pick_order(data, lambda model: len(model.versions) > 1)
        older = [copy for copy in model.versions if copy is not model.latest]
        index = data.draw(st.integers(0, len(older) - 1), label="stale copy (index)")
        outcome = self.deliver(older[index])
        assert (outcome.awarded, outcome.reversed) == (0, 0)

    @precondition(lambda self: any(model.paid and not model.cancelled and model.money_left > 0
                                   for model in self.orders.values()))
    @rule(data=st.data())
    def refund(self, data: st.DataObject) -> None:
        model = self.pick_order(
            data, lambda model: model.paid and not model.cancelled and model.money_left > 0)
        refund = self.draw_refund(data, model)
        if refund is None:
            return
        before = model.reversed
        model.refunds.append(refund)
        self.step_reverses = True
        outcome = self.deliver(self.version(model, refunds=tuple(model.refunds)))
        assert outcome.reversed == model.reversed - before

    @precondition(lambda self: any(not model.cancelled for model in self.orders.values()))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        model = self.pick_order(data, lambda model: not model.cancelled)
        before = model.reversed
        model.cancelled = True
        self.step_reverses = True
        outcome = self.deliver(self.version(model, cancelled=True))
        assert outcome.reversed == model.reversed - before

    # --- points --------------------------------------------------------------------------

    @rule(shopper=st.sampled_from(SHOPPER_KEYS), cost=st.sampled_from(REWARD_COSTS),
          how=st.sampled_from(["hold_then_confirm", "redeem_reward", "hold_only"]))
    def redeem(self, shopper: str, cost: int, how: str) -> None:
        member_id, reward_id = self.member_ids[shopper], self.reward_ids[cost]
        affordable = self.expected_balance(shopper) >= cost
        if how == "redeem_reward":
            key = uuid.uuid4().hex
            issuer = self.runtime.code_issuers["demo"]
            answer = redeem_reward(self.database, self.merchant_id, member_id, reward_id, key,
                                   issuer)
            if not affordable:
                assert answer.status_code == 409, answer
                assert answer.body["error"] == "insufficient_points"
                return
            assert answer.status_code == 200, answer
            body = answer.body["redemption"]
            assert (body["state"], body["points_cost"]) == ("issued", cost)
            self.redemptions[body["id"]] = RedemptionModel(shopper, cost, "issued")
            replay = redeem_reward(self.database, self.merchant_id, member_id, reward_id, key,
                                   issuer)
            assert replay == answer
            return
        try:
            with unit_of_work(self.database) as session:
                redemption_id = hold_redemption(session, self.merchant_id, member_id,
                                                reward_id).id
        except InsufficientPoints:
            assert not affordable, "a hold was refused although the balance covered it"
            return
        assert affordable, "a redemption overdrew the balance (L2)"
        self.redemptions[redemption_id] = RedemptionModel(shopper, cost, "held")
        if how == "hold_then_confirm":
            with unit_of_work(self.database) as session:
                confirm_redemption(session, self.merchant_id, redemption_id,
                                   IssuedCode(generate_code(), f"demo-{redemption_id}"))
            self.redemptions[redemption_id].state = "issued"

    @precondition(lambda self: any(r.holds_points for r in self.redemptions.values()))
    @rule(data=st.data())
    def void(self, data: st.DataObject) -> None:
        redemption_id = data.draw(st.sampled_from(sorted(
            key for key, r in self.redemptions.items() if r.holds_points)), label="redemption")
        with unit_of_work(self.database) as session:
            void_redemption(session, self.merchant_id, redemption_id, "shopper changed mind",
                            actor="merchant@example.com")
        model = self.redemptions[redemption_id]
        model.state = "voided" if model.state == "held" else "cancelled"

    @precondition(lambda self: any(not r.holds_points for r in self.redemptions.values()))
    @rule(data=st.data())
    def void_again(self, data: st.DataObject) -> None:
        redemption_id = data.draw(st.sampled_from(sorted(
            key for key, r in self.redemptions.items() if not r.holds_points)),
            label="redemption")
        try:
            with unit_of_work(self.database) as session:
                void_redemption(session, self.merchant_id, redemption_id, "again")
        except InvalidState:
            return
        raise AssertionError(f"redemption {redemption_id} was voided twice")

    @rule(shopper=st.sampled_from(SHOPPER_KEYS),
          points=st.integers(-60, 60).filter(lambda points: points != 0))
    def adjust(self, shopper: str, points: int) -> None:
        allowed = points > 0 or self.expected_balance(shopper) >= -points
        try:
            with unit_of_work(self.database) as session:
                adjust_points(session, self.merchant_id, self.member_ids[shopper], points,
                              reason="goodwill" if points > 0 else "correction",
                              actor="merchant@example.com")
        except InsufficientPoints:
            assert not allowed, "a deduction covered by the balance was refused"
            return
        assert allowed, "a manual deduction took the balance below zero"
        self.adjusted[shopper] += points

    # --- invariants ----------------------------------------------------------------------

    @invariant()
    def ledger_matches_model(self) -> None:
        with unit_of_work(self.database) as session:
            assert ledger_differences(session, self.merchant_id) == []
            doubled = session.execute(
                select(LedgerEntry.order_id, func.count())
                .where(LedgerEntry.merchant_id == self.merchant_id, LedgerEntry.kind == "award")
                .group_by(LedgerEntry.order_id).having(func.count() > 1)
            ).all()
            assert doubled == [], f"orders awarded more than once (L1): {doubled}"
            balances = {member_id: (balance, pending) for member_id, balance, pending in
                        session.execute(select(Member.id, Member.balance, Member.pending)
                                        .where(Member.merchant_id == self.merchant_id))}
            entry_sums = dict(session.execute(
                select(LedgerEntry.order_id,
                       func.sum(LedgerEntry.points + LedgerEntry.pending_points))
                .where(LedgerEntry.merchant_id == self.merchant_id,
                       LedgerEntry.order_id.is_not(None))
                .group_by(LedgerEntry.order_id)).all())
            rows = {row.platform_order_id: row for row in session.execute(
                select(OrderRow).where(OrderRow.merchant_id == self.merchant_id)).scalars()}
            states = dict(session.execute(
                select(Redemption.id, Redemption.state)
                .where(Redemption.merchant_id == self.merchant_id)).all())
        assert set(rows) == set(self.orders)
        for order_id, model in self.orders.items():
            row = rows[order_id]
            net = int(entry_sums.get(row.id, 0))
            assert row.member_id == self.member_ids[model.shopper]
            if model.cancelled or model.fully_refunded:
                assert net == 0, (f"order {order_id} was fully refunded or cancelled but its "
                                  f"entries net {net} points (L5)")
            if model.paid_and_cancelled:
                # Nets zero either way; whether the order shows an award and its reversal when
                # the cancel came first is test_order_independence's question, not this one's.
                assert row.awarded_points == row.reversed_points, order_id
                assert row.awarded_points in (0, model.full_points), order_id
                continue
            assert (row.award_snapshot is not None) == model.awarded, order_id
            assert (row.awarded_points, row.reversed_points, net) == (
                model.points, model.reversed, model.net), order_id
        assert states == {key: model.state for key, model in self.redemptions.items()}, (
            "the redemptions in the database are not the ones made; a refused redemption must "
            "leave no row behind")
        for shopper in SHOPPER_KEYS:
            balance, pending = balances[self.member_ids[shopper]]
            assert pending == 0
            assert balance == self.expected_balance(shopper), shopper
            if balance < 0 and balance < self.previous_balances[shopper]:
                assert self.step_reverses, (
                    f"{shopper}'s balance fell below zero ({balance}) without a reversal (L2)")
            self.previous_balances[shopper] = balance
        self.step_reverses = False


def test_ledger_state_machine(any_runtime: Runtime) -> None:
    machine = type("LedgerMachineRun", (LedgerMachine,), {"runtime": any_runtime})
    run_state_machine_as_test(machine, settings=STATEFUL_SETTINGS)
