"""What privacy law asks of us, on the platform's request: hand a shopper's data to the
merchant, erase a shopper's personal data, erase everything a shop left with us.

Erasing a shopper keeps the ledger's amounts (they are the merchant's accounts, and carry no
personal data) but cuts every link to the person: email, name, customer id, and the order
copies and stored deliveries that mention them."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, false, or_, select, true, update
from sqlalchemy.orm import Session

from plugin_server.models import (
    Base,
    DataRequest,
    InboxEvent,
    LedgerEntry,
    Member,
    Merchant,
    Order,
    Redemption,
    Tier,
    TierChange,
    utcnow,
)

from .members import normalise_email

SCAN_BATCH = 500
# Requests to erase a shopper: once carried out, their own bodies must not keep the data.
ERASURE_TOPICS = ("customers/redact",)


def _members(session: Session, merchant_id: int, customer_id: str | None,
             email: str | None) -> list[Member]:
    criteria = []
    if customer_id:
        criteria.append(Member.customer_id == customer_id)
    if email:
        criteria.append(Member.email == email)
    if not criteria:
        return []
    return list(session.execute(
        select(Member).where(Member.merchant_id == merchant_id, or_(*criteria))
        .order_by(Member.id)).scalars())


def _orders(session: Session, merchant_id: int, members: Sequence[Member],
            customer_id: str | None, email: str | None,
            order_ids: Sequence[str]) -> list[Order]:
    criteria = []
    if members:
        criteria.append(Order.member_id.in_([member.id for member in members]))
    if customer_id:
        criteria.append(Order.customer_id == customer_id)
    if email:
        criteria.append(Order.email == email)
    if order_ids:
        criteria.append(Order.platform_order_id.in_(list(order_ids)))
    if not criteria:
        return []
    return list(session.execute(
        select(Order).where(Order.merchant_id == merchant_id, or_(*criteria))
        .order_by(Order.id)).scalars())


def customer_data(session: Session, merchant_id: int, customer_id: str | None,
                  email: str | None, order_ids: Sequence[str] = ()) -> dict[str, Any]:
    """Everything we hold about one shopper, as JSON the merchant can hand over."""
    email = normalise_email(email)
    members = _members(session, merchant_id, customer_id, email)
    tiers = {tier.id: tier.name for tier in session.execute(
        select(Tier).where(Tier.merchant_id == merchant_id)).scalars()}
    result: dict[str, Any] = {"customer_id": customer_id, "email": email, "members": []}
    for member in members:
        entries = session.execute(
            select(LedgerEntry).where(LedgerEntry.merchant_id == merchant_id,
                                      LedgerEntry.member_id == member.id)
            .order_by(LedgerEntry.id)).scalars()
        redemptions = session.execute(
            select(Redemption).where(Redemption.merchant_id == merchant_id,
                                     Redemption.member_id == member.id)
            .order_by(Redemption.id)).scalars()
        changes = session.execute(
            select(TierChange).where(TierChange.merchant_id == merchant_id,
                                     TierChange.member_id == member.id)
            .order_by(TierChange.id)).scalars()
        result["members"].append({
            "customer_id": member.customer_id, "email": member.email,
            "first_name": member.first_name, "last_name": member.last_name,
            "balance": member.balance, "pending": member.pending,
            "tier": tiers.get(member.tier_id) if member.tier_id else None,
            "joined_at": member.created_at.isoformat(),
            "ledger": [{"kind": e.kind, "points": e.points, "pending_points": e.pending_points,
                        "reason": e.reason, "created_at": e.created_at.isoformat()}
                       for e in entries],
            "redemptions": [{"reward": r.reward_name, "code": r.code, "state": r.state,
                             "points_cost": r.points_cost,
                             "created_at": r.created_at.isoformat()} for r in redemptions],
            "tier_history": [{"from": tiers.get(c.from_tier_id) if c.from_tier_id else None,
                              "to": tiers.get(c.to_tier_id) if c.to_tier_id else None,
                              "reason": c.reason, "at": c.created_at.isoformat()}
                             for c in changes],
        })
    result["orders"] = [{"order_id": o.platform_order_id, "name": o.name,
                         "placed_at": o.placed_at.isoformat(), "total": str(o.total),
                         "currency": o.currency, "points_awarded": o.awarded_points,
                         "points_reversed": o.reversed_points}
                        for o in _orders(session, merchant_id, members, customer_id, email,
                                         order_ids)]
    return result


def record_data_request(session: Session, merchant_id: int, request_id: str,
                        customer_id: str | None, email: str | None,
                        order_ids: Sequence[str] = ()) -> DataRequest:
    request = DataRequest(merchant_id=merchant_id, platform_request_id=request_id[:64],
                          customer_id=customer_id, email=normalise_email(email),
                          payload=json.dumps(customer_data(session, merchant_id, customer_id,
                                                           email, order_ids)),
                          created_at=utcnow())
    session.add(request)
    session.flush()
    return request


def _needles(customer_id: str | None, emails: set[str]) -> re.Pattern[bytes] | None:
    """What marks a stored body as the shopper's: their email anywhere, or their customer id
    where a customer id goes (an order's customer, a ``customer_id`` field, the top-level id
    of a customer delivery), never a bare number that may be another object's id."""
    parts = [re.escape(email.encode()) for email in emails if email]
    if customer_id:
        number = re.escape(customer_id.encode()) + rb'"?(?![0-9A-Za-z])'
        parts += [rb'"customer"\s*:\s*\{\s*"id"\s*:\s*"?' + number,
                  rb'"customer_id"\s*:\s*"?' + number,
                  rb'\A\s*\{\s*"id"\s*:\s*"?' + number]
    return re.compile(b"|".join(parts), re.IGNORECASE) if parts else None


