"""Orders to points: award once, reverse refunds in proportion, reverse what is left on cancel.

``sync_order`` treats every delivery as "the order as it is now" and moves the ledger toward
the state that order implies, so duplicate, late and out-of-order deliveries converge (L1, L5,
L6). The order row is locked for the whole transaction; the ledger's unique keys back it up.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from integrations.base import Order, Refund, RefundLine
from integrations.canonical import order_to_dict, parse_order
from plugin_server.models import LedgerEntry, Member, OrderRefund, utcnow
from plugin_server.models import Order as OrderRow

from .code_clawback import claw_back_cancelled_codes
from .ledger import post_entry
from .members import member_for_customer
from .program import Program, load_program
from .rules import (
    AwardSnapshot,
    award_is_due,
    compute_award,
    pending_until,
    points_to_reverse,
    refunded_share,
)
from .tiers import reevaluate_member_tier

# A placeholder row's "last updated": older than any real delivery, so the first one is fresh.
NEVER_UPDATED = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    order_id: int
    member_id: int | None
    awarded: int = 0
    reversed: int = 0
    note: str = ""


def _insert_ignore(session: Session, model: type, values: dict[str, object]) -> None:
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(model).values(**values).on_conflict_do_nothing())


def lock_order(session: Session, merchant_id: int, order: Order) -> OrderRow:
    """The order's row, created if new, locked until the transaction ends."""
    return _lock_row(session, merchant_id, order.order_id, order.currency, order.created_at,
                     order.updated_at)


def _lock_row(session: Session, merchant_id: int, platform_order_id: str, currency: str,
              placed_at: datetime, updated_at: datetime) -> OrderRow:
    query = (select(OrderRow)
             .where(OrderRow.merchant_id == merchant_id,
                    OrderRow.platform_order_id == platform_order_id)
             .with_for_update())
    row = session.execute(query).scalar_one_or_none()
    if row is None:
        _insert_ignore(session, OrderRow, {
            "merchant_id": merchant_id, "platform_order_id": platform_order_id,
            "currency": currency, "placed_at": placed_at, "platform_updated_at": updated_at,
            "created_at": utcnow(), "updated_at": utcnow(),
        })
        row = session.execute(query).scalar_one()
    return row


def _record_refunds(session: Session, row: OrderRow, refunds: Sequence[Refund]) -> None:
    """Keep each refund once. A copy with line details replaces one that had only an amount
    (whichever path saw the refund first), and reopens it: the reversal must not depend on
    the order in which the copies came (L6)."""
    for refund in refunds:
        lines_json = json.dumps([[line.line_id, line.quantity, str(line.subtotal)]
                                 for line in refund.lines])
        _insert_ignore(session, OrderRefund, {
            "merchant_id": row.merchant_id, "order_id": row.id,
            "platform_refund_id": refund.refund_id, "refunded_at": refund.created_at,
            "amount": refund.amount, "shipping": refund.shipping, "lines_json": lines_json,
            "applied": False, "points_reversed": 0, "revision": 0, "created_at": utcnow(),
        })
        if refund.lines:
            session.execute(
                update(OrderRefund)
                .where(OrderRefund.order_id == row.id,
                       OrderRefund.platform_refund_id == refund.refund_id,
                       OrderRefund.lines_json == "[]")
                .values(lines_json=lines_json, amount=refund.amount, shipping=refund.shipping,
                        applied=False, revision=OrderRefund.revision + 1)
                .execution_options(synchronize_session=False))


def _merge_order(session: Session, row: OrderRow, order: Order, fresh: bool) -> None:
    if fresh:
        row.name = order.name[:64]
        row.customer_id = order.customer.customer_id
        row.email = (order.customer.email or "").strip().lower() or None
        row.currency = order.currency
        row.placed_at = order.created_at
        row.platform_updated_at = order.updated_at
        row.subtotal = order.lines_subtotal
        row.total = order.total
        row.discount_codes = json.dumps(list(order.discount_codes))
        row.snapshot = json.dumps(order_to_dict(order))
    # Facts only ever become true, whatever order the deliveries arrive in; a reopenable
    # order's newest copy says whether it is cancelled now.
    row.paid = row.paid or order.paid
    row.fulfilled = row.fulfilled or order.fulfilled
    if not order.reopenable:
        row.cancelled = row.cancelled or order.cancelled
    elif fresh:  # an older copy of a reopenable order says nothing about it now
        row.cancelled = order.cancelled
    row.test = row.test or order.test
    _record_refunds(session, row, order.refunds)


