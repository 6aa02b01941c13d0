"""Order processing throughput: inbox -> points, tier (DESIGN.md §10).

Budget: ≥ 1,000 orders/s on SQLite, and ≥ 0.25 x raw SQL inserting the same rows.

    python bench/order_processing.py [--orders N] [--json] [--profile]

1. A fresh, migrated SQLite database with the demo merchant (tiers, rewards).
2. N ``orders/paid`` deliveries (≈1,000 shoppers, 1-3 lines, some guests) stored in the inbox
   first, untimed.
3. Timed: every stored delivery processed through the job a worker runs
   (``runtime.jobs.run("process_inbox_event", id)``, or a batch job if ``plugin_server.jobs``
   offers one, see ``find_batch_job``).
4. Timed baseline in the same run: stdlib ``sqlite3`` on a copy of the same database (schema,
   merchant, inbox rows) with the same PRAGMAs, writing the rows the product writes per order
   (member upsert, order row, ledger entry, inbox state) with the same transaction
   granularity.
5. Checks afterwards: every delivery processed, one order row each, ``ledger_differences`` empty.

Not part of the test suite; see bench/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import inspect
import io
import json
import logging
import pstats
import random
import re
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from integrations.canonical import order_to_dict, parse_order  # noqa: E402
from plugin_server import create_app  # noqa: E402
from plugin_server import jobs as jobs_module  # noqa: E402
from plugin_server.db import Database, unit_of_work  # noqa: E402
from plugin_server.demo import FIRST_NAMES, LAST_NAMES, PRODUCTS, seed_demo_program  # noqa: E402
from plugin_server.loyalty.audit import ledger_differences  # noqa: E402
from plugin_server.loyalty.inbox import store_delivery  # noqa: E402
from plugin_server.loyalty.merchants import create_merchant  # noqa: E402
from plugin_server.loyalty.rules import EarningPolicy, compute_award  # noqa: E402
from plugin_server.migrate import upgrade  # noqa: E402
from plugin_server.models import InboxEvent, LedgerEntry, Member  # noqa: E402
from plugin_server.models import Order as OrderRow  # noqa: E402
from plugin_server.runtime import Runtime  # noqa: E402

MIN_ORDERS_PER_SECOND = 1_000.0
MIN_RATIO = 0.25
STORE_BATCH = 500
# Names a batch job in plugin_server.jobs might have; the first one found in JOBS is used.
BATCH_JOB_NAMES = ("process_inbox_batch", "process_inbox_events", "process_inbox_event_batch",
                   "process_inbox_events_batch")
BATCH_SIZE_NAMES = ("INBOX_BATCH_SIZE", "PROCESS_BATCH_SIZE", "BATCH_SIZE")
DEFAULT_BATCH_SIZE = 100
FROM_TABLE = re.compile(r"\bFROM\s+(\w+)")

Delivery = tuple[str, str, dict[str, Any]]  # (topic, event id, canonical order)


# --------------------------------------------------------------------------- deliveries


def generate_deliveries(count: int, shoppers: int = 1_000, seed: int = 20_240_601,
                        guest_share: float = 0.05) -> list[Delivery]:
    """``count`` paid orders from ``shoppers`` shoppers, 1-3 lines each, a few as guests."""
    rng = random.Random(seed)
    people = []
    for index in range(shoppers):
        first = FIRST_NAMES[index % len(FIRST_NAMES)]
        last = LAST_NAMES[(index * 7) % len(LAST_NAMES)]
        people.append({"customer_id": str(10_000 + index), "first_name": first,
                       "last_name": last,
                       "email": f"{first.lower()}.{last.lower()}{index}@example.com"})
    clock = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)
    deliveries: list[Delivery] = []
    for number in range(1, count + 1):
        clock += timedelta(seconds=rng.randint(1, 300))
        shopper = dict(rng.choice(people))
        if rng.random() < guest_share:
            shopper["customer_id"] = None
        lines = []
        for index in range(rng.randint(1, 3)):
            product_id, title, price, collections = rng.choice(PRODUCTS)
            lines.append({"line_id": str(index + 1), "product_id": product_id, "title": title,
                          "quantity": rng.randint(1, 3), "unit_price": price,
                          "total_discount": "0", "collection_ids": collections,
                          "is_gift_card": product_id == "card-gift"})
        subtotal = sum(Decimal(line["unit_price"]) * line["quantity"] for line in lines)
        order_id = f"B{number}"
        stamp = clock.isoformat()
        deliveries.append(("orders/paid", f"{order_id}:paid", {
            "order_id": order_id, "name": f"#{order_id}", "created_at": stamp,
            "updated_at": stamp, "currency": "USD", "customer": shopper, "line_items": lines,
            "shipping": "5.00", "taxes": "0", "total": str(subtotal + 5), "paid": True,
            "refunds": [],
        }))
    return deliveries


def store_all(database: Database, merchant_id: int, deliveries: Sequence[Delivery]) -> list[int]:
    """Store every delivery in the inbox (batches of STORE_BATCH per transaction)."""
    ids: list[int] = []
    for start in range(0, len(deliveries), STORE_BATCH):
        with unit_of_work(database) as session:
            for topic, event_id, body in deliveries[start:start + STORE_BATCH]:
                row = store_delivery(session, merchant_id, "demo", topic, event_id,
                                     json.dumps(body).encode(), {"X-Demo-Topic": topic})
                assert row is not None, f"duplicate delivery {event_id}"
                ids.append(row)
    return ids


# --------------------------------------------------------------------------- product path


@dataclass
class SqlCounter:
    """Counts (and times, in the DB-API driver) every statement the engine sends."""

    statements: Counter[str] = field(default_factory=Counter)
    driver_seconds: float = 0.0
    enabled: bool = False
    _started: float = 0.0

    def attach(self, engine: Any) -> None:
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if self.enabled:
            self.statements[statement] += 1
            self._started = time.perf_counter()

    def _after(self, *_args: Any) -> None:
        if self.enabled:
            self.driver_seconds += time.perf_counter() - self._started

    @property
    def total(self) -> int:
        return sum(self.statements.values())

    def by_kind(self) -> Counter[str]:
        kinds: Counter[str] = Counter()
        for statement, count in self.statements.items():
            words = statement.split(None, 2)
            kind = words[0].upper() if words else "?"
            if kind in ("INSERT", "DELETE") and len(words) > 2:
                kinds[f"{kind} {words[2].split()[0]}"] += count
            elif kind == "UPDATE" and len(words) > 1:
                kinds[f"UPDATE {words[1]}"] += count
            elif kind == "SELECT":
                found = FROM_TABLE.search(statement)
                kinds[f"SELECT {found.group(1) if found else '(no table)'}"] += count
            elif kind in ("SAVEPOINT", "RELEASE", "ROLLBACK"):
                kinds[kind] += count
            else:
                kinds[" ".join(words[:2]).upper()] += count
        return kinds


@dataclass
class ProductSetup:
    path: Path
    runtime: Runtime
    merchant_id: int
    event_ids: list[int]
    counter: SqlCounter


def _runtime(path: Path) -> Runtime:
    app = create_app({"LOYALTY_ENV": "test", "DATABASE_URL": f"sqlite:///{path}",
                      "JOBS_MODE": "eager", "SECRET_KEY": "bench-secret",
                      "ENCRYPTION_KEY": "bench-encryption-key"})
    runtime: Runtime = app.extensions["loyalty"]
    return runtime


def make_product(path: Path, deliveries: Sequence[Delivery]) -> ProductSetup:
    """A fresh migrated database with the demo merchant and every delivery in the inbox."""
    runtime = _runtime(path)
    upgrade(runtime.database)
    with unit_of_work(runtime.database) as session:
        merchant = create_merchant(session, "demo", "bench-store.example",
                                   name="Demo Tea House")
        seed_demo_program(session, merchant)  # the demo's tiers, entry rewards and rewards
        merchant_id = merchant.id
    event_ids = store_all(runtime.database, merchant_id, deliveries)
    counter = SqlCounter()
    counter.attach(runtime.database.engine)
    return ProductSetup(path, runtime, merchant_id, event_ids, counter)


def reopen_product(path: Path, like: ProductSetup, count: int) -> ProductSetup:
    """A product runtime on a copy made before the measured run; the first ``count`` ids."""
    runtime = _runtime(path)
    counter = SqlCounter()
    counter.attach(runtime.database.engine)
    return ProductSetup(path, runtime, like.merchant_id, like.event_ids[:count], counter)


@dataclass(frozen=True)
class Timed:
    seconds: float  # wall clock
    cpu_seconds: float  # this process's CPU time: robust when other work shares the machine
    orders: int
    results: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class BatchJob:
    name: str
    size: int
    star_args: bool


def find_batch_job(batch_size: int | None) -> BatchJob | None:
    """A job in plugin_server.jobs.JOBS that processes many inbox ids per call, if any."""
    for name in BATCH_JOB_NAMES:
        function = jobs_module.JOBS.get(name)
        if function is None:
            continue
        parameters = list(inspect.signature(function).parameters.values())[1:]
        star = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters)
        size = batch_size or next((int(getattr(jobs_module, n)) for n in BATCH_SIZE_NAMES
                                   if isinstance(getattr(jobs_module, n, None), int)),
                                  DEFAULT_BATCH_SIZE)
        return BatchJob(name, size, star)
    return None


def run_product(setup: ProductSetup, batch: BatchJob | None,
                profiler: cProfile.Profile | None = None,
                time_limit: float | None = None) -> Timed:
    """Process the stored deliveries the way a worker does, in id order, until all are done or
    ``time_limit`` seconds have passed."""
    jobs = setup.runtime.jobs
    ids = setup.event_ids
    step = batch.size if batch else 1
    results: Counter[str] = Counter()
    attempted = 0
    setup.counter.enabled = True
    if profiler is not None:
        profiler.enable()
    cpu_started = time.process_time()
    started = time.perf_counter()
    deadline = started + time_limit if time_limit else None
    for start in range(0, len(ids), step):
        if batch is None:
            results[jobs.run("process_inbox_event", ids[start])] += 1
        else:
            chunk = ids[start:start + step]
            answer = (jobs.run(batch.name, *chunk) if batch.star_args
                      else jobs.run(batch.name, chunk))
            results.update(_summarise(answer, len(chunk)))
        attempted = min(start + step, len(ids))
        if deadline is not None and start % 50 < step and time.perf_counter() > deadline:
            break
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    if profiler is not None:
        profiler.disable()
    setup.counter.enabled = False
    return Timed(seconds, cpu_seconds, attempted, results)


def _summarise(answer: Any, count: int) -> Counter[str]:
    """A batch job's answer as counts of states ({event id: state} or a list of states)."""
    if isinstance(answer, dict):
        return Counter(str(state) for state in answer.values())
    if isinstance(answer, (list, tuple)):
        return Counter(str(state) for state in answer)
    return Counter({f"batch answered {type(answer).__name__}": count})


