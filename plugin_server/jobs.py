"""Background jobs: functions of (runtime, *ids), safe to run twice, enqueued after commit.

Without REDIS_URL they run in-process: on a background thread (``JOBS_MODE=thread``) or right
after the commit that enqueued them (``eager``, for tests and the CLI). With REDIS_URL they go
to Celery (``plugin_server.celery_app``)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .db import after_commit, unit_of_work
from .loyalty.inbox import note_crash, process_events, unprocessed
from .loyalty.orders import release_due_points
from .loyalty.program import load_program
from .loyalty.redeem import void_stale_holds
from .loyalty.tiers import reevaluate_members
from .models import Member, Merchant, utcnow
from .shopify.jobs import SHOPIFY_JOBS, shopify_sweep
from .woocommerce.jobs import WOOCOMMERCE_JOBS, woocommerce_sweep

if TYPE_CHECKING:
    from .runtime import Runtime

log = logging.getLogger(__name__)
BATCH_SIZE = 200
LINGER_SECONDS = 0.05


def process_inbox_event(runtime: Runtime, event_id: int) -> str:
    try:
        with unit_of_work(runtime.database) as session:
            # The same code as a batch: one delivery takes the burst path's few statements.
            states = process_events(session, [event_id], runtime.handlers,
                                    runtime.batch_handlers)
            return states.get(event_id, "missing")
    except Exception as error:
        log.exception("inbox event %s crashed; the sweep will retry it", event_id)
        with unit_of_work(runtime.database) as session:
            note_crash(session, event_id, error)
        return "received"


def process_inbox_batch(runtime: Runtime, event_ids: list[int]) -> dict[int, str]:
    """Process many deliveries in one transaction (the burst path). If anything unexpected
    goes wrong the whole batch rolls back and each delivery is retried on its own."""
    try:
        with unit_of_work(runtime.database) as session:
            return process_events(session, event_ids, runtime.handlers,
                                  runtime.batch_handlers)
    except Exception:
        log.warning("batch of %s deliveries failed; processing them one by one",
                    len(event_ids), exc_info=True)
        return {event_id: process_inbox_event(runtime, event_id) for event_id in event_ids}


@dataclass(frozen=True)
class SweepReport:
    redispatched: int
    released_points: int
    voided_holds: int

    def as_dict(self) -> dict[str, int]:
        return {"redispatched": self.redispatched, "released_points": self.released_points,
                "voided_holds": self.voided_holds}


def sweep(runtime: Runtime, older_than_seconds: int = 30,
          now: datetime | None = None) -> SweepReport:
    """Re-dispatch deliveries left unprocessed, release due pending points, void stale holds.
    ``now`` is for tests and replays; the sweep normally runs on the clock."""
    now = now or utcnow()
    with unit_of_work(runtime.database) as session:
        leftovers = unprocessed(session, older_than_seconds=older_than_seconds, now=now)
    for event_id in leftovers:
        runtime.jobs.enqueue("process_inbox_event", event_id)
    with unit_of_work(runtime.database) as session:
        merchant_ids = list(session.execute(
            select(Merchant.id).where(Merchant.status == "active")).scalars())
    released = 0
    for merchant_id in merchant_ids:
        with unit_of_work(runtime.database) as session:
            released += release_due_points(session, merchant_id, now=now)
    with unit_of_work(runtime.database) as session:
        voided = void_stale_holds(session, runtime.settings.REDEMPTION_HOLD_TIMEOUT_SECONDS,
                                  now=now)
    for platform, platform_sweep in (("Shopify", shopify_sweep),
                                     ("WooCommerce", woocommerce_sweep)):
        try:
            platform_sweep(runtime, now)
        except Exception:  # a platform's trouble must not stop the ledger's own sweep
            log.exception("the %s part of the sweep failed", platform)
    return SweepReport(len(leftovers), released, voided)


TIER_BATCH = 1000


def reevaluate_tiers(runtime: Runtime, merchant_id: int, now: datetime | None = None) -> int:
    """Put every member of a merchant in the tier the current ladder gives them, a batch of
    members per transaction; returns how many members were looked at. Safe to run twice: a
    member already in the right tier is left alone."""
    now = now or utcnow()
    after = 0
    seen = 0
    while True:
        with unit_of_work(runtime.database) as session:
            program = load_program(session, merchant_id)
            members = list(session.execute(
                select(Member).where(Member.merchant_id == merchant_id, Member.id > after)
                .order_by(Member.id).limit(TIER_BATCH)).scalars())
            if not members:
                return seen
            reevaluate_members(session, program, members, now, reason="tiers changed")
            after = members[-1].id
            seen += len(members)


JOBS: dict[str, Callable[..., Any]] = {
    "process_inbox_event": process_inbox_event,
    "reevaluate_tiers": reevaluate_tiers,
    "process_inbox_batch": process_inbox_batch,
    "sweep": sweep,
    **SHOPIFY_JOBS,
    **WOOCOMMERCE_JOBS,
}


class JobQueue:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._queue: queue.Queue[tuple[str, tuple[Any, ...]]] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def mode(self) -> str:
        if self.runtime.settings.REDIS_URL:
            return "celery"
        return self.runtime.settings.JOBS_MODE

    def enqueue(self, name: str, *args: Any) -> None:
        if name not in JOBS:
            raise KeyError(f"unknown job {name!r}")
        mode = self.mode
        if mode == "celery":
            from .celery_app import celery, run_job

            if celery.conf.broker_url != self.runtime.settings.REDIS_URL:
                # The app's settings decide, not only the environment the module saw.
                celery.conf.broker_url = self.runtime.settings.REDIS_URL
            run_job.delay(name, list(args))
        elif mode == "eager":
            self.run(name, *args)
        else:
            self._ensure_worker()
            self._queue.put((name, args))

    def enqueue_after_commit(self, session: Session, name: str, *args: Any) -> None:
        after_commit(session, lambda: self.enqueue_committed(name, *args))

    def enqueue_committed(self, name: str, *args: Any) -> None:
        """Enqueue once the request's own work has committed: the request succeeded, whatever
        an eager job does next (a wc-auth callback answered 500 makes WooCommerce delete the
        keys; a webhook answered 500 because the store is down would be disabled)."""
        try:
            self.enqueue(name, *args)
        except Exception:
            log.exception("job %s%r failed after its transaction committed", name, args)

    def run(self, name: str, *args: Any) -> Any:
        return JOBS[name](self.runtime, *args)

    def drain(self) -> None:
        """Wait until every job queued on the background thread has run."""
        self._queue.join()

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="loyalty-jobs",
                                                daemon=True)
                self._worker.start()

    def _work(self) -> None:
        while True:
            jobs = [self._queue.get()]
            # Deliveries waiting together are processed together (the burst path). Waiting a
            # moment for more turns a steady stream into a few batches instead of one write
            # transaction per delivery, which leaves the write lock free for acknowledgements.
            deadline = time.monotonic() + LINGER_SECONDS
            while jobs[-1][0] == "process_inbox_event" and len(jobs) < BATCH_SIZE:
                try:
                    jobs.append(self._queue.get(timeout=max(deadline - time.monotonic(), 0)))
                except queue.Empty:
                    break
            try:
                self._run_jobs(jobs)
            finally:
                for _ in jobs:
                    self._queue.task_done()

    def _run_jobs(self, jobs: list[tuple[str, tuple[Any, ...]]]) -> None:
        events = [args[0] for name, args in jobs if name == "process_inbox_event"]
        others = [(name, args) for name, args in jobs if name != "process_inbox_event"]
        try:
            if len(events) > 1:
                self.run("process_inbox_batch", events)
            elif events:
                self.run("process_inbox_event", events[0])
        except Exception:
            log.exception("processing deliveries %s failed", events)
        for name, args in others:
            try:
                self.run(name, *args)
            except Exception:
                log.exception("job %s%r failed", name, args)
