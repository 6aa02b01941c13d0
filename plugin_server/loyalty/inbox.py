"""The platform-neutral inbox: store each delivery once, process it once, explain failures."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from integrations.errors import PayloadError
from plugin_server.models import InboxEvent, Merchant, utcnow

from .errors import LoyaltyError
from .rules import RuleError

log = logging.getLogger(__name__)

# (session, merchant_id, raw body) -> None; raises PayloadError for bodies it cannot use.
TopicHandler = Callable[[Session, int, bytes], None]
# (session, merchant_id, raw bodies) -> per body None, or why it failed (it then changed nothing).
BatchTopicHandler = Callable[[Session, int, list[bytes]], list[str | None]]
MAX_ATTEMPTS = 5


class WithHeaders:
    """A topic handler that also reads the delivery's stored headers (when the platform says
    the event happened, for instance). Called without them, it sees none."""

    def __init__(self, handler: Callable[[Session, int, bytes, Mapping[str, str]], None]) -> None:
        self.handler = handler

    def __call__(self, session: Session, merchant_id: int, body: bytes) -> None:
        self.handler(session, merchant_id, body, {})


def _storable_id(event_id: str) -> str:
    """Event ids longer than the column are stored as their SHA-256, never cut: two long ids
    sharing a prefix must stay two deliveries."""
    if len(event_id) <= 190:
        return event_id
    return "sha256:" + hashlib.sha256(event_id.encode()).hexdigest()


_INSERT_COLUMNS = ("merchant_id", "platform", "topic", "event_id", "payload", "headers_json",
                   "state", "reason", "attempts", "received_at")
_inserts: dict[str, Any] = {}


def _delivery_insert(dialect: str) -> Any:
    """One prepared statement per dialect: built once, its compiled form is cached, so the
    acknowledgement pays for the insert, not for building it."""
    if dialect not in _inserts:
        table = InboxEvent.__table__
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        _inserts[dialect] = (insert(table)
                             .values({name: bindparam(name) for name in _INSERT_COLUMNS})
                             .on_conflict_do_nothing().returning(table.c.id))
    return _inserts[dialect]


def _delivery_values(merchant_id: int, platform: str, topic: str, event_id: str,
                     payload: bytes, headers: Mapping[str, str] | None) -> dict[str, Any]:
    return {"merchant_id": merchant_id, "platform": platform, "topic": topic[:80],
            "event_id": _storable_id(event_id), "payload": payload,
            "headers_json": json.dumps(dict(headers or {})), "state": "received",
            "reason": "", "attempts": 0, "received_at": utcnow()}


def store_delivery(session: Session, merchant_id: int, platform: str, topic: str,
                   event_id: str, payload: bytes,
                   headers: Mapping[str, str] | None = None) -> int | None:
    """Insert a delivery unless the same (merchant, topic, event id) is stored already.
    Returns the new row's id, or None for a duplicate."""
    row = session.execute(_delivery_insert(session.get_bind().dialect.name),
                          _delivery_values(merchant_id, platform, topic, event_id, payload,
                                           headers)).first()
    return None if row is None else int(row[0])


def store_delivery_now(engine: Engine, merchant_id: int, platform: str, topic: str,
                       event_id: str, payload: bytes,
                       headers: Mapping[str, str] | None = None) -> int | None:
    """``store_delivery`` in a transaction of its own, committed on return: the webhook
    acknowledgement's one write, without an ORM session (the write lock is held for the
    insert alone)."""
    with engine.begin() as connection:
        row = connection.execute(_delivery_insert(engine.dialect.name),
                                 _delivery_values(merchant_id, platform, topic, event_id,
                                                  payload, headers)).first()
    return None if row is None else int(row[0])



def _mark(event: InboxEvent, state: str, reason: str, now: datetime) -> str:
    event.state = state
    event.reason = reason[:1000]
    event.processed_at = now
    if state == "failed":
        log.warning("inbox %s (%s) failed: %s", event.id, event.topic, reason)
    elif state == "ignored":
        log.info("inbox %s (%s) ignored: %s", event.id, event.topic, reason)
    return state


