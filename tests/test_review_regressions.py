"""Regression tests for the bugs a code review found: each test pins the intended behaviour
(burst path = one by one, refunds with taxes and per-line caps, tiers on zero-point awards,
edge timestamps and amounts, idempotent adjustments, bad contact emails, CLI on an unmigrated
database, settings ranges, redemption codes at hold time, /healthz beside a writer)."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import threading
import time
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from integrations.base import Order
from integrations.canonical import order_to_dict
from plugin_server.config import ConfigError, load_settings
from plugin_server.db import Database, unit_of_work
from plugin_server.loyalty.adjustments import adjust_points
from plugin_server.loyalty.audit import ledger_differences
from plugin_server.loyalty.bulk_orders import sync_orders
from plugin_server.loyalty.inbox import store_delivery
from plugin_server.loyalty.members import member_for_customer
from plugin_server.loyalty.orders import OrderOutcome, sync_order
from plugin_server.loyalty.rewards import discount_request, hold_redemption
from plugin_server.models import InboxEvent, LedgerEntry, Member, Redemption, Reward, Tier
from plugin_server.models import Order as OrderRow
from plugin_server.runtime import Runtime
from tests.conftest import seed_merchant
from tests.support.builders import T0, customer, line, order, refund, with_refunds
from tests.support.program import configure

NOW = T0 + timedelta(days=3)
LOYALTY = shutil.which("loyalty")


# --- helpers ------------------------------------------------------------------------------


def add_tiers(database: Database, merchant_id: int, silver_at: str = "300",
              multiplier: str = "2", entry_reward: int = 50) -> None:
    with unit_of_work(database) as session:
        session.add_all([
            Tier(merchant_id=merchant_id, name="Bronze", threshold=Decimal(0)),
            Tier(merchant_id=merchant_id, name="Silver", threshold=Decimal(silver_at),
                 multiplier=Decimal(multiplier), entry_reward_points=entry_reward),
        ])


def sync(database: Database, merchant_id: int, placed: Order) -> OrderOutcome:
    with unit_of_work(database) as session:
        return sync_order(session, merchant_id, placed, now=NOW)


def sync_batch(database: Database, merchant_id: int, batch: list[Order]) -> None:
    with unit_of_work(database) as session:
        assert sync_orders(session, merchant_id, batch, now=NOW) == [None] * len(batch)


def state(database: Database, merchant_id: int) -> dict[str, Any]:
    """Members, entries and orders of one merchant, free of ids that differ between shops."""
    with unit_of_work(database) as session:
        tiers = dict(session.execute(select(Tier.id, Tier.name)
                                     .where(Tier.merchant_id == merchant_id)).all())
        members = list(session.execute(
            select(Member).where(Member.merchant_id == merchant_id)).scalars())
        keys = {m.id: (m.customer_id, m.email) for m in members}
        entries = sorted((
            (keys[e.member_id], e.kind, e.points, e.pending_points, e.source_kind,
             tiers[int(e.source_id.split(":")[1])] if e.kind == "tier_reward" else e.source_id)
            for e in session.execute(select(LedgerEntry)
                                     .where(LedgerEntry.merchant_id == merchant_id)).scalars()
        ), key=repr)
        orders = sorted((
            (o.platform_order_id, keys.get(o.member_id) if o.member_id else None,
             o.awarded_points, o.reversed_points, o.award_snapshot)
            for o in session.execute(select(OrderRow)
                                     .where(OrderRow.merchant_id == merchant_id)).scalars()
        ), key=repr)
        assert ledger_differences(session, merchant_id) == []
        return {
            "members": sorted((keys[m.id], m.balance, m.pending, tiers.get(m.tier_id),
                               str(m.tier_progress)) for m in members),
            "entries": entries,
            "orders": orders,
        }


def member_row(database: Database, merchant_id: int, customer_id: str) -> Member:
    with unit_of_work(database) as session:
        found = session.execute(select(Member).where(
            Member.merchant_id == merchant_id, Member.customer_id == customer_id)
        ).scalar_one()
        session.expunge(found)
        return found


def tier_name(database: Database, tier_id: int | None) -> str | None:
    if tier_id is None:
        return None
    with unit_of_work(database) as session:
        tier = session.get(Tier, tier_id)
        return tier.name if tier else None


def deliver(runtime: Runtime, merchant_id: int, body: dict[str, Any], event_id: str,
            topic: str = "orders/paid") -> tuple[str, InboxEvent]:
    """Store a demo delivery, run its job, and return the job's answer and the stored row."""
    with unit_of_work(runtime.database) as session:
        row = store_delivery(session, merchant_id, "demo", topic, event_id,
                             json.dumps(body).encode())
    assert row is not None
    answer = runtime.jobs.run("process_inbox_event", row)
    with unit_of_work(runtime.database) as session:
        stored = session.get(InboxEvent, row)
        assert stored is not None
        session.expunge(stored)
    return answer, stored


