"""The cancel-a-code service (plugin_server.admin.code_cancel) on its own: a double-click that
reaches the server twice at once credits once, an order arriving while the store is asked
wins, a store failure changes nothing; and end to end on the demo platform and on a
WooCommerce store (the stand-in), where the coupon goes to the trash."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select

from integrations.base import CodeToDisable, DisabledCode
from plugin_server.admin.code_cancel import (
    CancelFailed,
    CancelledCode,
    CancelRefused,
    cancel_reward_code,
)
from plugin_server.db import Database, unit_of_work
from plugin_server.loyalty.audit import ledger_differences
from plugin_server.loyalty.bulk_orders import sync_orders
from plugin_server.loyalty.errors import NotFound, PlatformRefused
from plugin_server.loyalty.ledger import post_entry
from plugin_server.loyalty.orders import sync_order
from plugin_server.loyalty.redeem import redeem_reward
from plugin_server.models import (
    AdminActivity,
    LedgerEntry,
    Member,
    Order,
    Redemption,
    Reward,
    utcnow,
)
from plugin_server.runtime import Runtime
from tests.support.builders import customer, order
from tests.support.woo_store import Woo, open_woo

COST = 40


def _member_with_code(runtime: Runtime, merchant_id: int, platform: str,
                      customer: str = "7", email: str = "ana@example.com") -> tuple[int, int]:
    """(member id, redemption id): 100 points, 40 of them spent on an issued code."""
    with unit_of_work(runtime.database) as session:
        member = Member(merchant_id=merchant_id, customer_id=customer, email=email)
        reward = Reward(merchant_id=merchant_id, name="5 off", kind="fixed_amount",
                        points_cost=COST, value=Decimal(5))
        session.add_all([member, reward])
        session.flush()
        post_entry(session, member, kind="award", source_kind="test", source_id=customer,
                   points=100, reason="seed")
        member_id, reward_id = member.id, reward.id
    answer = redeem_reward(runtime.database, merchant_id, member_id, reward_id, "k1",
                           runtime.code_issuers[platform])
    assert answer.status_code == 200, answer.body
    return member_id, answer.body["redemption"]["id"]


def _voids(database: Database, member_id: int) -> list[int]:
    with unit_of_work(database) as session:
        return list(session.execute(
            select(LedgerEntry.points).where(LedgerEntry.member_id == member_id,
                                             LedgerEntry.kind == "redemption_void")).scalars())


def _balance_and_state(database: Database, member_id: int,
                       redemption_id: int) -> tuple[int, str]:
    with unit_of_work(database) as session:
        member, redemption = session.get(Member, member_id), session.get(Redemption,
                                                                          redemption_id)
        assert member is not None and redemption is not None
        assert ledger_differences(session) == []  # L4 whatever happened
        return member.balance, redemption.state


def _order_with(database: Database, merchant_id: int, code: str, name: str) -> None:
    now = utcnow()
    with unit_of_work(database) as session:
        session.add(Order(merchant_id=merchant_id, platform_order_id=name, name=name,
                          currency="USD", placed_at=now, platform_updated_at=now,
                          discount_codes=json.dumps([code])))


def _code(database: Database, redemption_id: int) -> str:
    with unit_of_work(database) as session:
        redemption = session.get(Redemption, redemption_id)
        assert redemption is not None and redemption.code
        return redemption.code


# -- the demo platform ----------------------------------------------------------------------------

def test_demo_code_cancels_and_returns_points_once(runtime: Runtime, merchant_id: int) -> None:
    member_id, redemption_id = _member_with_code(runtime, merchant_id, "demo")
    disable = runtime.code_disablers["demo"]

    done = cancel_reward_code(runtime.database, merchant_id, redemption_id, "owner", disable)

    assert done == CancelledCode(redemption_id, member_id, _code(runtime.database,
                                                                 redemption_id), COST)
    assert _balance_and_state(runtime.database, member_id, redemption_id) == (100, "cancelled")
    with pytest.raises(CancelRefused) as again:
        cancel_reward_code(runtime.database, merchant_id, redemption_id, "owner", disable)
    assert again.value.key == "members.cancel.done"
    assert _voids(runtime.database, member_id) == [COST]


def test_demo_code_used_on_a_delivered_order_is_refused(runtime: Runtime,
                                                        merchant_id: int) -> None:
    member_id, redemption_id = _member_with_code(runtime, merchant_id, "demo")
    _order_with(runtime.database, merchant_id, _code(runtime.database, redemption_id), "D1")

    with pytest.raises(CancelRefused) as refused:
        cancel_reward_code(runtime.database, merchant_id, redemption_id, "owner",
                           runtime.code_disablers["demo"])

    assert refused.value.key == "members.cancel.used_on_order"
    assert refused.value.values["order"] == "D1" and refused.value.member_id == member_id
    assert _balance_and_state(runtime.database, member_id, redemption_id) == (60, "issued")


def test_another_merchant_is_not_found(runtime: Runtime, merchant_id: int) -> None:
    from tests.conftest import seed_merchant

    _member, redemption_id = _member_with_code(runtime, merchant_id, "demo")
    other = seed_merchant(runtime.database, "other-shop.example")
    with pytest.raises(NotFound):
        cancel_reward_code(runtime.database, other, redemption_id, "intruder",
                           runtime.code_disablers["demo"])


# -- between the checks and the credit ------------------------------------------------------------

def test_a_double_click_at_the_same_moment_credits_once(any_runtime: Runtime,
                                                        any_merchant_id: int) -> None:
    """On SQLite and PostgreSQL (L1)."""
    runtime, merchant_id = any_runtime, any_merchant_id
    member_id, redemption_id = _member_with_code(runtime, merchant_id, "demo")
    both_asked = threading.Barrier(2, timeout=10)

    def disable(target: CodeToDisable) -> DisabledCode:
        both_asked.wait()  # both requests passed the checks before either credits
        return DisabledCode(target.code, target.platform_discount_id, usage_count=0)

    outcomes: list[object] = []

    def click() -> None:
        try:
            outcomes.append(cancel_reward_code(runtime.database, merchant_id, redemption_id,
                                               "owner", disable))
        except CancelRefused as error:
            outcomes.append(error.key)

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["CancelledCode", "str"]
    assert "members.cancel.done" in outcomes
    assert _voids(runtime.database, member_id) == [COST]
    assert _balance_and_state(runtime.database, member_id, redemption_id) == (100, "cancelled")


def test_an_order_arriving_during_the_store_call_wins(runtime: Runtime,
                                                      merchant_id: int) -> None:
    member_id, redemption_id = _member_with_code(runtime, merchant_id, "demo")

    def disable(target: CodeToDisable) -> DisabledCode:
        # The store reports no use yet (its count lags), but the order webhook is in.
        _order_with(runtime.database, merchant_id, target.code.lower(), "W7")
        return DisabledCode(target.code, target.platform_discount_id, usage_count=0)

    with pytest.raises(CancelRefused) as refused:
        cancel_reward_code(runtime.database, merchant_id, redemption_id, "owner", disable)

    # The merchant is told the code is disabled in the store now, and the log says so.
    assert refused.value.key == "members.cancel.used_after_disabling"
    assert _balance_and_state(runtime.database, member_id, redemption_id) == (60, "issued")
    with unit_of_work(runtime.database) as session:
        assert session.execute(select(AdminActivity.action).where(
            AdminActivity.merchant_id == merchant_id)).scalars().all() == [
            "redemption.cancel_refused"]


def test_a_store_failure_changes_nothing(runtime: Runtime, merchant_id: int) -> None:
    member_id, redemption_id = _member_with_code(runtime, merchant_id, "demo")

    def disable(_target: CodeToDisable) -> DisabledCode:
        raise PlatformRefused("Shopify could not deactivate the code: network error")

    with pytest.raises(CancelFailed, match="network error") as failed:
        cancel_reward_code(runtime.database, merchant_id, redemption_id, "owner", disable)

    assert failed.value.member_id == member_id
    assert _balance_and_state(runtime.database, member_id, redemption_id) == (60, "issued")
    assert _voids(runtime.database, member_id) == []


# -- WooCommerce (the stand-in store) -------------------------------------------------------------

@pytest.fixture
def woo(tmp_path: Path, httpserver: HTTPServer) -> Iterator[Woo]:
    yield from open_woo(tmp_path, httpserver)


def test_woocommerce_coupon_goes_to_the_trash_and_points_return(woo: Woo) -> None:
    woo.connect()
    merchant_id = woo.merchant().id
    member_id, redemption_id = _member_with_code(woo.runtime, merchant_id, "woocommerce")
    code = _code(woo.runtime.database, redemption_id)
    assert woo.fake.coupon_applies(code)

    cancel_reward_code(woo.runtime.database, merchant_id, redemption_id, "owner",
                       woo.runtime.code_disablers["woocommerce"])

    assert not woo.fake.coupon_applies(code)
    deletes = [(method, path, query) for method, path, query in woo.fake.requests
               if method == "DELETE"]
    assert len(deletes) == 1 and deletes[0][1].startswith("/wp-json/wc/v3/coupons/")
    assert deletes[0][2].get("force") == "false"
    assert _balance_and_state(woo.runtime.database, member_id, redemption_id) == (
        100, "cancelled")


def test_woocommerce_used_coupon_is_refused(woo: Woo) -> None:
    woo.connect()
    merchant_id = woo.merchant().id
    member_id, redemption_id = _member_with_code(woo.runtime, merchant_id, "woocommerce")
    woo.fake.use_coupon(_code(woo.runtime.database, redemption_id), "ana@example.com")

    with pytest.raises(CancelRefused) as refused:
        cancel_reward_code(woo.runtime.database, merchant_id, redemption_id, "owner",
                           woo.runtime.code_disablers["woocommerce"])

    assert refused.value.key == "members.cancel.used"
    assert _balance_and_state(woo.runtime.database, member_id, redemption_id) == (60, "issued")


def test_woocommerce_store_down_changes_nothing(woo: Woo,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    woo.connect()
    merchant_id = woo.merchant().id
    member_id, redemption_id = _member_with_code(woo.runtime, merchant_id, "woocommerce")
    monkeypatch.setattr("integrations.woocommerce.client.BACKOFF_BASE", 0.001)
    woo.fake.fail_next = [503] * 10

    with pytest.raises(CancelFailed, match="WooCommerce could not disable the coupon"):
        cancel_reward_code(woo.runtime.database, merchant_id, redemption_id, "owner",
                           woo.runtime.code_disablers["woocommerce"])

    woo.fake.fail_next = []
    assert woo.fake.coupon_applies(_code(woo.runtime.database, redemption_id))
    assert _balance_and_state(woo.runtime.database, member_id, redemption_id) == (60, "issued")


# -- a use the store reports late -----------------------------------------------------------------

def test_a_cancelled_code_used_after_all_takes_its_points_back_once(runtime: Runtime,
                                                                    merchant_id: int) -> None:
    """The store said "unused" (its count lags), the points came back; then the order that
    used the code arrives. The points are taken back once, however often the order comes,
    on the path one order takes and on the burst path."""
    member_id, redemption_id = _member_with_code(runtime, merchant_id, "demo")
    code = _code(runtime.database, redemption_id)
    cancel_reward_code(runtime.database, merchant_id, redemption_id, "owner",
                       lambda target: DisabledCode(target.code, None, usage_count=0))
    assert _balance_and_state(runtime.database, member_id, redemption_id) == (100, "cancelled")
    late = replace(order("LATE-1", who=customer("7", "ana@example.com")),
                   discount_codes=(code.lower(),), created_at=utcnow(), updated_at=utcnow())
    for deliver in (lambda session: sync_order(session, merchant_id, late),
                    lambda session: sync_orders(session, merchant_id, [late]),
                    lambda session: sync_order(session, merchant_id, late)):
        with unit_of_work(runtime.database) as session:
            deliver(session)
    with unit_of_work(runtime.database) as session:
        clawbacks = session.execute(select(LedgerEntry.points, LedgerEntry.kind).where(
            LedgerEntry.member_id == member_id,
            LedgerEntry.source_kind == "redemption_clawback")).all()
    assert [tuple(row) for row in clawbacks] == [(-COST, "redemption")]
    # 100 - 40 (code) + 40 (cancel) - 40 (used after all) + 10 (the order's own award).
    assert _balance_and_state(runtime.database, member_id, redemption_id)[0] == 70


def test_a_burst_of_orders_with_a_cancelled_code_takes_the_points_back(
        runtime: Runtime, merchant_id: int) -> None:
    member_id, redemption_id = _member_with_code(runtime, merchant_id, "demo")
    code = _code(runtime.database, redemption_id)
    cancel_reward_code(runtime.database, merchant_id, redemption_id, "owner",
                       lambda target: DisabledCode(target.code, None, usage_count=0))
    burst = [replace(order(f"B-{number}", who=customer(f"c{number}", f"b{number}@example.com")),
                     created_at=utcnow(), updated_at=utcnow()) for number in range(3)]
    burst.append(replace(order("B-CODE", who=customer("7", "ana@example.com")),
                         discount_codes=(code,), created_at=utcnow(), updated_at=utcnow()))
    with unit_of_work(runtime.database) as session:
        sync_orders(session, merchant_id, burst)
    assert _balance_and_state(runtime.database, member_id, redemption_id)[0] == 70
