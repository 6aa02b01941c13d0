"""Syncing many orders in one transaction: the burst path (DESIGN.md §10).

A flash sale is mostly *new, paid* orders from distinct shoppers. Those are awarded with a
handful of set-based statements per batch instead of a dozen per order. Everything else
(updates, refunds, cancels, guest claims, a second order of the same shopper) goes through
``sync_order`` one at a time, in delivery order, so the result is exactly what processing the
deliveries one by one gives.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from integrations.base import Order
from integrations.canonical import order_to_dict
from plugin_server.models import Member, utcnow
from plugin_server.models import Order as OrderRow

from .errors import InvalidArgument, LoyaltyError
from .ledger import Credit, post_credits
from .members import normalise_email
from .orders import sync_order
from .program import Program, load_program
from .rules import AwardSnapshot, RuleError, award_is_due, compute_award, pending_until
from .tiers import apply_tiers, progress_by_member


@dataclass(frozen=True, slots=True)
class _Candidate:
    index: int
    order: Order
    customer_id: str | None
    email: str | None  # the order's contact email, kept on the order row
    member_email: str | None  # the email that identifies the member, if the order has one


def _candidate(index: int, order: Order, program: Program) -> _Candidate | None:
    """An order the burst path may take on its own facts, before looking at the database."""
    # An order with a discount code may use a code the merchant cancelled (code_clawback):
    # sync_order looks; these are few.
    if (order.refunds or order.cancelled or order.discount_codes
            or not award_is_due(order, program.policy)[0]):
        return None
    try:
        email = normalise_email(order.customer.email)
    except InvalidArgument:
        return None
    if order.customer.customer_id is None and email is None:
        return None
    # A registered customer's billing email is not their account's: it identifies nobody.
    identifying = email if (order.customer.customer_id is None
                            or order.customer.email_is_account) else None
    return _Candidate(index, order, order.customer.customer_id, email, identifying)


def _keys(order: Order) -> set[str]:
    """What an order may touch: itself and the member(s) its customer id or email lead to."""
    keys = {f"o:{order.order_id}"}
    if order.customer.customer_id:
        keys.add(f"c:{order.customer.customer_id}")
    if order.customer.email:
        keys.add(f"e:{order.customer.email.strip().lower()}")
    return keys


def sync_orders(session: Session, merchant_id: int, orders: Sequence[Order],
                now: datetime | None = None) -> list[str | None]:
    """Sync every order. Returns, per order, None or why it failed (it then changed nothing).

    Orders that touch disjoint orders and members are independent, so a round takes, from the
    deliveries not yet synced, each one that no earlier such delivery shares an order, a
    customer id, an email or an existing member with: per order and per member, delivery order
    is kept exactly. New paid orders among them take the burst path, the rest sync_order."""
    now = now or utcnow()
    program = load_program(session, merchant_id)
    results: list[str | None] = [None] * len(orders)
    keys = [_keys(order) for order in orders]
    remaining = list(range(len(orders)))
    while remaining:
        heads: list[int] = []
        seen: set[str] = set()
        for index in remaining:
            if not keys[index] & seen:
                heads.append(index)
            seen |= keys[index]
        # Two heads with disjoint keys can still reach one member (an account's id on one
        # order, its email on another): only the first of them goes in this round.
        touched = (_members_touched(session, merchant_id, [orders[i] for i in heads])
                   if len(heads) > 1 else [set()])
        admitted: list[int] = []
        taken: set[int] = set()
        for index, members in zip(heads, touched, strict=True):
            if not members & taken:
                admitted.append(index)
                taken |= members
        run = [c for c in (_candidate(i, orders[i], program) for i in admitted) if c is not None]
        done = _award_run(session, program, run, now) if run else set()
        for index in admitted:
            if index not in done:
                results[index] = _sync_one(session, merchant_id, orders[index], program, now)
        finished = set(admitted)
        remaining = [index for index in remaining if index not in finished]
    return results


def _members_touched(session: Session, merchant_id: int,
                     orders: Sequence[Order]) -> list[set[int]]:
    """The existing members each order may change: its order row's member, and the members
    its customer id and email lead to."""
    owners = dict(session.execute(
        select(OrderRow.platform_order_id, OrderRow.member_id).where(
            OrderRow.merchant_id == merchant_id,
            OrderRow.platform_order_id.in_([order.order_id for order in orders]))
    ).all())
    customer_ids = [o.customer.customer_id for o in orders if o.customer.customer_id]
    emails = [o.customer.email.strip().lower() for o in orders if o.customer.email]
    found = session.execute(
        select(Member.id, Member.customer_id, Member.email).where(
            Member.merchant_id == merchant_id,
            or_(Member.customer_id.in_(customer_ids), Member.email.in_(emails)))
    ).all()
    by_customer = {customer_id: id_ for id_, customer_id, _ in found if customer_id}
    by_email = {email: id_ for id_, _, email in found if email}
    touched = []
    for order in orders:
        members = {owners[order.order_id]} if owners.get(order.order_id) else set()
        if order.customer.customer_id in by_customer:
            members.add(by_customer[order.customer.customer_id])
        if order.customer.email and order.customer.email.strip().lower() in by_email:
            members.add(by_email[order.customer.email.strip().lower()])
        touched.append(members)
    return touched


def _sync_one(session: Session, merchant_id: int, order: Order, program: Program,
              now: datetime) -> str | None:
    try:
        with session.begin_nested():
            sync_order(session, merchant_id, order, program=program, now=now)
    except (LoyaltyError, RuleError) as error:
        return f"{type(error).__name__}: {error}"
    return None


def _award_run(session: Session, program: Program, run: list[_Candidate],
               now: datetime) -> set[int]:
    """Award the run's orders that need nothing but inserts; returns their indexes. The others
    (known already, a guest to claim) are left to sync_order."""
    merchant_id = program.merchant_id
    known_orders = set(session.execute(
        select(OrderRow.platform_order_id).where(
            OrderRow.merchant_id == merchant_id,
            OrderRow.platform_order_id.in_([c.order.order_id for c in run]))
    ).scalars())
    by_customer, by_email = _known_members(session, merchant_id, run)
    members: dict[int, Member | None] = {}
    snapshots: dict[int, AwardSnapshot] = {}
    simple: list[_Candidate] = []
    for candidate in run:
        member = _member_for(candidate, by_customer, by_email)
        if candidate.order.order_id in known_orders or member is False:
            continue
        try:  # an order the rules refuse (absurd points) fails alone, through sync_order
            snapshots[candidate.index] = compute_award(
                candidate.order, program.policy,
                program.tier_multiplier(member.tier_id if member else None))
        except RuleError:
            continue
        members[candidate.index] = member
        simple.append(candidate)
    if not simple:
        return set()
    try:
        with session.begin_nested():
            _insert_new_members(session, merchant_id, simple, members, now)
            _insert_awards(session, program, simple, members, snapshots, now)
    except IntegrityError:
        # Another worker inserted one of these orders or members first (PostgreSQL, or two
        # processes): sync_order takes them one by one and meets the other's rows properly.
        return set()
    return {candidate.index for candidate in simple}


def _known_members(session: Session, merchant_id: int,
                   run: list[_Candidate]) -> tuple[dict[str, Member], dict[str, Member]]:
    customer_ids = [c.customer_id for c in run if c.customer_id]
    emails = [c.member_email for c in run if c.member_email]
    found = session.execute(
        select(Member).where(Member.merchant_id == merchant_id,
                             or_(Member.customer_id.in_(customer_ids), Member.email.in_(emails)))
    ).scalars().all()
    by_customer = {m.customer_id: m for m in found if m.customer_id}
    by_email = {m.email: m for m in found if m.email}
    return by_customer, by_email


def _member_for(candidate: _Candidate, by_customer: dict[str, Member],
                by_email: dict[str, Member]) -> Member | bool | None:
    """The existing member, None for a new one, or False when the case needs sync_order
    (a guest to claim, an email owned by another account)."""
    if candidate.customer_id:
        member = by_customer.get(candidate.customer_id)
        if candidate.member_email and candidate.member_email in by_email:
            owner = by_email[candidate.member_email]
            if member is None or owner.id != member.id:
                return False
        if member is not None and member.email is None and candidate.member_email:
            return False  # sync_order records the email on the member
        return member
    return by_email.get(candidate.member_email or "")


def _insert_new_members(session: Session, merchant_id: int, run: list[_Candidate],
                        members: dict[int, Member | None], now: datetime) -> None:
    fresh = [c for c in run if members[c.index] is None]
    if not fresh:
        return
    rows = [{"merchant_id": merchant_id, "customer_id": c.customer_id, "email": c.member_email,
             "first_name": (c.order.customer.first_name or "")[:120],
             "last_name": (c.order.customer.last_name or "")[:120], "balance": 0,
             "pending": 0, "tier_progress": 0, "created_at": now, "updated_at": now}
            for c in fresh]
    # One executemany, then one select: on SQLite, INSERT .. RETURNING in a deterministic
    # order would be sent row by row.
    session.execute(insert(Member.__table__), rows)
    by_customer, by_email = _known_members(session, merchant_id, fresh)
    for candidate in fresh:
        found = (by_customer.get(candidate.customer_id) if candidate.customer_id
                 else by_email.get(candidate.member_email or ""))
        assert found is not None
        members[candidate.index] = found


def _insert_awards(session: Session, program: Program, run: list[_Candidate],
                   members: dict[int, Member | None], snapshots: dict[int, AwardSnapshot],
                   now: datetime) -> None:
    order_rows: list[dict[str, Any]] = []
    awards: list[tuple[Member, int, bool]] = []
    for candidate in run:
        member = members[candidate.index]
        assert member is not None
        order = candidate.order
        snapshot = snapshots[candidate.index]
        pending = pending_until(now, program.policy) if snapshot.points else None
        order_rows.append({
            "merchant_id": program.merchant_id, "platform_order_id": order.order_id,
            "member_id": member.id, "name": order.name[:64],
            "customer_id": order.customer.customer_id, "email": candidate.email,
            "currency": order.currency, "placed_at": order.created_at,
            "platform_updated_at": order.updated_at, "subtotal": order.lines_subtotal,
            "total": order.total, "base_amount": snapshot.base_amount,
            "refunded_amount": 0, "paid": order.paid, "fulfilled": order.fulfilled,
            "cancelled": False, "test": order.test,
            "discount_codes": json.dumps(list(order.discount_codes)),
            "snapshot": json.dumps(order_to_dict(order)),
            "award_snapshot": snapshot.to_json(), "awarded_points": snapshot.points,
            "reversed_points": 0, "awarded_at": now, "pending_until": pending,
            "released_at": None, "status_note": "awarded", "created_at": now,
            "updated_at": now,
        })
        awards.append((member, snapshot.points, pending is not None))
    session.execute(insert(OrderRow.__table__), order_rows)
    ids = dict(session.execute(
        select(OrderRow.platform_order_id, OrderRow.id).where(
            OrderRow.merchant_id == program.merchant_id,
            OrderRow.platform_order_id.in_([c.order.order_id for c in run]))
    ).all())
    order_ids = [ids[c.order.order_id] for c in run]
    credits = [
        Credit(member=member, kind="award", source_kind="order",
               source_id=candidate.order.order_id, order_id=order_id,
               points=0 if pending else points, pending_points=points if pending else 0,
               reason=f"order {candidate.order.name or candidate.order.order_id}")
        for candidate, order_id, (member, points, pending)
        in zip(run, order_ids, awards, strict=True) if points
    ]
    post_credits(session, credits, now)
    # Every award counts for tiers, a zero-point one too (amount-spent and orders bases).
    members_awarded = {member.id: member for member, _points, _pending in awards
                       if program.tiers or member.tier_id is not None}
    if members_awarded:
        progress = progress_by_member(session, program, members_awarded, now)
        apply_tiers(session, program, [(member, progress[member.id])
                                       for member in members_awarded.values()], now, "order")