def count_rows(database: Database, model: type, merchant_id: int) -> int:
    with unit_of_work(database) as session:
        return int(session.execute(select(func.count()).select_from(model).where(
            model.merchant_id == merchant_id)).scalar_one())  # type: ignore[attr-defined]


# --- 1. burst path vs one by one, one member reached through two keys ----------------------


def test_burst_orders_by_id_then_by_email_equal_one_by_one(runtime: Runtime) -> None:
    """o1 (by customer id) lifts M to Silver; o2 (by email) must then earn at Silver's x2."""
    database = runtime.database
    bulk, single = (seed_merchant(database, f"{name}.example") for name in ("bulk", "single"))
    first = order("o0", line("1", "10"), who=customer("c1", "a@example.com"))
    batch = [order("o1", line("1", "400"), who=customer("c1", None)),
             order("o2", line("1", "400"), who=customer(None, "a@example.com"))]
    for shop in (bulk, single):
        add_tiers(database, shop)
        sync(database, shop, first)
    sync_batch(database, bulk, batch)
    for placed in batch:
        sync(database, single, placed)
    expected = state(database, single)
    assert expected["members"] == [
        (("c1", "a@example.com"), 10 + 400 + 50 + 800, 0, "Silver", "1210.0000")]
    assert state(database, bulk) == expected


def test_burst_refund_by_id_then_order_by_email_equal_one_by_one(runtime: Runtime) -> None:
    """The refund (by customer id) drops M back to Bronze; the next order (by email) must then
    earn at Bronze's x1, not at the Silver multiplier M had before the refund."""
    database = runtime.database
    bulk, single = (seed_merchant(database, f"{name}.example") for name in ("bulk", "single"))
    earlier = order("o0", line("1", "400"), who=customer("c1", "a@example.com"))
    refunded = with_refunds(replace(earlier, customer=customer("c1", None)),
                            refund("r0", ("1", 1, "400"), order_id="o0"))
    batch = [refunded, order("o3", line("1", "100"), who=customer(None, "a@example.com"))]
    for shop in (bulk, single):
        add_tiers(database, shop)
        assert sync(database, shop, earlier).awarded == 400
    sync_batch(database, bulk, batch)
    for placed in batch:
        sync(database, single, placed)
    expected = state(database, single)
    assert expected["members"] == [
        (("c1", "a@example.com"), 400 + 50 - 400 + 100, 0, "Bronze", "100.0000")]
    assert state(database, bulk) == expected


# --- 2. a full refund including taxes ----------------------------------------------------


def test_full_refund_with_taxes_reverses_everything(runtime: Runtime, merchant_id: int) -> None:
    database = runtime.database
    configure(database, merchant_id, include_taxes=True)
    who = customer("c-tax", "tax@example.com")
    placed = order("t1", line("1", "100"), who=who, taxes=Decimal("10"), total=Decimal("110"))
    assert sync(database, merchant_id, placed).awarded == 110
    # Refund.amount is the money given back (110 with the tax); the lines give the weighting.
    whole = with_refunds(placed, refund("r1", ("1", 1, "100"), amount="110", order_id="t1"))
    assert sync(database, merchant_id, whole).reversed == 110
    member = member_row(database, merchant_id, "c-tax")
    assert (member.balance, member.pending) == (0, 0)


def test_line_only_refund_leaves_the_tax_part_until_cancel(runtime: Runtime,
                                                           merchant_id: int) -> None:
    """Without an amount, refunding the whole line takes back the line's 100; the 10 earned on
    the taxes stays until the order is cancelled."""
    database = runtime.database
    configure(database, merchant_id, include_taxes=True)
    who = customer("c-tax2", "tax2@example.com")
    placed = order("t2", line("1", "100"), who=who, taxes=Decimal("10"), total=Decimal("110"))
    assert sync(database, merchant_id, placed).awarded == 110
    lines_only = with_refunds(placed, refund("r2", ("1", 1, "100"), order_id="t2"))
    assert sync(database, merchant_id, lines_only).reversed == 100
    assert member_row(database, merchant_id, "c-tax2").balance == 10
    cancelled = replace(lines_only, cancelled=True,
                        updated_at=lines_only.updated_at + timedelta(days=1))
    assert sync(database, merchant_id, cancelled).reversed == 10
    assert member_row(database, merchant_id, "c-tax2").balance == 0