def _scrub_deliveries(session: Session, merchant_id: int, pattern: re.Pattern[bytes]) -> int:
    """Blank the stored bodies of finished deliveries that mention the shopper, and of the
    erasure request itself. Other deliveries still waiting are left to be processed first
    (their effect is needed)."""
    scrubbed = 0
    last_id = 0
    while True:
        rows = session.execute(
            select(InboxEvent.id, InboxEvent.payload)
            .where(InboxEvent.merchant_id == merchant_id, InboxEvent.id > last_id,
                   or_(InboxEvent.state != "received", InboxEvent.topic.in_(ERASURE_TOPICS)))
            .order_by(InboxEvent.id).limit(SCAN_BATCH)).all()
        if not rows:
            return scrubbed
        last_id = rows[-1][0]
        hits = [event_id for event_id, payload in rows if pattern.search(payload)]
        if hits:
            session.execute(update(InboxEvent).where(InboxEvent.id.in_(hits))
                            .values(payload=b"{}", headers_json="{}")
                            .execution_options(synchronize_session=False))
            scrubbed += len(hits)


def redact_customer(session: Session, merchant_id: int, customer_id: str | None,
                    email: str | None, order_ids: Sequence[str] = (),
                    now: datetime | None = None) -> dict[str, int]:
    """Erase one shopper's personal data; their ledger amounts stay, anonymous."""
    now = now or utcnow()
    email = normalise_email(email)
    members = _members(session, merchant_id, customer_id, email)
    emails = {email} if email else set()
    emails |= {member.email for member in members if member.email}
    orders = _orders(session, merchant_id, members, customer_id, email, order_ids)
    # The listed orders may lead to more of the person: a guest record, another email.
    emails |= {order.email for order in orders if order.email}
    known = {member.id for member in members}
    linked = {order.member_id for order in orders if order.member_id} - known
    if linked or emails:
        members += list(session.execute(
            select(Member).where(Member.merchant_id == merchant_id,
                                 Member.id.not_in(known) if known else true(),
                                 or_(Member.id.in_(linked), Member.email.in_(sorted(emails))))
        ).scalars())
    for member in members:
        member.customer_id = None
        member.email = None
        member.first_name = ""
        member.last_name = ""
        member.redacted_at = now
    for order in orders:
        emails |= {order.email} if order.email else set()
        order.customer_id = None
        order.email = None
        snapshot = json.loads(order.snapshot or "{}")
        if snapshot.get("customer"):
            snapshot["customer"] = {"customer_id": None, "email": None, "first_name": None,
                                    "last_name": None}
            order.snapshot = json.dumps(snapshot)
    session.execute(delete(DataRequest).where(
        DataRequest.merchant_id == merchant_id,
        or_(DataRequest.customer_id == customer_id if customer_id else false(),
            DataRequest.email.in_(sorted(emails)))))
    pattern = _needles(customer_id, emails)
    scrubbed = _scrub_deliveries(session, merchant_id, pattern) if pattern else 0
    session.flush()
    return {"members": len(members), "orders": len(orders), "deliveries": scrubbed}


def erase_shop(session: Session, merchant: Merchant) -> None:
    """Delete everything the shop left with us but the merchant row itself, which stays as a
    tombstone (status ``purging``, no name, no credentials) so that late deliveries are
    ignored. The ledger's append-only trigger allows deletes only in this state (L3)."""
    merchant.status = "purging"
    merchant.name = ""
    merchant.credentials = None
    session.flush()
    keep = {"merchants", "inbox_events"}
    # Children before parents: ledger entries before members and redemptions, and so on.
    for table in reversed(Base.metadata.sorted_tables):
        if table.name in keep or "merchant_id" not in table.c:
            continue
        session.execute(delete(table).where(table.c.merchant_id == merchant.id))
    # The shop/redact delivery being processed stays (emptied); every other one goes.
    session.execute(delete(InboxEvent).where(InboxEvent.merchant_id == merchant.id,
                                             InboxEvent.topic != "shop/redact"))
    session.execute(update(InboxEvent).where(InboxEvent.merchant_id == merchant.id)
                    .values(payload=b"{}", headers_json="{}")
                    .execution_options(synchronize_session=False))
    session.flush()
