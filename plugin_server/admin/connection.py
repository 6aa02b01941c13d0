"""Connection health for the admin: is the store connected, are its webhooks arriving and
being processed, when was it last reconciled; and asking for a re-sync now."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from plugin_server.db import after_commit
from plugin_server.loyalty.errors import InvalidState
from plugin_server.loyalty.program import get_merchant
from plugin_server.models import InboxEvent, utcnow

from .activity import record_activity

WINDOW = timedelta(hours=24)
RECENT_FAILURES = 10
# The job that reads the platform's orders since the checkpoint and heals what was missed.
RESYNC_JOBS = {"shopify": "shopify_reconcile", "woocommerce": "woocommerce_reconcile"}


@dataclass(frozen=True)
class TopicCount:
    topic: str
    received: int
    failed: int


@dataclass(frozen=True)
class Failure:
    received_at: datetime
    topic: str
    reason: str


@dataclass(frozen=True)
class ConnectionHealth:
    platform: str
    shop: str
    status: str
    connected: bool  # the server holds the platform's credentials
    installed_at: datetime | None
    last_reconciled: datetime | None
    deliveries: int  # over the last 24 hours
    failed: int
    waiting: int  # received, not processed yet (any age)
    topics: list[TopicCount]
    failures: list[Failure]

    @property
    def can_resync(self) -> bool:
        return can_resync(self.platform, self.status, self.connected)


def can_resync(platform: str, status: str, connected: bool) -> bool:
    """A store can be read again when it is active and the server holds its credentials."""
    return platform in RESYNC_JOBS and status == "active" and connected


def connection_health(session: Session, merchant_id: int,
                      now: datetime | None = None) -> ConnectionHealth:
    now = now or utcnow()
    merchant = get_merchant(session, merchant_id)
    since = now - WINDOW
    failed_case = func.sum(case((InboxEvent.state == "failed", 1), else_=0))
    rows = session.execute(
        select(InboxEvent.topic, func.count(InboxEvent.id), failed_case)
        .where(InboxEvent.merchant_id == merchant_id, InboxEvent.received_at >= since)
        .group_by(InboxEvent.topic).order_by(InboxEvent.topic)).all()
    topics = [TopicCount(topic, int(received), int(failed or 0)) for topic, received, failed
              in rows]
    waiting = session.execute(
        select(func.count(InboxEvent.id)).where(InboxEvent.merchant_id == merchant_id,
                                                InboxEvent.state == "received")).scalar_one()
    failures = [Failure(received_at, topic, reason) for received_at, topic, reason
                in session.execute(
                    select(InboxEvent.received_at, InboxEvent.topic, InboxEvent.reason)
                    .where(InboxEvent.merchant_id == merchant_id,
                           InboxEvent.state == "failed", InboxEvent.received_at >= since)
                    .order_by(InboxEvent.id.desc()).limit(RECENT_FAILURES))]
    return ConnectionHealth(
        platform=merchant.platform, shop=merchant.shop, status=merchant.status,
        connected=merchant.credentials is not None, installed_at=merchant.installed_at,
        last_reconciled=merchant.sync_checkpoint,
        deliveries=sum(topic.received for topic in topics),
        failed=sum(topic.failed for topic in topics), waiting=int(waiting), topics=topics,
        failures=failures)


def request_resync(session: Session, merchant_id: int, actor: str,
                   enqueue: Callable[[str, int], None]) -> str:
    """Queue the platform's reconciliation once this transaction commits; returns the job's
    name. InvalidState when the store is not connected (nothing to read from)."""
    merchant = get_merchant(session, merchant_id)  # no delivery counts needed here
    if not can_resync(merchant.platform, merchant.status, merchant.credentials is not None):
        raise InvalidState(f"{merchant.shop} is not connected; connect it again first")
    job = RESYNC_JOBS[merchant.platform]
    record_activity(session, merchant_id, actor, "connection.resync", {"job": job})
    after_commit(session, lambda: enqueue(job, merchant_id))
    return job