@dataclass
class Verification:
    deliveries: int
    attempted: int
    processed: int
    not_processed: int
    order_rows: int
    award_entries: int
    orders_with_points: int
    tier_reward_entries: int
    members: int
    ledger_differences: list[dict[str, int]]

    @property
    def ok(self) -> bool:
        return (self.processed == self.attempted
                and self.not_processed == self.deliveries - self.attempted
                and self.order_rows == self.attempted
                and self.award_entries == self.orders_with_points
                and not self.ledger_differences)


def verify(setup: ProductSetup, attempted: int) -> Verification:
    with unit_of_work(setup.runtime.database) as session:
        states = dict(session.execute(
            select(InboxEvent.state, func.count()).group_by(InboxEvent.state)).all())
        order_rows = session.execute(select(func.count()).select_from(OrderRow)).scalar_one()
        with_points = session.execute(select(func.count()).select_from(OrderRow)
                                      .where(OrderRow.awarded_points > 0)).scalar_one()
        kinds = dict(session.execute(
            select(LedgerEntry.kind, func.count()).group_by(LedgerEntry.kind)).all())
        members = session.execute(select(func.count()).select_from(Member)).scalar_one()
        differences = [asdict(d) for d in ledger_differences(session, setup.merchant_id)]
    total = sum(states.values())
    return Verification(
        deliveries=len(setup.event_ids), attempted=attempted,
        processed=int(states.get("processed", 0)),
        not_processed=int(total - states.get("processed", 0)), order_rows=int(order_rows),
        award_entries=int(kinds.get("award", 0)), orders_with_points=int(with_points),
        tier_reward_entries=int(kinds.get("tier_reward", 0)), members=int(members),
        ledger_differences=differences)


