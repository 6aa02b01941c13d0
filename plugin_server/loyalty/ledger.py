"""Posting ledger entries. The only code that changes a member's cached balances, always in
the same transaction as the entry that explains the change (L3, L4)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert, update
from sqlalchemy.orm import Session

from plugin_server.models import LedgerEntry, Member, utcnow

from .errors import InsufficientPoints, InvalidArgument

MAX_ABS_POINTS = 10**9


def _check_amount(points: int, pending_points: int) -> None:
    for value in (points, pending_points):
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidArgument(f"points must be whole numbers, got {value!r}")
        if abs(value) > MAX_ABS_POINTS:
            raise InvalidArgument(f"{value} points is beyond the limit of {MAX_ABS_POINTS}")
    if points == 0 and pending_points == 0:
        raise InvalidArgument("a ledger entry must change the balance or the pending points")



def post_entry(
    session: Session,
    member: Member,
    *,
    kind: str,
    source_kind: str,
    source_id: str,
    points: int = 0,
    pending_points: int = 0,
    order_id: int | None = None,
    redemption_id: int | None = None,
    reason: str = "",
    actor: str = "system",
    require_balance: bool = False,
    now: datetime | None = None,
) -> LedgerEntry:
    """Append one entry and move the member's cached balances by the same amounts.

    With ``require_balance`` the debit only happens if the available balance covers it, checked
    and applied in one conditional UPDATE, so concurrent debits can never overdraw (L2).
    A second entry with the same (merchant, source kind, source id) violates a unique key (L1).
    """
    _check_amount(points, pending_points)
    change = update(Member).where(Member.id == member.id,
                                  Member.merchant_id == member.merchant_id)
    if require_balance:
        if points >= 0:
            raise InvalidArgument("require_balance is for debits")
        change = change.where(Member.balance >= -points)
    result = session.execute(
        change.values(balance=Member.balance + points, pending=Member.pending + pending_points)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise InsufficientPoints(f"member {member.id} does not have {-points} points available")
    entry = LedgerEntry(
        merchant_id=member.merchant_id,
        member_id=member.id,
        kind=kind,
        points=points,
        pending_points=pending_points,
        source_kind=source_kind,
        source_id=source_id,
        order_id=order_id,
        redemption_id=redemption_id,
        reason=reason[:500],
        actor=actor[:120],
        created_at=now or utcnow(),
    )
    session.add(entry)
    session.flush()
    session.expire(member, ["balance", "pending"])
    return entry


@dataclass(frozen=True, slots=True)
class Credit:
    """One entry of a batch of credits (points going to members, never debits)."""

    member: Member
    kind: str
    source_kind: str
    source_id: str
    points: int = 0
    pending_points: int = 0
    order_id: int | None = None
    reason: str = ""


def post_credits(session: Session, credits: Sequence[Credit], now: datetime,
                 actor: str = "system") -> None:
    """Append many credit entries and move the members' cached balances, with one insert and
    one update statement for the whole batch (the burst path). Same rules as post_entry."""
    if not credits:
        return
    deltas: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    merchant_of = {credit.member.id: credit.member.merchant_id for credit in credits}
    rows = []
    for credit in credits:
        _check_amount(credit.points, credit.pending_points)
        if credit.points < 0 or credit.pending_points < 0:
            raise InvalidArgument("post_credits only adds points; use post_entry for debits")
        rows.append({
            "merchant_id": credit.member.merchant_id, "member_id": credit.member.id,
            "kind": credit.kind, "points": credit.points,
            "pending_points": credit.pending_points, "source_kind": credit.source_kind,
            "source_id": credit.source_id, "order_id": credit.order_id,
            "redemption_id": None, "reason": credit.reason[:500], "actor": actor,
            "created_at": now,
        })
        deltas[credit.member.id][0] += credit.points
        deltas[credit.member.id][1] += credit.pending_points
    # Core tables: one executemany, not one group per set of non-null columns (ORM bulk).
    session.execute(insert(LedgerEntry.__table__), rows)
    members = Member.__table__
    session.execute(
        update(members).where(members.c.id == bindparam("member"),
                              members.c.merchant_id == bindparam("merchant"))
        .values(balance=members.c.balance + bindparam("available"),
                pending=members.c.pending + bindparam("held")),
        [{"member": member_id, "merchant": merchant_of[member_id], "available": available,
          "held": held} for member_id, (available, held) in deltas.items()],
    )
    for credit in credits:
        session.expire(credit.member, ["balance", "pending"])
