"""The distributed job mode end to end: REDIS_URL set, jobs go through a real Redis server to a
real Celery worker process (DESIGN.md §12). scripts/test.sh starts the Redis server and sets
LOYALTY_TEST_REDIS_URL; without it these tests skip locally and fail in CI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kombu.pools
import pytest
import redis
from flask import Flask
from sqlalchemy import select

from integrations.canonical import order_to_dict
from plugin_server import celery_app
from plugin_server.db import unit_of_work
from plugin_server.loyalty.audit import ledger_differences
from plugin_server.loyalty.inbox import store_delivery
from plugin_server.models import InboxEvent, Member
from plugin_server.runtime import Runtime
from tests.conftest import make_app, require_test_server, seed_merchant
from tests.support.builders import customer, line, order, refund, with_refunds

REPO_ROOT = Path(__file__).resolve().parents[1]
QUEUE = "celery"  # Celery's default queue: a Redis list of that name
WORKER_DEADLINE_SECONDS = 30.0


def _require_redis() -> str:
    return require_test_server("LOYALTY_TEST_REDIS_URL", "Redis")


def _redis_database(url: str, number: int) -> str:
    """The same server, another logical database: each test gets its own queue, so tests
    running side by side (pytest-xdist) never take each other's jobs."""
    return url.rsplit("/", 1)[0] + f"/{number}"


def _reset_producer_pool() -> None:
    """Close pooled broker connections and forget them, so the next publish connects to
    conf.broker_url afresh (kombu keeps its pools in process-wide registries; the app caches
    the ones it took from there)."""
    kombu.pools.reset()
    celery_app.celery._pool = None
    celery_app.celery.amqp._producer_pool = None