# --------------------------------------------------------------------------- raw SQL baseline


def _stamp(moment: datetime) -> str:
    """How SQLAlchemy stores a UTC DateTime on SQLite."""
    return moment.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def _scaled(amount: Decimal) -> int:
    return int(amount * 10_000)


@dataclass(frozen=True)
class BaselineRow:
    member: tuple[Any, ...]
    order: tuple[Any, ...]
    entry: tuple[Any, ...]


def baseline_rows(merchant_id: int, deliveries: Sequence[Delivery]) -> list[BaselineRow]:
    """Per order the values the product writes, prepared before the clock starts."""
    policy = EarningPolicy()
    now = _stamp(datetime.now(UTC))
    rows = []
    for _topic, _event_id, body in deliveries:
        order = parse_order(body)
        snapshot = compute_award(order, policy)
        customer = order.customer
        email = (customer.email or "").strip().lower()
        rows.append(BaselineRow(
            member=(merchant_id, customer.customer_id, email, customer.first_name or "",
                    customer.last_name or "", snapshot.points,
                    _scaled(Decimal(snapshot.points)), now, now),
            order=(merchant_id, order.order_id, order.name, customer.customer_id, email,
                   order.currency, _stamp(order.created_at), _stamp(order.updated_at),
                   _scaled(order.lines_subtotal), _scaled(order.total),
                   _scaled(snapshot.base_amount), json.dumps(list(order.discount_codes)),
                   json.dumps(order_to_dict(order)), snapshot.to_json(), snapshot.points,
                   now, now, now),
            entry=(merchant_id, snapshot.points, order.order_id, f"order {order.name}", now),
        ))
    return rows