def refund_from_row(row: OrderRefund) -> Refund:
    lines = tuple(RefundLine(line_id, quantity, Decimal(subtotal))
                  for line_id, quantity, subtotal in json.loads(row.lines_json))
    return Refund(refund_id=row.platform_refund_id, order_id=str(row.order_id),
                  created_at=row.refunded_at, lines=lines, amount=row.amount,
                  shipping=row.shipping)


def _post(session: Session, member: Member, row: OrderRow, points: int, *, kind: str,
          source_kind: str, source_id: str, reason: str, now: datetime) -> None:
    """Post an order's points to pending while they are pending, else to the balance."""
    if points == 0:
        return
    pending = row.points_are_pending
    post_entry(session, member, kind=kind, source_kind=source_kind, source_id=source_id,
               points=0 if pending else points, pending_points=points if pending else 0,
               order_id=row.id, reason=reason, now=now)


def _award(session: Session, program: Program, row: OrderRow, order: Order, member: Member,
           now: datetime) -> int:
    due, why = award_is_due(order, program.policy)
    if not due:
        row.status_note = why
        return 0
    snapshot = compute_award(order, program.policy, program.tier_multiplier(member.tier_id))
    row.award_snapshot = snapshot.to_json()
    row.awarded_points = snapshot.points
    row.awarded_at = now
    row.base_amount = snapshot.base_amount
    row.pending_until = pending_until(now, program.policy) if snapshot.points else None
    row.status_note = "awarded"
    _post(session, member, row, snapshot.points, kind="award", source_kind="order",
          source_id=order.order_id, reason=f"order {order.name or order.order_id}", now=now)
    return snapshot.points


def _reverse_refunds(session: Session, row: OrderRow, member: Member, now: datetime) -> int:
    assert row.award_snapshot is not None
    snapshot = AwardSnapshot.from_json(row.award_snapshot)
    refunds = list(session.execute(
        select(OrderRefund).where(OrderRefund.order_id == row.id)
        .order_by(OrderRefund.refunded_at, OrderRefund.id)
        .execution_options(populate_existing=True)  # a reopened refund was updated in SQL
    ).scalars())
    row.refunded_amount = refunded_share(snapshot, [refund_from_row(r) for r in refunds]).base
    # Each new refund reverses what all refunds so far take back, less what was reversed
    # already: the total is the same whatever order the refunds arrive in (L5, L6).
    done = [refund for refund in refunds if refund.applied]
    total = 0
    for refund in refunds:
        if refund.applied:
            continue
        done.append(refund)
        target = points_to_reverse(snapshot, [refund_from_row(r) for r in done])
        delta = target - row.reversed_points
        # Only a refund reopened with better details may give points back, and never once a
        # cancel has taken back the rest.
        if delta < 0 and (refund.revision == 0 or row.cancelled):
            delta = 0
        refund.applied = True
        refund.points_reversed += delta
        if delta:
            # length-prefixed: ids may contain ":" themselves
            source_id = (f"{len(row.platform_order_id)}:{row.platform_order_id}:"
                         f"{refund.platform_refund_id}")
            if refund.revision:
                source_id += f":r{refund.revision}"
            _post(session, member, row, -delta, kind="reversal", source_kind="refund",
                  source_id=source_id,
                  reason=f"refund on order {row.name or row.platform_order_id}"
                         + (" (refund details)" if refund.revision else ""), now=now)
            row.reversed_points += delta
            total += delta
    return total


def _order_entries(session: Session, row: OrderRow, source_kind: str) -> tuple[int, int]:
    """How many ledger entries of this kind the order has, and their points (both columns)."""
    count, total = session.execute(
        select(func.count(LedgerEntry.id),
               func.coalesce(func.sum(LedgerEntry.points + LedgerEntry.pending_points), 0))
        .where(LedgerEntry.merchant_id == row.merchant_id, LedgerEntry.order_id == row.id,
               LedgerEntry.source_kind == source_kind)).one()
    return int(count), int(total)