def _merchant_gone(session: Session, merchant_id: int) -> bool:
    merchant = session.get(Merchant, merchant_id)
    return merchant is None or merchant.status == "purging"


def _headers(stored: str) -> dict[str, str]:
    try:
        headers = json.loads(stored or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {}


def _run_single(session: Session, event: InboxEvent,
                handlers: Mapping[tuple[str, str], TopicHandler], now: datetime) -> str:
    handler = handlers.get((event.platform, event.topic))
    if handler is None:
        return _mark(event, "ignored", f"no handler for topic {event.topic!r}", now)
    if _merchant_gone(session, event.merchant_id):
        return _mark(event, "ignored", "merchant is gone", now)
    try:
        with session.begin_nested():
            if isinstance(handler, WithHeaders):
                handler.handler(session, event.merchant_id, event.payload,
                                _headers(event.headers_json))
            else:
                handler(session, event.merchant_id, event.payload)
    except (PayloadError, LoyaltyError, RuleError) as error:
        return _mark(event, "failed", f"{type(error).__name__}: {error}", now)
    return _mark(event, "processed", "", now)


def _run_group(session: Session, group: list[InboxEvent], handler: BatchTopicHandler,
               now: datetime) -> None:
    if _merchant_gone(session, group[0].merchant_id):
        for event in group:
            _mark(event, "ignored", "merchant is gone", now)
        return
    reasons = handler(session, group[0].merchant_id, [event.payload for event in group])
    for event, reason in zip(group, reasons, strict=True):
        _mark(event, "failed" if reason else "processed", reason or "", now)



def process_events(session: Session, event_ids: Sequence[int],
                   handlers: Mapping[tuple[str, str], TopicHandler],
                   batch_handlers: Mapping[tuple[str, str], BatchTopicHandler],
                   now: datetime | None = None) -> dict[int, str]:
    """Process stored deliveries in id order. Consecutive deliveries of one merchant whose
    topics share a batch handler are handed over together. Returns each event's state."""
    now = now or utcnow()
    events = list(session.execute(
        select(InboxEvent).where(InboxEvent.id.in_(list(event_ids)))
        .order_by(InboxEvent.id).with_for_update()
    ).scalars())
    states = {event.id: event.state for event in events}
    group: list[InboxEvent] = []
    group_handler: BatchTopicHandler | None = None

    def finish_group() -> None:
        if group and group_handler is not None:
            _run_group(session, group, group_handler, now)
            states.update({event.id: event.state for event in group})
        group.clear()

    for event in events:
        if event.state != "received":
            continue
        event.attempts += 1
        batch = batch_handlers.get((event.platform, event.topic))
        if batch is not None and group and batch is group_handler and (
                group[0].merchant_id == event.merchant_id):
            group.append(event)
            continue
        finish_group()
        if batch is not None:
            group_handler = batch
            group.append(event)
        else:
            states[event.id] = _run_single(session, event, handlers, now)
    finish_group()
    return states


def note_crash(session: Session, event_id: int, error: BaseException) -> None:
    """Count an unexpected failure; after MAX_ATTEMPTS the delivery is marked failed."""
    event = session.get(InboxEvent, event_id)
    if event is None or event.state != "received":
        return
    event.attempts += 1
    event.reason = f"{type(error).__name__}: {error}"[:1000]
    if event.attempts >= MAX_ATTEMPTS:
        event.state = "failed"
        event.processed_at = utcnow()


def unprocessed(session: Session, older_than_seconds: int = 30, limit: int = 1000,
                now: datetime | None = None) -> list[int]:
    cutoff = (now or utcnow()) - timedelta(seconds=older_than_seconds)
    return list(session.execute(
        select(InboxEvent.id).where(InboxEvent.state == "received",
                                    InboxEvent.received_at <= cutoff)
        .order_by(InboxEvent.id).limit(limit)
    ).scalars())


def list_events(session: Session, *, failed_only: bool = False,
                limit: int = 200) -> list[InboxEvent]:
    query = select(InboxEvent).order_by(InboxEvent.id.desc()).limit(limit)
    if failed_only:
        query = query.where(InboxEvent.state == "failed")
    return list(session.execute(query).scalars())
