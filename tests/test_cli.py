"""The ``loyalty`` operator command, run as operators run it: the console script in a
subprocess with the server's environment (DESIGN.md §3). Kept few: each start costs ~1 s."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from plugin_server.db import unit_of_work
from plugin_server.demo import DEMO_HISTORY_ORDERS, DEMO_SHOP
from plugin_server.loyalty.inbox import store_delivery
from tests.conftest import make_app

LOYALTY = shutil.which("loyalty")
pytestmark = pytest.mark.skipif(LOYALTY is None, reason="the loyalty console script is not "
                                                        "installed (pip install -e .)")
EVENT_KEYS = {"id", "merchant", "topic", "event_id", "state", "reason", "received_at"}


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)  # exactly one JSON document, nothing else


def loyalty(database: Path, *args: str) -> Result:
    environ = {key: value for key, value in os.environ.items()
               if not key.startswith(("LOYALTY_", "FLASK_", "SHOPIFY_"))
               and key not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ENCRYPTION_KEY",
                               "JOBS_MODE")}
    environ.update({"LOYALTY_ENV": "test", "DATABASE_URL": f"sqlite:///{database}",
                    "LOYALTY_INSTANCE_DIR": str(database.parent / "instance"),
                    "PYTHONWARNINGS": "ignore"})
    done = subprocess.run([str(LOYALTY), *args], capture_output=True, text=True,
                          env=environ, cwd=database.parent, timeout=120, check=False)
    return Result(done.returncode, done.stdout, done.stderr)


def copy_database(source: Path, target: Path) -> Path:
    """A consistent copy of a SQLite database in WAL mode (the backup API, not cp)."""
    with sqlite3.connect(source) as original, sqlite3.connect(target) as copy:
        original.backup(copy)
    return target


@pytest.fixture(scope="module")
def demo_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrated, demo merchant seeded, 60 seed orders + 30 more pushed through the inbox."""
    database = tmp_path_factory.mktemp("cli") / "loyalty.sqlite3"
    upgraded = loyalty(database, "db", "upgrade")
    assert upgraded.code == 0, upgraded.err
    assert "database at the latest schema (sqlite)" in upgraded.out
    demo = loyalty(database, "demo", "--orders", "30")
    assert demo.code == 0, demo.err
    assert "done" in demo.out
    return database


@pytest.fixture
def database(demo_database: Path, tmp_path: Path) -> Path:
    """A private copy of the demo database, so a test may damage it."""
    return copy_database(demo_database, tmp_path / "copy.sqlite3")


def query(database: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database) as connection:
        return connection.execute(sql, params).fetchall()


def test_db_upgrade_is_idempotent(database: Path) -> None:
    """The fixture migrated a fresh file; upgrading a database already at head is a no-op."""
    ((version,),) = query(database, "SELECT version_num FROM alembic_version")
    result = loyalty(database, "db", "upgrade")
    assert result.code == 0, result.err
    assert query(database, "SELECT version_num FROM alembic_version") == [(version,)]
    tables = {name for (name,) in query(database, "SELECT name FROM sqlite_master "
                                                  "WHERE type = 'table'")}
    assert {"merchants", "members", "ledger_entries", "inbox_events", "orders"} <= tables


def test_demo_orders_then_check_ledger_is_consistent(demo_database: Path) -> None:
    ((orders,),) = query(demo_database, "SELECT count(*) FROM orders")
    assert orders == DEMO_HISTORY_ORDERS + 30  # the seeded history, then --orders 30
    ((members,),) = query(demo_database, "SELECT count(*) FROM members")
    result = loyalty(demo_database, "check-ledger")
    assert result.code == 0, result.err
    assert result.out.strip() == (f"ledger consistent: {members} member balances equal their "
                                  "entries")


def test_merchants_json(demo_database: Path) -> None:
    result = loyalty(demo_database, "merchants", "--json")
    assert result.code == 0, result.err
    (merchant,) = result.json()
    assert merchant == {"id": 1, "platform": "shopify", "shop": DEMO_SHOP, "status": "active"}


def test_corrupted_balance_fails_check_ledger(database: Path) -> None:
    ((member_id, balance, pending),) = query(database, "SELECT id, balance, pending FROM "
                                                       "members ORDER BY balance DESC, id "
                                                       "LIMIT 1")
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE members SET balance = balance + 1 WHERE id = ?", (member_id,))
    result = loyalty(database, "check-ledger")
    assert result.code == 1
    assert result.out.splitlines() == [
        f"merchant 1 member {member_id}: balance {balance + 1} != entries {balance}, "
        f"pending {pending} != entries {pending}"]

    as_json = loyalty(database, "check-ledger", "--json")
    assert as_json.code == 1
    report = as_json.json()
    assert report["consistent"] is False
    assert report["differences"] == [{
        "merchant_id": 1, "member_id": member_id, "cached_balance": balance + 1,
        "ledger_balance": balance, "cached_pending": pending, "ledger_pending": pending}]


def store(database: Path, event_id: str, payload: bytes, *, process: bool = False) -> int:
    """Store a delivery for the demo merchant through the engine, in this process."""
    runtime = make_app(f"sqlite:///{database}").extensions["loyalty"]
    try:
        with unit_of_work(runtime.database) as session:
            row = store_delivery(session, 1, "demo", "orders/paid", event_id, payload)
        assert row is not None
        if process:
            runtime.jobs.run("process_inbox_event", row)
        return row
    finally:
        runtime.database.dispose()