def _numbered(row: OrderRow, count: int) -> str:
    """The first entry of a kind keeps the order id as its source id; a reopened order's next
    ones are numbered (length-prefixed: ids may contain ":" themselves)."""
    if count == 0:
        return row.platform_order_id
    return f"{len(row.platform_order_id)}:{row.platform_order_id}:{count}"


def _reverse_cancel(session: Session, row: OrderRow, member: Member, now: datetime) -> int:
    left = row.awarded_points - row.reversed_points
    if left <= 0:
        return 0
    count, _ = _order_entries(session, row, "cancellation")
    _post(session, member, row, -left, kind="cancellation", source_kind="cancellation",
          source_id=_numbered(row, count),
          reason=f"order {row.name or row.platform_order_id} cancelled", now=now)
    row.reversed_points += left
    return left


def _reinstate(session: Session, row: OrderRow, member: Member, now: datetime) -> int:
    """A cancelled order reopened (WooCommerce: failed or cancelled back to processing, or
    restored from the trash): give back what its cancellations took and are still holding,
    but never what its refunds take back, including refunds recorded while it was cancelled
    (their own reversal was then nothing, the cancellation having taken everything)."""
    _, cancelled = _order_entries(session, row, "cancellation")
    count, reinstated = _order_entries(session, row, "reinstatement")
    assert row.award_snapshot is not None
    snapshot = AwardSnapshot.from_json(row.award_snapshot)
    refunds = session.execute(
        select(OrderRefund).where(OrderRefund.order_id == row.id)
        .execution_options(populate_existing=True)).scalars()
    kept_by_refunds = points_to_reverse(snapshot, [refund_from_row(r) for r in refunds])
    back = min(-cancelled - reinstated, row.reversed_points - kept_by_refunds)
    if back <= 0:
        return 0
    _post(session, member, row, back, kind="adjustment", source_kind="reinstatement",
          source_id=_numbered(row, count),
          reason=f"order {row.name or row.platform_order_id} reopened", now=now)
    row.reversed_points -= back
    return back


def sync_order(session: Session, merchant_id: int, order: Order, *,
               program: Program | None = None, now: datetime | None = None) -> OrderOutcome:
    """Bring the ledger in line with the order as it is now. Safe to call any number of times,
    in any order, with stale or duplicate copies."""
    now = now or utcnow()
    program = program or load_program(session, merchant_id)
    row = lock_order(session, merchant_id, order)
    fresh = row.snapshot == "{}" or order.updated_at >= row.platform_updated_at
    was_cancelled = row.cancelled
    _merge_order(session, row, order, fresh)
    session.flush()
    previous = session.get(Member, row.member_id) if row.member_id else None
    claw_back_cancelled_codes(session, row, now)
    member = _owner(session, merchant_id, row, order, fresh, previous, now)
    if member is None:
        row.status_note = "no customer or email to award"
        return OrderOutcome(row.id, None, note=row.status_note)
    awarded = reversed_points = reinstated = 0
    was_awarded = row.award_snapshot is not None
    if not was_awarded:
        latest = order if fresh else parse_order(json.loads(row.snapshot))
        awarded = _award(session, program, row, with_facts(latest, row), member, now)
    elif was_cancelled and not row.cancelled:
        reinstated = _reinstate(session, row, member, now)
    if row.award_snapshot is not None:
        reversed_points += _reverse_refunds(session, row, member, now)
        if row.cancelled:
            reversed_points += _reverse_cancel(session, row, member, now)
    session.flush()
    # A zero-point award still counts on the amount-spent and orders bases.
    if reversed_points or reinstated or (row.award_snapshot is not None and not was_awarded):
        reevaluate_member_tier(session, program, member, now, reason="order")
    if previous is not None and previous.id != member.id and was_awarded:
        reevaluate_member_tier(session, program, member, now, reason="order")
        reevaluate_member_tier(session, program, previous, now, reason="order")
    return OrderOutcome(row.id, member.id, awarded + reinstated, reversed_points,
                        row.status_note)


