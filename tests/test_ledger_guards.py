"""Guards around the ledger, on SQLite and PostgreSQL: append-only entries enforced by the
database itself (L3), two-phase redemptions cleaned up by the sweep (L7), idempotent
redemptions (L8), and a platform failure that gives the points back."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from integrations.base import DiscountRequest, IssuedCode
from plugin_server.db import Database, unit_of_work
from plugin_server.jobs import sweep
from plugin_server.loyalty.adjustments import adjust_points
from plugin_server.loyalty.audit import ledger_differences
from plugin_server.loyalty.errors import IdempotencyConflict, PlatformRefused
from plugin_server.loyalty.idempotency import IN_PROGRESS
from plugin_server.loyalty.members import member_for_customer
from plugin_server.loyalty.redeem import redeem_reward, void_stale_holds
from plugin_server.loyalty.rewards import hold_redemption
from plugin_server.models import (
    IdempotencyRecord,
    LedgerEntry,
    Member,
    Merchant,
    Redemption,
    Reward,
    utcnow,
)
from plugin_server.runtime import Runtime
from tests.conftest import seed_merchant
from tests.support.builders import customer

APPEND_ONLY = "append-only"


class ProcessCrash(BaseException):
    """The worker dies between the hold and the platform call (not an ``Exception``, so
    nothing in the engine may catch it, just like a killed process)."""


def shopper_with_points(database: Database, merchant_id: int, points: int,
                        who: str = "c1") -> int:
    with unit_of_work(database) as session:
        member = member_for_customer(session, merchant_id, customer(who, f"{who}@example.com"))
        assert member is not None
        if points:
            adjust_points(session, merchant_id, member.id, points, reason="opening balance",
                          actor="test")
        return member.id


def add_reward(database: Database, merchant_id: int, cost: int, name: str = "") -> int:
    with unit_of_work(database) as session:
        reward = Reward(merchant_id=merchant_id, name=name or f"{cost} points off",
                        kind="fixed_amount", points_cost=cost, value=Decimal(5))
        session.add(reward)
        session.flush()
        return reward.id


def balance_of(database: Database, member_id: int) -> int:
    with unit_of_work(database) as session:
        return session.execute(select(Member.balance).where(Member.id == member_id)
                               ).scalar_one()


def redemption_states(database: Database, merchant_id: int) -> list[str]:
    with unit_of_work(database) as session:
        return list(session.execute(select(Redemption.state).where(
            Redemption.merchant_id == merchant_id).order_by(Redemption.id)).scalars())


def check_ledger(database: Database, merchant_id: int) -> None:
    with unit_of_work(database) as session:
        assert ledger_differences(session, merchant_id) == []


def set_status(database: Database, merchant_id: int, status: str) -> None:
    with unit_of_work(database) as session:
        merchant = session.get(Merchant, merchant_id)
        assert merchant is not None
        merchant.status = status


def entry_count(database: Database, merchant_id: int) -> int:
    with unit_of_work(database) as session:
        return session.execute(select(func.count()).where(
            LedgerEntry.merchant_id == merchant_id)).scalar_one()


# --- L3: append-only, enforced by the database --------------------------------------------


@pytest.mark.parametrize("statement", [
    "UPDATE ledger_entries SET points = points + 1000 WHERE id = :id",
    "UPDATE ledger_entries SET reason = 'rewritten history' WHERE id = :id",
    "UPDATE ledger_entries SET member_id = member_id WHERE id = :id",
])
def test_the_database_refuses_to_update_an_entry(any_runtime: Runtime, any_merchant_id: int,
                                                 statement: str) -> None:
    database = any_runtime.database
    member_id = shopper_with_points(database, any_merchant_id, 25)
    with unit_of_work(database) as session:
        entry_id = session.execute(select(LedgerEntry.id).where(
            LedgerEntry.member_id == member_id)).scalar_one()
    for status in ("active", "purging"):
        set_status(database, any_merchant_id, status)
        with pytest.raises(DBAPIError, match=APPEND_ONLY), unit_of_work(database) as session:
            session.execute(text(statement), {"id": entry_id})
    with unit_of_work(database) as session:
        entry = session.get(LedgerEntry, entry_id)
        assert entry is not None
        assert (entry.points, entry.reason, entry.member_id) == (25, "opening balance",
                                                                 member_id)


@pytest.mark.parametrize("status", ["active", "pending", "uninstalled", "disconnected"])
def test_the_database_refuses_to_delete_entries_unless_the_shop_is_purged(
        any_runtime: Runtime, any_merchant_id: int, status: str) -> None:
    database = any_runtime.database
    shopper_with_points(database, any_merchant_id, 25)
    set_status(database, any_merchant_id, status)
    with pytest.raises(DBAPIError, match=APPEND_ONLY), unit_of_work(database) as session:
        session.execute(text("DELETE FROM ledger_entries WHERE merchant_id = :m"),
                        {"m": any_merchant_id})
    assert entry_count(database, any_merchant_id) == 1


def test_entries_may_be_deleted_only_for_the_shop_being_purged(any_runtime: Runtime,
                                                               any_merchant_id: int) -> None:
    database = any_runtime.database
    other = seed_merchant(database, shop="other-shop.example")
    shopper_with_points(database, any_merchant_id, 25)
    shopper_with_points(database, other, 30)
    set_status(database, any_merchant_id, "purging")
    # One statement touching both shops fails as a whole: the other shop keeps its entries.
    with pytest.raises(DBAPIError, match=APPEND_ONLY), unit_of_work(database) as session:
        session.execute(text("DELETE FROM ledger_entries"))
    assert (entry_count(database, any_merchant_id), entry_count(database, other)) == (1, 1)
    with unit_of_work(database) as session:
        session.execute(text("DELETE FROM ledger_entries WHERE merchant_id = :m"),
                        {"m": any_merchant_id})
    assert (entry_count(database, any_merchant_id), entry_count(database, other)) == (0, 1)


# --- L7: a crash between hold and code leaves no orphan after the sweep ---------------------


def crashing_issuer(request: DiscountRequest) -> IssuedCode:
    raise ProcessCrash(f"killed before creating {request.code}")


def test_sweep_voids_a_hold_left_by_a_crash_and_frees_the_key(any_runtime: Runtime,
                                                              any_merchant_id: int) -> None:
    database = any_runtime.database
    member_id = shopper_with_points(database, any_merchant_id, 100)
    reward_id = add_reward(database, any_merchant_id, 40)
    issuer = any_runtime.code_issuers["demo"]
    with pytest.raises(ProcessCrash):
        redeem_reward(database, any_merchant_id, member_id, reward_id, "k-crash",
                      crashing_issuer)
    assert balance_of(database, member_id) == 60
    assert redemption_states(database, any_merchant_id) == ["held"]
    with pytest.raises(IdempotencyConflict, match="in progress"):
        redeem_reward(database, any_merchant_id, member_id, reward_id, "k-crash", issuer)

    # A young hold may still be waiting for the platform: the sweep leaves it alone.
    assert sweep(any_runtime).voided_holds == 0
    assert redemption_states(database, any_merchant_id) == ["held"]

    # Past the timeout (300 s by default) the sweep voids it.
    later = utcnow() + timedelta(seconds=any_runtime.settings.REDEMPTION_HOLD_TIMEOUT_SECONDS + 1)
    report = sweep(any_runtime, now=later)
    assert report.voided_holds == 1
    assert balance_of(database, member_id) == 100
    assert redemption_states(database, any_merchant_id) == ["voided"]
    with unit_of_work(database) as session:
        assert session.execute(select(func.count()).select_from(IdempotencyRecord).where(
            IdempotencyRecord.status_code == IN_PROGRESS)).scalar_one() == 0
    check_ledger(database, any_merchant_id)

    # The shopper can try again with the same key once the key is freed.
    retry = redeem_reward(database, any_merchant_id, member_id, reward_id, "k-crash", issuer)
    assert retry.status_code == 200, retry
    assert balance_of(database, member_id) == 60
    assert redemption_states(database, any_merchant_id) == ["voided", "issued"]
    check_ledger(database, any_merchant_id)


def test_void_stale_holds_returns_points_of_old_holds_only(any_runtime: Runtime,
                                                           any_merchant_id: int) -> None:
    database = any_runtime.database
    member_id = shopper_with_points(database, any_merchant_id, 100)
    reward_id = add_reward(database, any_merchant_id, 30)
    now = utcnow()
    with unit_of_work(database) as session:  # committed, then the process died
        hold_redemption(session, any_merchant_id, member_id, reward_id,
                        now=now - timedelta(minutes=10))
    with unit_of_work(database) as session:
        hold_redemption(session, any_merchant_id, member_id, reward_id,
                        now=now - timedelta(seconds=30))
    assert balance_of(database, member_id) == 40
    with unit_of_work(database) as session:
        assert void_stale_holds(session, 300, now=now) == 1
    assert redemption_states(database, any_merchant_id) == ["voided", "held"]
    assert balance_of(database, member_id) == 70
    with unit_of_work(database) as session:  # running it again changes nothing
        assert void_stale_holds(session, 300, now=now) == 0
    with unit_of_work(database) as session:
        assert void_stale_holds(session, 300, now=now + timedelta(minutes=10)) == 1
    assert redemption_states(database, any_merchant_id) == ["voided", "voided"]
    assert balance_of(database, member_id) == 100
    check_ledger(database, any_merchant_id)


def test_sweep_job_voids_an_old_hold(any_runtime: Runtime, any_merchant_id: int) -> None:
    database = any_runtime.database
    member_id = shopper_with_points(database, any_merchant_id, 50)
    reward_id = add_reward(database, any_merchant_id, 50)
    with unit_of_work(database) as session:
        hold_redemption(session, any_merchant_id, member_id, reward_id,
                        now=utcnow() - timedelta(hours=1))
    assert balance_of(database, member_id) == 0
    assert sweep(any_runtime).voided_holds == 1
    assert balance_of(database, member_id) == 50
    assert redemption_states(database, any_merchant_id) == ["voided"]
    check_ledger(database, any_merchant_id)


def test_a_refused_redemption_leaves_no_hold_for_the_sweep_to_refund(
        any_runtime: Runtime, any_merchant_id: int) -> None:
    """Not enough points: 409, and nothing held. A held row without its debit would be voided
    by the sweep later and credit the shopper points that were never taken."""
    database = any_runtime.database
    member_id = shopper_with_points(database, any_merchant_id, 10)
    reward_id = add_reward(database, any_merchant_id, 40)
    answer = redeem_reward(database, any_merchant_id, member_id, reward_id, "k-poor",
                           any_runtime.code_issuers["demo"])
    assert answer.status_code == 409
    assert answer.body["error"] == "insufficient_points"
    with unit_of_work(database) as session:
        void_stale_holds(session, 300, now=utcnow() + timedelta(hours=1))
    assert balance_of(database, member_id) == 10, "the sweep refunded a debit never made"
    assert redemption_states(database, any_merchant_id) == []
    check_ledger(database, any_merchant_id)


# --- L8: idempotent redemptions -------------------------------------------------------------


def test_same_key_and_body_replays_the_first_answer(any_runtime: Runtime,
                                                    any_merchant_id: int) -> None:
    database = any_runtime.database
    member_id = shopper_with_points(database, any_merchant_id, 70)
    reward_id = add_reward(database, any_merchant_id, 40)
    issued: list[str] = []
    demo = any_runtime.code_issuers["demo"]

    def issuer(request: DiscountRequest) -> IssuedCode:
        issued.append(request.code)
        return demo(request)

    first = redeem_reward(database, any_merchant_id, member_id, reward_id, "k1", issuer)
    assert first.status_code == 200, first
    for _ in range(3):
        assert redeem_reward(database, any_merchant_id, member_id, reward_id, "k1",
                             issuer) == first
    assert len(issued) == 1
    assert first.body["redemption"]["code"] == issued[0]
    assert balance_of(database, member_id) == 30
    assert redemption_states(database, any_merchant_id) == ["issued"]

    # The first answer is replayed even when it was a refusal and the balance has changed.
    refused = redeem_reward(database, any_merchant_id, member_id, reward_id, "k2", issuer)
    assert refused.status_code == 409
    with unit_of_work(database) as session:
        adjust_points(session, any_merchant_id, member_id, 500, reason="bonus", actor="test")
    assert redeem_reward(database, any_merchant_id, member_id, reward_id, "k2",
                         issuer) == refused
    assert balance_of(database, member_id) == 530
    check_ledger(database, any_merchant_id)


def test_same_key_with_another_body_is_a_conflict(any_runtime: Runtime,
                                                  any_merchant_id: int) -> None:
    """The engine raises IdempotencyConflict (the HTTP layer's 409) rather than returning a
    stored 409 answer; nothing is held or spent for the second request."""
    database = any_runtime.database
    member_id = shopper_with_points(database, any_merchant_id, 100)
    cheap = add_reward(database, any_merchant_id, 20, "cheap")
    dear = add_reward(database, any_merchant_id, 50, "dear")
    issuer = any_runtime.code_issuers["demo"]
    first = redeem_reward(database, any_merchant_id, member_id, cheap, "k1", issuer)
    assert first.status_code == 200
    with pytest.raises(IdempotencyConflict, match="different request body") as conflict:
        redeem_reward(database, any_merchant_id, member_id, dear, "k1", issuer)
    assert conflict.value.code == "idempotency_conflict"
    assert balance_of(database, member_id) == 80
    assert redemption_states(database, any_merchant_id) == ["issued"]
    # The key still answers the original request.
    assert redeem_reward(database, any_merchant_id, member_id, cheap, "k1", issuer) == first
    # Keys belong to one shopper: another shopper's "k1" is a different request.
    other_id = shopper_with_points(database, any_merchant_id, 60, who="c2")
    other = redeem_reward(database, any_merchant_id, other_id, dear, "k1", issuer)
    assert other.status_code == 200
    assert other.body["redemption"]["id"] != first.body["redemption"]["id"]
    assert balance_of(database, other_id) == 10
    check_ledger(database, any_merchant_id)


@pytest.mark.parametrize("failure", [
    RuntimeError("connection reset by the store"),
    PlatformRefused("the store refused the discount code"),
])
def test_a_platform_failure_voids_the_hold_and_restores_the_balance(
        any_runtime: Runtime, any_merchant_id: int, failure: Exception) -> None:
    database = any_runtime.database
    member_id = shopper_with_points(database, any_merchant_id, 100)
    reward_id = add_reward(database, any_merchant_id, 40)
    calls: list[int] = []

    def failing_issuer(request: DiscountRequest) -> IssuedCode:
        calls.append(request.redemption_id)
        raise failure

    answer = redeem_reward(database, any_merchant_id, member_id, reward_id, "k-fail",
                           failing_issuer)
    assert answer.status_code == 502
    assert answer.body["error"] == "platform_refused"
    assert str(failure) in answer.body["message"]
    assert balance_of(database, member_id) == 100
    assert redemption_states(database, any_merchant_id) == ["voided"]
    with unit_of_work(database) as session:
        kinds = list(session.execute(select(LedgerEntry.kind).where(
            LedgerEntry.merchant_id == any_merchant_id).order_by(LedgerEntry.id)).scalars())
    assert kinds == ["adjustment", "redemption", "redemption_void"]
    # A replay returns the stored failure without calling the platform again.
    assert redeem_reward(database, any_merchant_id, member_id, reward_id, "k-fail",
                         failing_issuer) == answer
    assert len(calls) == 1
    check_ledger(database, any_merchant_id)