MEMBER_UPSERT = """
INSERT INTO members (merchant_id, customer_id, email, first_name, last_name, balance, pending,
                     tier_id, tier_progress, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, 0, NULL, ?, ?, ?)
ON CONFLICT (merchant_id, email) DO UPDATE SET
    customer_id = coalesce(members.customer_id, excluded.customer_id),
    balance = members.balance + excluded.balance,
    tier_progress = members.tier_progress + excluded.tier_progress,
    updated_at = excluded.updated_at
RETURNING id"""
ORDER_INSERT = """
INSERT INTO orders (merchant_id, platform_order_id, member_id, name, customer_id, email,
                    currency, placed_at, platform_updated_at, subtotal, total, base_amount,
                    refunded_amount, paid, fulfilled, cancelled, test, discount_codes, snapshot,
                    award_snapshot, awarded_points, reversed_points, awarded_at, pending_until,
                    released_at, status_note, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 1, 0, 0, 0, ?, ?, ?, ?, 0, ?, NULL, NULL,
        'awarded', ?, ?)"""
ENTRY_INSERT = """
INSERT INTO ledger_entries (merchant_id, member_id, kind, points, pending_points, source_kind,
                            source_id, order_id, redemption_id, reason, actor, created_at)
VALUES (?, ?, 'award', ?, 0, 'order', ?, ?, NULL, ?, 'system', ?)"""
INBOX_DONE = """
UPDATE inbox_events SET state = 'processed', reason = '', attempts = attempts + 1,
                        processed_at = ? WHERE id = ?"""


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database (the online backup API; WAL-safe)."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def run_baseline(path: Path, event_ids: Sequence[int], rows: Sequence[BaselineRow],
                 per_transaction: int) -> Timed:
    """Raw sqlite3: member upsert, order insert, ledger insert, inbox update per order,
    ``per_transaction`` orders per BEGIN IMMEDIATE ... COMMIT."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                   "busy_timeout=30000"):
        connection.execute(f"PRAGMA {pragma}")
    cursor = connection.cursor()
    cpu_started = time.process_time()
    started = time.perf_counter()
    for start in range(0, len(rows), per_transaction):
        cursor.execute("BEGIN IMMEDIATE")
        for index in range(start, min(start + per_transaction, len(rows))):
            row = rows[index]
            member_id = cursor.execute(MEMBER_UPSERT, row.member).fetchone()[0]
            order = row.order
            cursor.execute(ORDER_INSERT, (*order[:2], member_id, *order[2:]))
            order_id = cursor.lastrowid
            entry = row.entry
            if entry[1]:
                cursor.execute(ENTRY_INSERT, (entry[0], member_id, entry[1], entry[2], order_id,
                                              entry[3], entry[4]))
            cursor.execute(INBOX_DONE, (entry[4], event_ids[index]))
        cursor.execute("COMMIT")
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    processed = cursor.execute(
        "SELECT count(*) FROM inbox_events WHERE state = 'processed'").fetchone()[0]
    connection.close()
    if processed != len(rows):
        raise RuntimeError(f"baseline processed {processed} of {len(rows)} deliveries")
    return Timed(seconds, cpu_seconds, len(rows))


def run_baselines(template: Path, event_ids: Sequence[int], rows: Sequence[BaselineRow],
                  per_transaction: int, repeats: int) -> Timed:
    """The baseline ``repeats`` times, each on a fresh copy; the median run by wall time."""
    runs = []
    for attempt in range(repeats):
        target = template.with_name(f"baseline-run{attempt}.sqlite3")
        copy_database(template, target)
        runs.append(run_baseline(target, event_ids, rows, per_transaction))
    runs.sort(key=lambda run: run.seconds)
    return runs[len(runs) // 2]


# --------------------------------------------------------------------------- profile report

BUCKETS = (
    ("sqlite3 driver (C)", ("sqlite3.",)),
    ("sqlalchemy.orm", ("sqlalchemy/orm/",)),
    ("sqlalchemy.engine", ("sqlalchemy/engine/", "sqlalchemy/pool/", "sqlalchemy/dialects/")),
    ("sqlalchemy.sql (compile/cache)", ("sqlalchemy/sql/",)),
    ("sqlalchemy other", ("sqlalchemy/",)),
    ("plugin_server", ("plugin_server/",)),
    ("integrations", ("integrations/",)),
    ("json", ("json/", "_json", "'dumps'", "'loads'")),
    ("decimal", ("decimal", "Decimal")),
    ("datetime", ("datetime",)),
    ("logging", ("logging/",)),
)


def _bucket(key: tuple[str, int, str]) -> str:
    filename, _line, name = key
    text = f"{filename} {name}"
    for label, needles in BUCKETS:
        if any(needle in text for needle in needles):
            return label
    return "other (builtins, typing, dataclasses...)"


def profile_report(profiler: cProfile.Profile, orders: int, top: int = 25) -> str:
    """Top functions by cumulative and by self time, and self time grouped by area."""
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs()
    out.write(f"\n=== cProfile: top {top} by cumulative time ===\n")
    stats.sort_stats("cumulative").print_stats(top)
    out.write(f"\n=== cProfile: top {top} by total (self) time ===\n")
    stats.sort_stats("tottime").print_stats(top)
    raw = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    buckets: Counter[str] = Counter()
    for key, (_cc, _nc, tottime, _ct, _callers) in raw.items():
        buckets[_bucket(key)] += tottime
    total = sum(buckets.values()) or 1.0
    out.write("\n=== self time by area (profiled run) ===\n")
    for label, seconds in buckets.most_common():
        out.write(f"  {label:<42} {seconds:7.3f} s  {100 * seconds / total:5.1f} %  "
                  f"{1e6 * seconds / orders:8.1f} µs/order\n")
    return out.getvalue()


# --------------------------------------------------------------------------- main


def _table(rows: Sequence[tuple[str, str]]) -> str:
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"  {label:<{width}}  {value}" for label, value in rows)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Order processing throughput (inbox -> points, tier) against DESIGN.md §10.")
    parser.add_argument("--orders", type=int, default=5_000, help="orders to process (5000)")
    parser.add_argument("--shoppers", type=int, default=1_000, help="distinct shoppers (1000)")
    parser.add_argument("--seed", type=int, default=20_240_601, help="generator seed")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="deliveries per call when plugin_server.jobs has a batch job")
    parser.add_argument("--single", action="store_true",
                        help="use process_inbox_event even when a batch job exists")
    parser.add_argument("--time-limit", type=float, default=30.0,
                        help="stop the timed product run after this many seconds and measure "
                             "the deliveries done so far (0: no limit; default 30)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--profile", action="store_true",
                        help="also process the orders again on a fresh database under cProfile "
                             "and print the hot spots (the measured run stays unprofiled)")
    parser.add_argument("--profile-orders", type=int, default=1_000,
                        help="deliveries in the profiled run (default 1000)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="judge the budgets by wall-clock (default) or CPU-time rates")
    parser.add_argument("--baseline-repeats", type=int, default=3,
                        help="baseline runs on fresh copies; the median counts (default 3)")
    parser.add_argument("--top", type=int, default=25, help="functions per cProfile table")
    parser.add_argument("--statements", type=int, default=15,
                        help="most frequent SQL statements to list (0: none)")
    args = parser.parse_args(argv)
    if args.orders < 1 or args.shoppers < 1:
        parser.error("--orders and --shoppers must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("plugin_server").setLevel(logging.ERROR)
    wall = time.perf_counter()
    deliveries = generate_deliveries(args.orders, args.shoppers, args.seed)
    batch = None if args.single else find_batch_job(args.batch_size)
    path_name = (f"jobs.run({batch.name!r}, ids) in batches of {batch.size}" if batch
                 else "jobs.run('process_inbox_event', id), one delivery per transaction")
    per_transaction = batch.size if batch else 1

    with tempfile.TemporaryDirectory(prefix="loyalty-bench-") as tmp_name:
        tmp = Path(tmp_name)
        product = make_product(tmp / "product.sqlite3", deliveries)
        # The baseline (and the profiled run) start from copies of the same database: schema,
        # merchant, inbox rows.
        base_path = tmp / "baseline.sqlite3"
        copy_database(product.path, base_path)
        if args.profile:
            copy_database(product.path, tmp / "profiled.sqlite3")
        base_ids = product.event_ids
        rows = baseline_rows(product.merchant_id, deliveries)
        setup_seconds = time.perf_counter() - wall

        measured = run_product(product, batch, time_limit=args.time_limit or None)
        n = measured.orders
        raw = run_baselines(base_path, base_ids[:n], rows[:n], per_transaction,
                            args.baseline_repeats)
        # For reference when the product batches: the same rows, one order per transaction.
        raw_single = (run_baselines(base_path, base_ids[:n], rows[:n], 1, args.baseline_repeats)
                      if per_transaction > 1 else raw)
        check = verify(product, n)
        counter = product.counter
        product.runtime.database.dispose()

        profile_text = ""
        profiled: Timed | None = None
        if args.profile:
            count = max(1, min(args.profile_orders, args.orders))
            setup = reopen_product(tmp / "profiled.sqlite3", product, count)
            profiler = cProfile.Profile()
            profiled = run_product(setup, batch, profiler, time_limit=args.time_limit or None)
            profile_text = profile_report(profiler, profiled.orders, args.top)
            setup.runtime.database.dispose()

    rate, raw_rate = n / measured.seconds, n / raw.seconds
    cpu_rate, raw_cpu_rate = n / measured.cpu_seconds, n / raw.cpu_seconds
    ratio, cpu_ratio = rate / raw_rate, cpu_rate / raw_cpu_rate
    judged_rate, judged_ratio = (cpu_rate, cpu_ratio) if args.clock == "cpu" else (rate, ratio)
    report: dict[str, Any] = {
        "orders_requested": args.orders,
        "orders_measured": n,
        "truncated_by_time_limit": n < args.orders,
        "shoppers": args.shoppers,
        "product_path": path_name,
        "orders_per_transaction": per_transaction,
        "clock_judged": args.clock,
        "product_seconds": round(measured.seconds, 4),
        "product_cpu_seconds": round(measured.cpu_seconds, 4),
        "product_orders_per_s": round(rate, 1),
        "product_orders_per_cpu_s": round(cpu_rate, 1),
        "product_ms_per_order": round(1000 * measured.seconds / n, 4),
        "raw_seconds": round(raw.seconds, 4),
        "raw_cpu_seconds": round(raw.cpu_seconds, 4),
        "raw_orders_per_s": round(raw_rate, 1),
        "raw_orders_per_cpu_s": round(raw_cpu_rate, 1),
        "raw_ms_per_order": round(1000 * raw.seconds / n, 4),
        "ratio": round(ratio, 4),
        "ratio_cpu": round(cpu_ratio, 4),
        "raw_one_per_txn_orders_per_s": round(n / raw_single.seconds, 1),
        "raw_one_per_txn_orders_per_cpu_s": round(n / raw_single.cpu_seconds, 1),
        "ratio_vs_raw_one_per_txn": round(rate / (n / raw_single.seconds), 4),
        "budget_orders_per_s": MIN_ORDERS_PER_SECOND,
        "budget_ratio": MIN_RATIO,
        "pass_orders_per_s": judged_rate >= MIN_ORDERS_PER_SECOND,
        "pass_ratio": judged_ratio >= MIN_RATIO,
        "sql_statements_per_order": round(counter.total / n, 2),
        "sql_driver_share_of_product_time": round(counter.driver_seconds / measured.seconds, 4),
        "sql_by_kind_per_order": {kind: round(count / n, 3)
                                  for kind, count in counter.by_kind().most_common()},
        "job_results": dict(measured.results),
        "verification": {**asdict(check), "ok": check.ok},
        "setup_seconds": round(setup_seconds, 2),
    }
    if profiled is not None:
        report["profiled_orders"] = profiled.orders
        report["profiled_orders_per_s"] = round(profiled.orders / profiled.seconds, 1)
    report["pass"] = bool(report["pass_orders_per_s"] and report["pass_ratio"] and check.ok)
    report["wall_seconds"] = round(time.perf_counter() - wall, 2)

    if args.json:
        print(json.dumps(report, indent=2))
        return 0 if report["pass"] else 1
    verdict = {True: "PASS", False: "FAIL"}
    print(f"Order processing: {n} orders/paid deliveries from {args.shoppers} shoppers, "
          f"SQLite (WAL, synchronous=NORMAL)")
    if n < args.orders:
        print(f"  (the product run hit --time-limit {args.time_limit:g} s: measured the first "
              f"{n} of {args.orders} deliveries; the baseline wrote the same {n})")
    print(f"product:  {path_name}")
    print(f"baseline: stdlib sqlite3, same schema, {per_transaction} order(s) per transaction, "
          f"median of {args.baseline_repeats}\n")
    print(_table([
        ("", "    wall clock                 CPU time"),
        ("product", f"{rate:9.1f} orders/s {1000 * measured.seconds / n:7.3f} ms   "
                    f"{cpu_rate:9.1f} orders/s {1000 * measured.cpu_seconds / n:7.3f} ms"),
        ("raw sqlite3", f"{raw_rate:9.1f} orders/s {1000 * raw.seconds / n:7.3f} ms   "
                        f"{raw_cpu_rate:9.1f} orders/s {1000 * raw.cpu_seconds / n:7.3f} ms"),
        ("ratio product/raw", f"{ratio:9.3f}                    {cpu_ratio:9.3f}"),
        *([("raw, 1 order/txn (info)",
            f"{n / raw_single.seconds:9.1f} orders/s {1000 * raw_single.seconds / n:7.3f} ms   "
            f"{n / raw_single.cpu_seconds:9.1f} orders/s "
            f"{1000 * raw_single.cpu_seconds / n:7.3f} ms"),
           ("ratio vs 1 order/txn (info)",
            f"{rate * raw_single.seconds / n:9.3f}                    "
            f"{cpu_rate * raw_single.cpu_seconds / n:9.3f}")] if per_transaction > 1 else []),
        (f"budget >= {MIN_ORDERS_PER_SECOND:,.0f} orders/s",
         f"{verdict[report['pass_orders_per_s']]}  ({args.clock} clock)"),
        (f"budget ratio >= {MIN_RATIO}", f"{verdict[report['pass_ratio']]}  ({args.clock} clock)"),
        ("correctness", f"{verdict[check.ok]}  processed {check.processed}/{check.attempted}, "
                        f"order rows {check.order_rows}, award entries {check.award_entries}/"
                        f"{check.orders_with_points}, ledger differences "
                        f"{len(check.ledger_differences)}"),
        ("", f"members {check.members}, tier reward entries {check.tier_reward_entries}, "
             f"job results {dict(measured.results)}"),
        ("SQL round trips/order", f"{counter.total / n:.2f}; time inside the sqlite3 driver: "
                                  f"{100 * counter.driver_seconds / measured.seconds:.0f} % of "
                                  f"the product run"),
    ]))
    if measured.cpu_seconds < 0.8 * measured.seconds or raw.cpu_seconds < 0.8 * raw.seconds:
        print("  note: CPU time is well below wall time: something else is using the CPU; "
              "the CPU-time columns are the steadier numbers (--clock cpu judges by them)")
    print("\nSQL round trips per order, by kind (an executemany counts once):")
    for kind, count in counter.by_kind().most_common():
        print(f"  {count / n:7.2f}  {kind}")
    if args.statements:
        print(f"\nMost frequent statements (per order, top {args.statements}):")
        for statement, count in counter.statements.most_common(args.statements):
            text = " ".join(statement.split())
            print(f"  {count / n:7.2f}  {text[:140]}{'...' if len(text) > 140 else ''}")
    if profile_text and profiled is not None:
        print(f"\nProfiled run: {profiled.orders} deliveries, {report['profiled_orders_per_s']} "
              f"orders/s under cProfile (slower than the measured run)")
        print(profile_text)
    print(f"\nOverall: {verdict[report['pass']]}  (wall time {report['wall_seconds']} s)")
    return 0 if report["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