def test_events_json_and_failed_json(database: Path) -> None:
    row = store(database, "broken-1", b"{not json", process=True)
    ((stored,),) = query(database, "SELECT count(*) FROM inbox_events")

    everything = loyalty(database, "events", "--json")
    assert everything.code == 0, everything.err
    rows = everything.json()
    assert len(rows) == min(stored, 200)  # the default limit, newest first
    assert all(set(r) == EVENT_KEYS for r in rows)
    assert rows[0]["id"] == row and rows[0]["state"] == "failed"
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)
    assert {r["state"] for r in rows[1:]} <= {"processed"}

    failed = loyalty(database, "events", "--failed", "--json")
    assert failed.code == 0, failed.err
    (only,) = failed.json()
    assert only["id"] == row and only["merchant"] == 1
    assert (only["topic"], only["event_id"], only["state"]) == ("orders/paid", "broken-1",
                                                                "failed")
    assert only["reason"].startswith("PayloadError: body is not valid JSON")
    assert only["received_at"].endswith("+00:00")


def test_member_json_by_shop_domain_and_by_email(demo_database: Path) -> None:
    customer_id, email, balance, pending = query(
        demo_database, "SELECT customer_id, email, balance, pending FROM members "
                       "WHERE customer_id IS NOT NULL AND email IS NOT NULL "
                       "ORDER BY balance DESC LIMIT 1")[0]
    ((entries,),) = query(demo_database, "SELECT count(*) FROM ledger_entries e JOIN members m "
                                         "ON m.id = e.member_id WHERE m.customer_id = ?",
                          customer_id)
    by_id = loyalty(demo_database, "member", DEMO_SHOP, customer_id, "--json")
    assert by_id.code == 0, by_id.err
    details = by_id.json()
    assert {"customer_id", "email", "balance", "pending", "tier", "history"} <= set(details)
    assert (details["customer_id"], details["email"]) == (customer_id, email)
    assert type(details["balance"]) is int and type(details["pending"]) is int
    assert (details["balance"], details["pending"]) == (balance, pending)
    assert len(details["history"]) == min(entries, 50)
    assert all(type(e["points"]) is int for e in details["history"])

    by_email = loyalty(demo_database, "member", "1", email.upper(), "--json")
    assert by_email.code == 0, by_email.err
    assert by_email.json() == details


@pytest.mark.parametrize("arguments", [
    (DEMO_SHOP, "nobody@example.com"),
    ("unknown-shop.example", "1000"),
])
def test_member_unknown_exits_1_with_one_line(demo_database: Path,
                                              arguments: tuple[str, str]) -> None:
    result = loyalty(demo_database, "member", *arguments, "--json")
    assert result.code == 1
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert "no member" in lines[0] or "no merchant" in lines[0]


def test_sweep_json_redispatches_a_lost_delivery(database: Path) -> None:
    body = {"order_id": "lost-1", "created_at": "2026-01-05T12:00:00Z",
            "updated_at": "2026-01-05T12:00:00Z", "currency": "USD", "total": "30",
            "paid": True, "customer": {"customer_id": "sweep-1", "email": "s@example.com"},
            "line_items": [{"line_id": "1", "quantity": 1, "unit_price": "30"}]}
    store(database, "lost-1", json.dumps(body).encode())  # stored, its job never ran
    assert query(database, "SELECT state FROM inbox_events WHERE event_id = 'lost-1'") == [
        ("received",)]
    result = loyalty(database, "sweep", "--json")
    assert result.code == 0, result.err
    report = result.json()
    assert set(report) == {"redispatched", "released_points", "voided_holds"}
    assert report["redispatched"] == 1
    assert all(type(value) is int for value in report.values())
    assert query(database, "SELECT state FROM inbox_events WHERE event_id = 'lost-1'") == [
        ("processed",)]
    assert query(database, "SELECT balance FROM members WHERE customer_id = 'sweep-1'") == [
        (30,)]


def test_unmigrated_database_is_one_clear_line(tmp_path: Path) -> None:
    result = loyalty(tmp_path / "empty.sqlite3", "check-ledger")
    assert result.code == 1
    assert result.out == ""
    (line,) = result.err.strip().splitlines()
    assert line.startswith("Error: database error: no such table: members (database sqlite:///")
    assert line.endswith("empty.sqlite3: run `loyalty db upgrade` first, or run from the "
                         "directory that holds your instance/ folder, or set DATABASE_URL)")


def test_production_without_settings_says_which_are_missing(tmp_path: Path) -> None:
    environ = {key: value for key, value in os.environ.items()
               if not key.startswith(("LOYALTY_", "SHOPIFY_")) and key not in (
                   "DATABASE_URL", "SECRET_KEY", "ENCRYPTION_KEY", "APP_URL")}
    environ["LOYALTY_ENV"] = "production"
    done = subprocess.run([str(LOYALTY), "merchants", "--json"], capture_output=True,
                          text=True, env=environ, cwd=tmp_path, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "Error: cannot start: production needs these settings: SECRET_KEY, ENCRYPTION_KEY, "
        "DATABASE_URL, APP_URL, SHOPIFY_API_KEY, SHOPIFY_API_SECRET"]