# --- 3. a refund line takes back at most what its line earned ----------------------------


def test_refund_line_cannot_take_more_than_its_line_earned(runtime: Runtime,
                                                           merchant_id: int) -> None:
    database = runtime.database
    placed = order("1", line("A", "10"), line("B", "90"), who=customer("c-a", None))
    assert sync(database, merchant_id, placed).awarded == 100
    too_much = with_refunds(placed, refund("r", ("A", 1, "100"), order_id="1"))
    assert sync(database, merchant_id, too_much).reversed == 10
    assert member_row(database, merchant_id, "c-a").balance == 90


def test_repeated_refunds_of_one_line_take_back_that_line_once(runtime: Runtime,
                                                               merchant_id: int) -> None:
    database = runtime.database
    current = order("2", line("A", "10"), line("B", "90"), who=customer("c-b", None))
    assert sync(database, merchant_id, current).awarded == 100
    reversed_total = 0
    for number in range(1, 4):
        current = with_refunds(current, refund(f"r{number}", ("A", 1, "10"), order_id="2"))
        reversed_total += sync(database, merchant_id, current).reversed
    assert reversed_total == 10
    assert member_row(database, merchant_id, "c-b").balance == 90


# --- 4. zero-point awards still move tiers on the amount-spent basis ----------------------


def test_zero_point_award_moves_tier_on_amount_spent(runtime: Runtime, merchant_id: int) -> None:
    database = runtime.database
    configure(database, merchant_id, points_per_unit=Decimal(0), tier_basis="amount_spent")
    add_tiers(database, merchant_id, silver_at="50", multiplier="1", entry_reward=0)
    assert sync(database, merchant_id, order("z1", line("1", "60.00"),
                                             who=customer("z-one", None))).awarded == 0
    sync_batch(database, merchant_id, [order("z2", line("1", "60.00"),
                                             who=customer("z-two", None))])
    for customer_id in ("z-one", "z-two"):
        member = member_row(database, merchant_id, customer_id)
        assert (member.balance, tier_name(database, member.tier_id)) == (0, "Silver"), customer_id
        assert member.tier_progress == Decimal("60")


# --- 5. and 6. timestamps and amounts at the edges fail cleanly ----------------------------


@pytest.mark.parametrize("created_at", ["0001-01-01T00:00:00+01:00",
                                        "9999-12-31T23:59:59+14:00",
                                        "9999-12-31T23:59:59-14:00"])
def test_edge_timestamp_fails_at_once(runtime: Runtime, merchant_id: int,
                                      created_at: str) -> None:
    body = order_to_dict(order("edge-1", line("1", "10")))
    body["created_at"] = created_at
    answer, stored = deliver(runtime, merchant_id, body, "evt-edge")
    assert (answer, stored.state, stored.attempts) == ("failed", "failed", 1), stored.reason
    assert stored.reason.startswith("PayloadError: order.created_at"), stored.reason
    assert count_rows(runtime.database, OrderRow, merchant_id) == 0


def test_huge_amounts_fail_at_once(runtime: Runtime, merchant_id: int) -> None:
    """Each field is within its own limit; the lines' sum (10**15) is not."""
    huge = order("huge-1", *(line(str(i), "1000000000", quantity=100_000) for i in range(10)))
    body = order_to_dict(huge)
    body["total"] = "999999999"
    answer, stored = deliver(runtime, merchant_id, body, "evt-huge")
    assert (answer, stored.state, stored.attempts) == ("failed", "failed", 1), stored.reason
    assert stored.reason.startswith("PayloadError: order."), stored.reason
    assert "limit" in stored.reason, stored.reason
    assert count_rows(runtime.database, OrderRow, merchant_id) == 0
    assert count_rows(runtime.database, Member, merchant_id) == 0


# --- 7. a repeated adjustment reference is idempotent --------------------------------------


def test_repeated_adjustment_reference_returns_the_first_entry(runtime: Runtime,
                                                               merchant_id: int) -> None:
    database = runtime.database
    with unit_of_work(database) as session:
        member = member_for_customer(session, merchant_id, customer("c-adj", None))
        assert member is not None
        member_id = member.id
    entry_ids = []
    for _ in range(2):
        with unit_of_work(database) as session:
            entry_ids.append(adjust_points(session, merchant_id, member_id, 25,
                                           reason="goodwill", actor="alice",
                                           reference="ref-1").id)
    assert entry_ids[0] == entry_ids[1]
    with unit_of_work(database) as session:
        entries = session.execute(select(LedgerEntry.id).where(
            LedgerEntry.member_id == member_id)).scalars().all()
        assert entries == [entry_ids[0]]
    assert member_row(database, merchant_id, "c-adj").balance == 25


