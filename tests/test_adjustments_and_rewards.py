"""Manual adjustments and the reward redemption state machine at the service layer."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from integrations.base import IssuedCode
from plugin_server.db import Database, unit_of_work
from plugin_server.loyalty.adjustments import adjust_points
from plugin_server.loyalty.audit import ledger_differences
from plugin_server.loyalty.errors import (
    InsufficientPoints,
    InvalidArgument,
    InvalidState,
    NotFound,
    RewardUnavailable,
)
from plugin_server.loyalty.members import member_for_customer
from plugin_server.loyalty.redeem import redeem_reward
from plugin_server.loyalty.rewards import (
    CODE_ALPHABET,
    confirm_redemption,
    generate_code,
    hold_redemption,
    void_redemption,
)
from plugin_server.models import LedgerEntry, Member, Redemption, Reward
from plugin_server.runtime import Runtime
from tests.conftest import seed_merchant
from tests.support.builders import T0, customer

BASE32 = re.compile(f"^[{CODE_ALPHABET}]+$")


def new_member(database: Database, merchant_id: int, points: int = 0,
               customer_id: str = "c1") -> int:
    with unit_of_work(database) as session:
        member = member_for_customer(session, merchant_id,
                                     customer(customer_id, f"{customer_id}@example.com"))
        assert member is not None
        if points:
            adjust_points(session, merchant_id, member.id, points, reason="opening balance",
                          actor="test")
        return member.id


def new_reward(database: Database, merchant_id: int, cost: int = 100, *,
               enabled: bool = True, expires_days: int | None = 30,
               kind: str = "fixed_amount", value: str = "5") -> int:
    with unit_of_work(database) as session:
        reward = Reward(merchant_id=merchant_id, name=f"{kind} {value}", kind=kind,
                        points_cost=cost, value=Decimal(value), enabled=enabled,
                        expires_days=expires_days)
        session.add(reward)
        session.flush()
        return reward.id


def balance(database: Database, member_id: int) -> int:
    with unit_of_work(database) as session:
        member = session.get(Member, member_id)
        assert member is not None
        assert ledger_differences(session) == []
        return member.balance


# --- Adjustments ----------------------------------------------------------------------------


def test_adjustment_records_reason_and_actor(runtime: Runtime, merchant_id: int) -> None:
    db = runtime.database
    member_id = new_member(db, merchant_id)
    with unit_of_work(db) as session:
        entry = adjust_points(session, merchant_id, member_id, 25, reason="  goodwill  ",
                              actor=" alice@shop ", now=T0)
        assert (entry.kind, entry.points, entry.pending_points) == ("adjustment", 25, 0)
        assert (entry.reason, entry.actor, entry.created_at) == ("goodwill", "alice@shop", T0)
    assert balance(db, member_id) == 25


@pytest.mark.parametrize(("points", "reason", "actor"), [
    (10, "", "alice"), (10, "   ", "alice"), (10, "why", ""), (10, "why", "  "),
    (0, "why", "alice"),
])
def test_adjustment_arguments_are_checked(runtime: Runtime, merchant_id: int, points: int,
                                          reason: str, actor: str) -> None:
    db = runtime.database
    member_id = new_member(db, merchant_id, 50)
    with pytest.raises(InvalidArgument), unit_of_work(db) as session:
        adjust_points(session, merchant_id, member_id, points, reason=reason, actor=actor)
    assert balance(db, member_id) == 50


def test_deduction_cannot_go_below_zero(runtime: Runtime, merchant_id: int) -> None:
    db = runtime.database
    member_id = new_member(db, merchant_id, 40)
    with pytest.raises(InsufficientPoints), unit_of_work(db) as session:
        adjust_points(session, merchant_id, member_id, -41, reason="typo", actor="alice")
    assert balance(db, member_id) == 40
    with unit_of_work(db) as session:
        adjust_points(session, merchant_id, member_id, -40, reason="typo", actor="alice")
    assert balance(db, member_id) == 0
    with pytest.raises(InsufficientPoints), unit_of_work(db) as session:
        adjust_points(session, merchant_id, member_id, -1, reason="typo", actor="alice")
    assert balance(db, member_id) == 0


def test_reference_makes_an_adjustment_idempotent(runtime: Runtime, merchant_id: int) -> None:
    db = runtime.database
    member_id = new_member(db, merchant_id)
    with unit_of_work(db) as session:
        first = adjust_points(session, merchant_id, member_id, 30, reason="import",
                              actor="csv", reference="import-2026-01:row-7")
        again = adjust_points(session, merchant_id, member_id, 30, reason="import", actor="csv",
                              reference="import-2026-01:row-7")
        # The repeat returns the first entry and moves nothing.
        assert again.id == first.id
        member = session.get(Member, member_id)
        assert member is not None
        assert member.balance == 30
    assert balance(db, member_id) == 30
    with unit_of_work(db) as session:
        references = session.execute(
            select(LedgerEntry.source_id).where(LedgerEntry.source_kind == "adjustment")
        ).scalars().all()
        assert references == ["import-2026-01:row-7"]
    # Without a reference, two equal adjustments are two adjustments.
    with unit_of_work(db) as session:
        adjust_points(session, merchant_id, member_id, 1, reason="x", actor="y")
        adjust_points(session, merchant_id, member_id, 1, reason="x", actor="y")
    assert balance(db, member_id) == 32


def test_adjustment_for_another_merchants_member_is_not_found(runtime: Runtime,
                                                               merchant_id: int) -> None:
    db = runtime.database
    other = seed_merchant(db, "other.example")
    theirs = new_member(db, other, 10)
    with pytest.raises(NotFound), unit_of_work(db) as session:
        adjust_points(session, merchant_id, theirs, 5, reason="x", actor="y")
    assert balance(db, theirs) == 10


# --- Rewards ----------------------------------------------------------------------------------


def test_disabled_reward_is_unavailable(runtime: Runtime, merchant_id: int) -> None:
    db = runtime.database
    member_id = new_member(db, merchant_id, 500)
    reward_id = new_reward(db, merchant_id, enabled=False)
    with pytest.raises(RewardUnavailable), unit_of_work(db) as session:
        hold_redemption(session, merchant_id, member_id, reward_id)
    assert balance(db, member_id) == 500
    answer = redeem_reward(db, merchant_id, member_id, reward_id, "k1",
                           runtime.code_issuers["demo"])
    assert answer.status_code == 409
    assert answer.body["error"] == "reward_unavailable"
    with unit_of_work(db) as session:
        assert session.query(Redemption).count() == 0


def test_hold_confirm_void_state_machine(runtime: Runtime, merchant_id: int) -> None:
    db = runtime.database
    member_id = new_member(db, merchant_id, 250)
    reward_id = new_reward(db, merchant_id, 100, expires_days=10)

    with unit_of_work(db) as session:
        held = hold_redemption(session, merchant_id, member_id, reward_id, now=T0)
        # The code is chosen at hold time, before the platform is asked to create it.
        assert (held.state, held.points_cost) == ("held", 100)
        assert held.code is not None and len(held.code) >= 12
        assert held.expires_at == T0 + timedelta(days=10)
        first_id = held.id
    assert balance(db, member_id) == 150

    # A held redemption that is voided gives the points back, once.
    with unit_of_work(db) as session:
        voided = void_redemption(session, merchant_id, first_id, "platform refused", now=T0)
        assert (voided.state, voided.void_reason) == ("voided", "platform refused")
    assert balance(db, member_id) == 250
    with pytest.raises(InvalidState), unit_of_work(db) as session:
        void_redemption(session, merchant_id, first_id, "again")
    with pytest.raises(InvalidState), unit_of_work(db) as session:
        confirm_redemption(session, merchant_id, first_id, IssuedCode("LOY-LATECODE0000001"))
    assert balance(db, member_id) == 250

    # Hold, confirm, and confirming twice is refused.
    with unit_of_work(db) as session:
        second_id = hold_redemption(session, merchant_id, member_id, reward_id, now=T0).id
    with unit_of_work(db) as session:
        issued = confirm_redemption(session, merchant_id, second_id,
                                    IssuedCode("LOY-ABCDEFGHIJKLMNOP", "disc-1"), now=T0)
        assert (issued.state, issued.code, issued.platform_discount_id) == (
            "issued", "LOY-ABCDEFGHIJKLMNOP", "disc-1")
        assert issued.issued_at == T0
    with pytest.raises(InvalidState), unit_of_work(db) as session:
        confirm_redemption(session, merchant_id, second_id, IssuedCode("LOY-OTHER"))
    assert balance(db, member_id) == 150

    # The merchant cancels the unused code: points back, marked cancelled, once.
    with pytest.raises(InvalidArgument), unit_of_work(db) as session:
        void_redemption(session, merchant_id, second_id, "  ", actor="merchant")
    with unit_of_work(db) as session:
        cancelled = void_redemption(session, merchant_id, second_id, "shopper asked",
                                    actor="merchant:alice")
        assert cancelled.state == "cancelled"
    assert balance(db, member_id) == 250
    with pytest.raises(InvalidState), unit_of_work(db) as session:
        void_redemption(session, merchant_id, second_id, "again", actor="merchant")
    assert balance(db, member_id) == 250

    with unit_of_work(db) as session:
        rows = session.execute(
            select(LedgerEntry.kind, LedgerEntry.points, LedgerEntry.actor)
            .where(LedgerEntry.redemption_id.is_not(None)).order_by(LedgerEntry.id)).all()
        assert [tuple(row) for row in rows] == [
            ("redemption", -100, "system"), ("redemption_void", 100, "system"),
            ("redemption", -100, "system"), ("redemption_void", 100, "merchant:alice")]


def test_hold_needs_the_points(runtime: Runtime, merchant_id: int) -> None:
    db = runtime.database
    member_id = new_member(db, merchant_id, 99)
    reward_id = new_reward(db, merchant_id, 100)
    with pytest.raises(InsufficientPoints), unit_of_work(db) as session:
        hold_redemption(session, merchant_id, member_id, reward_id)
    assert balance(db, member_id) == 99
    with unit_of_work(db) as session:
        assert session.query(Redemption).count() == 0


def test_generated_codes_are_long_random_base32() -> None:
    codes = [generate_code() for _ in range(1000)]
    assert len(set(codes)) == 1000
    for code in codes:
        prefix, _, body = code.rpartition("-")
        assert prefix == "LOY"
        assert len(body) >= 12
        assert BASE32.match(body), code
    bare = generate_code(prefix="")
    assert len(bare) >= 12 and BASE32.match(bare)
    # Every position varies: no fixed characters hiding inside the random part.
    for position in range(len(codes[0]) - 4):
        assert len({code[4 + position] for code in codes}) > 8


def test_redemption_json_through_redeem_reward(runtime: Runtime, merchant_id: int) -> None:
    db = runtime.database
    member_id = new_member(db, merchant_id, 1000)
    reward_id = new_reward(db, merchant_id, 300, kind="percentage", value="15",
                           expires_days=7)
    answer = redeem_reward(db, merchant_id, member_id, reward_id, "key-1",
                           runtime.code_issuers["demo"])
    assert answer.status_code == 200
    body = answer.body["redemption"]
    assert set(body) == {"id", "reward_id", "reward_name", "kind", "value", "points_cost",
                         "state", "code", "expires_at", "created_at"}
    assert body["reward_id"] == reward_id
    assert (body["kind"], body["points_cost"], body["state"]) == ("percentage", 300, "issued")
    assert Decimal(body["value"]) == Decimal(15)
    assert body["reward_name"] == "percentage 15"
    assert body["code"].startswith("LOY-") and len(body["code"]) >= 16
    created = datetime.fromisoformat(body["created_at"])
    expires = datetime.fromisoformat(body["expires_at"])
    assert created.tzinfo is not None
    assert expires - created == timedelta(days=7)
    with unit_of_work(db) as session:
        redemption = session.get(Redemption, body["id"])
        assert redemption is not None
        assert (redemption.code, redemption.platform_discount_id) == (
            body["code"], f"demo-{body['id']}")
    assert balance(db, member_id) == 700


def test_reward_without_expiry_gives_codes_without_expiry(runtime: Runtime,
                                                          merchant_id: int) -> None:
    """expires_days NULL means "never expires" (the check constraint and hold_redemption
    both allow it); a reward created that way must keep it."""
    db = runtime.database
    member_id = new_member(db, merchant_id, 1000)
    forever = new_reward(db, merchant_id, 100, kind="free_shipping", value="0",
                         expires_days=None)
    with unit_of_work(db) as session:
        reward = session.get(Reward, forever)
        assert reward is not None
        assert reward.expires_days is None
    answer = redeem_reward(db, merchant_id, member_id, forever, "key-2",
                           runtime.code_issuers["demo"])
    assert answer.status_code == 200
    assert answer.body["redemption"]["expires_at"] is None


def test_another_merchants_reward_is_not_found(runtime: Runtime, merchant_id: int) -> None:
    db = runtime.database
    other = seed_merchant(db, "other.example")
    member_id = new_member(db, merchant_id, 1000)
    their_member = new_member(db, other, 1000)
    their_reward = new_reward(db, other, 100)
    my_reward = new_reward(db, merchant_id, 100)
    with pytest.raises(NotFound), unit_of_work(db) as session:
        hold_redemption(session, merchant_id, member_id, their_reward)
    with pytest.raises(NotFound), unit_of_work(db) as session:
        hold_redemption(session, merchant_id, their_member, my_reward)
    answer = redeem_reward(db, merchant_id, member_id, their_reward, "k1",
                           runtime.code_issuers["demo"])
    assert (answer.status_code, answer.body["error"]) == (404, "not_found")
    assert balance(db, member_id) == 1000
    assert balance(db, their_member) == 1000

    # Redemptions are scoped too: another merchant cannot confirm or void mine.
    with unit_of_work(db) as session:
        mine = hold_redemption(session, merchant_id, member_id, my_reward).id
    with pytest.raises(NotFound), unit_of_work(db) as session:
        void_redemption(session, other, mine, "not yours")
    with pytest.raises(NotFound), unit_of_work(db) as session:
        confirm_redemption(session, other, mine, IssuedCode("LOY-XXXXXXXXXXXXXXXX"))
    with unit_of_work(db) as session:
        assert session.get(Redemption, mine).state == "held"  # type: ignore[union-attr]
    assert balance(db, member_id) == 900