def _broker(number: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = _redis_database(_require_redis(), number)
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    # celery_app reads REDIS_URL when it is imported; point this process's producer at the
    # test server whatever was imported first.
    monkeypatch.setenv("REDIS_URL", url)
    monkeypatch.setattr(celery_app.celery.conf, "broker_url", url)
    _reset_producer_pool()
    yield url
    _reset_producer_pool()


@pytest.fixture
def broker_for_commit_test(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    yield from _broker(1, monkeypatch)


@pytest.fixture
def broker_for_worker_test(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    yield from _broker(2, monkeypatch)


def _celery_app(sqlite_url: str, redis_url: str) -> Flask:
    """The web side: a migrated app whose jobs go to Celery (dispose its database after)."""
    app = make_app(sqlite_url, REDIS_URL=redis_url)
    assert app.extensions["loyalty"].jobs.mode == "celery"
    return app


def _queued(redis_url: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.llen(QUEUE))
    finally:
        client.close()


def _deliver(runtime: Runtime, merchant_id: int, topic: str, event_id: str,
             body: bytes) -> int | None:
    """What a webhook handler does: store the delivery, enqueue its processing after commit."""
    with runtime.database.session() as session, session.begin():
        row = store_delivery(session, merchant_id, "demo", topic, event_id, body,
                             {"X-Demo-Topic": topic})
        if row is not None:
            runtime.jobs.enqueue_after_commit(session, "process_inbox_event", row)
    return row


class _Rollback(Exception):
    pass


def test_job_is_sent_only_after_commit(tmp_path: Path, broker_for_commit_test: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    app = _celery_app(f"sqlite:///{tmp_path / 'loyalty.sqlite3'}", broker_for_commit_test)
    runtime: Runtime = app.extensions["loyalty"]
    merchant_id = seed_merchant(runtime.database)
    sent: list[tuple[Any, ...]] = []
    real_delay = celery_app.run_job.delay

    def spy(*args: Any, **kwargs: Any) -> Any:
        sent.append(args)
        return real_delay(*args, **kwargs)

    monkeypatch.setattr(celery_app.run_job, "delay", spy)
    body = json.dumps(order_to_dict(order("R1", line("1", "12.00")))).encode()
    try:
        with (pytest.raises(_Rollback), runtime.database.session() as session,
              session.begin()):
            row = store_delivery(session, merchant_id, "demo", "orders/paid", "R1:paid", body)
            assert row is not None
            runtime.jobs.enqueue_after_commit(session, "process_inbox_event", row)
            assert sent == [], "enqueue_after_commit sent the job before the commit"
            raise _Rollback
        assert sent == []
        assert _queued(broker_for_commit_test) == 0
        with unit_of_work(runtime.database) as session:
            assert session.execute(select(InboxEvent)).first() is None

        # The same delivery committed goes to Redis exactly once, after the commit.
        row = _deliver(runtime, merchant_id, "orders/paid", "R1:paid", body)
        assert row is not None
        assert sent == [("process_inbox_event", [row])]
        assert _queued(broker_for_commit_test) == 1
        message = json.loads(redis.Redis.from_url(broker_for_commit_test).lindex(QUEUE, 0))
        assert message["headers"]["task"] == "loyalty.run_job"
    finally:
        runtime.database.dispose()


class _Worker:
    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no worker log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # warm shutdown
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def worker_database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'loyalty.sqlite3'}"


@pytest.fixture
def celery_worker(tmp_path: Path, worker_database: str,
                  broker_for_worker_test: str) -> Iterator[_Worker]:
    env = {**os.environ, "REDIS_URL": broker_for_worker_test, "DATABASE_URL": worker_database,
           "LOYALTY_ENV": "test", "SECRET_KEY": "test-secret",
           "ENCRYPTION_KEY": "test-encryption-key", "PYTHONUNBUFFERED": "1"}
    log_path = tmp_path / "celery-worker.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "plugin_server.celery_app", "worker",
             "--pool=solo", "--concurrency=1", "--without-heartbeat", "--without-gossip",
             "--without-mingle", "-Q", QUEUE, "--loglevel=INFO",
             "--hostname", f"loyalty-test-{os.getpid()}@%h"],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
    worker = _Worker(process, log_path)
    try:
        yield worker
    finally:
        worker.stop()


def test_celery_worker_processes_webhook_deliveries(worker_database: str,
                                                    broker_for_worker_test: str,
                                                    celery_worker: _Worker) -> None:
    # make_app migrates the SQLite file the worker process opens too.
    app = _celery_app(worker_database, broker_for_worker_test)
    runtime: Runtime = app.extensions["loyalty"]
    try:
        merchant_id = seed_merchant(runtime.database)
        one = customer("c1", "one@example.com")
        two = customer("c2", "two@example.com")
        first = order("A1", line("1", "30.00"), line("2", "10.00"), who=one)
        deliveries: list[tuple[str, str, bytes]] = [
            ("orders/paid", "A1:paid", json.dumps(order_to_dict(first)).encode()),
            ("orders/paid", "B1:paid", json.dumps(order_to_dict(
                order("B1", line("1", "25.50"), line("2", "4.50"), who=two))).encode()),
            ("orders/paid", "A2:paid", json.dumps(order_to_dict(
                order("A2", line("1", "10.00"), who=one))).encode()),
            ("refunds/create", "A1:refund", json.dumps(order_to_dict(with_refunds(
                first, refund("r1", ("2", 1, "10.00"), order_id="A1")))).encode()),
            ("orders/paid", "X1:paid", b"{not json"),
        ]
        rows = [_deliver(runtime, merchant_id, *delivery) for delivery in deliveries]
        assert None not in rows
        # A webhook retried by the platform is stored once and enqueued once.
        assert _deliver(runtime, merchant_id, *deliveries[0]) is None

        deadline = time.monotonic() + WORKER_DEADLINE_SECONDS
        states: dict[int, str] = {}
        while True:
            with unit_of_work(runtime.database) as session:
                states = dict(session.execute(
                    select(InboxEvent.id, InboxEvent.state)).all())
            if all(state != "received" for state in states.values()):
                break
            if celery_worker.process.poll() is not None:
                pytest.fail(f"the Celery worker exited with {celery_worker.process.returncode}"
                            f"\n{celery_worker.log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"deliveries not processed within {WORKER_DEADLINE_SECONDS}s: "
                            f"{states}\n{celery_worker.log_tail()}")
            time.sleep(0.1)

        assert states == {rows[0]: "processed", rows[1]: "processed", rows[2]: "processed",
                          rows[3]: "processed", rows[4]: "failed"}, celery_worker.log_tail()
        assert _queued(broker_for_worker_test) == 0
        with unit_of_work(runtime.database) as session:
            failed = session.get(InboxEvent, rows[4])
            assert failed is not None and failed.reason.startswith("PayloadError")
            balances = {member.customer_id: (member.balance, member.pending)
                        for member in session.execute(
                            select(Member).where(Member.merchant_id == merchant_id)).scalars()}
            # c1: 30 + 10 awarded on A1, 10 of it refunded, 10 on A2; c2: 25.50 + 4.50 on B1.
            assert balances == {"c1": (40, 0), "c2": (30, 0)}
            assert ledger_differences(session) == []
    finally:
        runtime.database.dispose()