# --- 8. an invalid contact email does not block a known customer ---------------------------


def test_invalid_email_is_ignored_by_sync_order(runtime: Runtime, merchant_id: int) -> None:
    outcome = sync(runtime.database, merchant_id,
                   order("e1", line("1", "10"), who=customer("c7", "n/a")))
    assert outcome.awarded == 10
    member = member_row(runtime.database, merchant_id, "c7")
    assert (member.id, member.email, member.balance) == (outcome.member_id, None, 10)


def test_invalid_email_is_ignored_through_the_inbox(runtime: Runtime, merchant_id: int) -> None:
    body = order_to_dict(order("e2", line("1", "20"), who=customer("c7", "n/a")))
    answer, stored = deliver(runtime, merchant_id, body, "evt-bad-email")
    assert (answer, stored.state) == ("processed", "processed"), stored.reason
    member = member_row(runtime.database, merchant_id, "c7")
    assert (member.email, member.balance) == (None, 20)


# --- 9. the CLI on an unmigrated database -------------------------------------------------


@pytest.mark.skipif(LOYALTY is None, reason="the loyalty console script is not installed")
def test_cli_on_unmigrated_database_is_one_line(any_database: str, tmp_path: Path) -> None:
    """any_database alone is a fresh, empty database (only any_app migrates it)."""
    environ = {key: value for key, value in os.environ.items()
               if not key.startswith(("LOYALTY_", "FLASK_", "SHOPIFY_"))
               and key not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ENCRYPTION_KEY",
                               "JOBS_MODE")}
    environ.update({"LOYALTY_ENV": "test", "DATABASE_URL": any_database,
                    "LOYALTY_INSTANCE_DIR": str(tmp_path / "instance"),
                    "PYTHONWARNINGS": "ignore"})
    done = subprocess.run([str(LOYALTY), "events", "--json"], capture_output=True, text=True,
                          env=environ, cwd=tmp_path, timeout=120, check=False)
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Error: database error:"), done.stderr


# --- 10. settings ranges ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["SWEEP_INTERVAL_SECONDS", "REDEMPTION_HOLD_TIMEOUT_SECONDS"])
@pytest.mark.parametrize("value", ["0", "-1"])
def test_intervals_must_be_positive(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(environ={"LOYALTY_ENV": "development", name: value})


def test_unknown_jobs_mode_is_refused_in_development() -> None:
    with pytest.raises(ConfigError, match="JOBS_MODE"):
        load_settings(environ={"LOYALTY_ENV": "development", "JOBS_MODE": "bogus"})


# --- 11. the redemption's code is recorded at hold time -----------------------------------


def test_code_is_recorded_when_the_points_are_held(runtime: Runtime, merchant_id: int) -> None:
    with unit_of_work(runtime.database) as session:
        member = member_for_customer(session, merchant_id, customer("c-red", "red@example.com"))
        assert member is not None
        adjust_points(session, merchant_id, member.id, 500, reason="start", actor="test")
        reward = Reward(merchant_id=merchant_id, name="$5 off", kind="fixed_amount",
                        points_cost=500, value=Decimal(5))
        session.add(reward)
        session.flush()
        redemption = hold_redemption(session, merchant_id, member.id, reward.id)
        code = redemption.code
        assert code is not None
        assert re.fullmatch(r"[A-Z2-7]{12,}", code.rsplit("-", 1)[-1]), code
        assert discount_request(session, redemption, "USD").code == code
        redemption_id = redemption.id
    with unit_of_work(runtime.database) as session:
        stored = session.get(Redemption, redemption_id)
        assert stored is not None and stored.code == code


# --- 12. /healthz does not wait behind a writer on SQLite ---------------------------------


def test_healthz_answers_while_a_writer_holds_the_lock(app: Flask) -> None:
    path = make_url(app.extensions["loyalty"].database.url).database
    assert path
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    answers: list[int] = []
    try:
        writer.execute("BEGIN IMMEDIATE")
        worker = threading.Thread(
            target=lambda: answers.append(app.test_client().get("/healthz").status_code),
            daemon=True)
        started = time.monotonic()
        worker.start()
        worker.join(timeout=1.0)
        waited = time.monotonic() - started
        in_time = list(answers)
    finally:
        writer.execute("ROLLBACK")  # lets a blocked health check finish
        writer.close()
    worker.join(timeout=60)
    assert in_time == [200], f"no answer within 1 s ({waited:.2f}s); later: {answers}"