def sync_refund(session: Session, merchant_id: int, refund: Refund, currency: str, *,
                program: Program | None = None, now: datetime | None = None) -> OrderOutcome:
    """Record a refund delivered on its own (Shopify's ``refunds/create``) and reverse its share
    of the order's points. A refund that arrives before its order waits on a placeholder row
    that the order's first delivery fills in (L6)."""
    now = now or utcnow()
    row = _lock_row(session, merchant_id, refund.order_id, currency, refund.created_at,
                    NEVER_UPDATED)
    _record_refunds(session, row, [refund])
    session.flush()
    member = session.get(Member, row.member_id) if row.member_id else None
    if row.award_snapshot is None or member is None:
        return OrderOutcome(row.id, row.member_id, note="refund kept until the order is awarded")
    reversed_points = _reverse_refunds(session, row, member, now)
    if row.cancelled:
        reversed_points += _reverse_cancel(session, row, member, now)
    session.flush()
    if reversed_points:
        reevaluate_member_tier(session, program or load_program(session, merchant_id), member,
                               now, reason="order")
    return OrderOutcome(row.id, member.id, reversed=reversed_points)


def _owner(session: Session, merchant_id: int, row: OrderRow, order: Order, fresh: bool,
           previous: Member | None, now: datetime) -> Member | None:
    """The member the order belongs to: the one its newest delivery names. If a newer
    delivery names another customer after the points were awarded, they move with it, so the
    result does not depend on which delivery came first (L6)."""
    if not fresh and previous is not None:
        return previous
    named = member_for_customer(session, merchant_id, order.customer)
    if named is None:
        return previous
    # Claiming a guest may already have moved this order (and its points) to ``named``; the
    # ORM update that did it also updated ``row`` in the session.
    if row.member_id is not None and row.member_id != named.id and row.award_snapshot:
        source = session.get(Member, row.member_id)
        assert source is not None
        _move_order_points(session, row, source, named, now)
    row.member_id = named.id
    return named


def _move_order_points(session: Session, row: OrderRow, source: Member, target: Member,
                       now: datetime) -> None:
    net = row.awarded_points - row.reversed_points
    if net <= 0:
        return
    moves = session.execute(
        select(func.count(LedgerEntry.id)).where(LedgerEntry.merchant_id == row.merchant_id,
                                                 LedgerEntry.order_id == row.id,
                                                 LedgerEntry.source_kind == "moved_out")
    ).scalar_one()
    source_id = f"{len(row.platform_order_id)}:{row.platform_order_id}:{moves}"
    pending = row.points_are_pending
    reason = f"order {row.name or row.platform_order_id} belongs to another customer"
    for member, sign, kind in ((source, -1, "moved_out"), (target, 1, "moved_in")):
        post_entry(session, member, kind="adjustment", source_kind=kind, source_id=source_id,
                   points=0 if pending else sign * net, pending_points=sign * net if pending else 0,
                   order_id=row.id, reason=reason, now=now)


def with_facts(order: Order, row: OrderRow) -> Order:
    """The latest order with the facts accumulated from every delivery so far."""
    return replace(order, paid=row.paid, fulfilled=row.fulfilled, cancelled=row.cancelled,
                   test=row.test)


def release_due_points(session: Session, merchant_id: int, now: datetime | None = None,
                       limit: int = 500) -> int:
    """Make pending points available for orders whose pending period has ended."""
    now = now or utcnow()
    due = session.execute(
        select(OrderRow).where(OrderRow.merchant_id == merchant_id,
                               OrderRow.pending_until <= now,
                               OrderRow.released_at.is_(None))
        .order_by(OrderRow.pending_until).limit(limit).with_for_update()
    ).scalars().all()
    released = 0
    for row in due:
        left = row.awarded_points - row.reversed_points
        member = session.get(Member, row.member_id) if row.member_id else None
        if left > 0 and member is not None:
            post_entry(session, member, kind="release", source_kind="release",
                       source_id=row.platform_order_id, points=left, pending_points=-left,
                       order_id=row.id, reason="pending period ended", now=now)
            released += left
        row.released_at = now
    session.flush()
    return released
