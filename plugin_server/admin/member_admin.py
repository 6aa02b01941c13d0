"""The admin's members section: finding members, a member's full picture, manual point
adjustments (cancelling a reward code is ``code_cancel``). Every query is scoped to one
merchant; an id of another merchant is NotFound, exactly like an id that does not exist."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from plugin_server.loyalty.adjustments import adjust_points
from plugin_server.loyalty.errors import InvalidArgument
from plugin_server.loyalty.program import load_program
from plugin_server.loyalty.rewards import get_member
from plugin_server.loyalty.tiers import reevaluate_member_tier
from plugin_server.models import (
    LedgerEntry,
    Member,
    Order,
    Redemption,
    Tier,
    TierChange,
    utcnow,
)

from .activity import record_activity

PAGE_SIZE = 25
LEDGER_LIMIT = 200
REDEMPTION_LIMIT = 100
MAX_ADJUSTMENT = 1_000_000
MAX_REASON = 200


class FieldError(InvalidArgument):
    """Input the merchant must correct: which field, and a catalog key saying why."""

    def __init__(self, field_name: str, key: str, **values: Any) -> None:
        super().__init__(f"{field_name}: {key}")
        self.field = field_name
        self.key = key
        self.values = values


@dataclass(frozen=True)
class MemberRow:
    id: int
    email: str | None
    name: str
    customer_id: str | None
    tier: str | None
    balance: int
    pending: int


@dataclass(frozen=True)
class MemberPage:
    rows: list[MemberRow]
    page: int
    pages: int
    total: int


@dataclass(frozen=True)
class Adjustment:
    points: int
    reason: str


@dataclass(frozen=True)
class MemberDetail:
    member: Member
    tier: str | None
    tier_history: list[dict[str, Any]] = field(default_factory=list)
    ledger: list[LedgerEntry] = field(default_factory=list)
    redemptions: list[Redemption] = field(default_factory=list)
    # Redemptions whose code may be cancelled: issued, not expired, on no order of the
    # member's we stored. A hint for the page; the cancel service checks again.
    cancellable: frozenset[int] = frozenset()


def tier_names(session: Session, merchant_id: int) -> dict[int, str]:
    rows = session.execute(
        select(Tier.id, Tier.name).where(Tier.merchant_id == merchant_id).order_by(Tier.threshold))
    return {tier_id: name for tier_id, name in rows}


def _like_pattern(text: str) -> str:
    # The search text is literal: % and _ typed by the merchant must not act as wildcards.
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_members(session: Session, merchant_id: int, *, search: str = "",
                 tier_id: int | None = None, page: int = 1) -> MemberPage:
    """One page of members, newest first, matching ``search`` (a substring of the email or
    the name, any case) and ``tier_id``."""
    query = select(Member).where(Member.merchant_id == merchant_id)
    search = search.strip()
    if search:
        pattern = _like_pattern(search)
        full_name = func.lower(Member.first_name + " " + Member.last_name)
        query = query.where(or_(func.lower(func.coalesce(Member.email, "")).like(
            pattern, escape="\\"), full_name.like(pattern, escape="\\")))
    if tier_id is not None:
        query = query.where(Member.tier_id == tier_id)
    total = session.execute(
        select(func.count()).select_from(query.subquery())).scalar_one()
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    members = session.execute(
        query.order_by(Member.created_at.desc(), Member.id.desc())
        .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).scalars()
    names = tier_names(session, merchant_id)
    rows = [MemberRow(m.id, m.email, f"{m.first_name} {m.last_name}".strip(), m.customer_id,
                      names.get(m.tier_id) if m.tier_id else None, m.balance, m.pending)
            for m in members]
    return MemberPage(rows, page, pages, total)


def _codes_on_orders(session: Session, merchant_id: int, member_id: int) -> set[str]:
    rows = session.execute(
        select(Order.discount_codes).where(Order.merchant_id == merchant_id,
                                           Order.member_id == member_id,
                                           Order.discount_codes != "[]")).scalars()
    codes: set[str] = set()
    for text in rows:
        try:
            codes.update(str(code).casefold() for code in json.loads(text) or [])
        except ValueError:
            continue
    return codes


def _cancellable(session: Session, member: Member, redemptions: list[Redemption],
                 now: datetime) -> frozenset[int]:
    used = _codes_on_orders(session, member.merchant_id, member.id)
    return frozenset(
        r.id for r in redemptions
        if r.state == "issued" and r.code and r.code.casefold() not in used
        and (r.expires_at is None or r.expires_at > now))


def member_detail(session: Session, merchant_id: int, member_id: int,
                  now: datetime | None = None) -> MemberDetail:
    """The member with tier history, ledger and redemptions (newest first); NotFound for a
    member of another merchant."""
    member = get_member(session, merchant_id, member_id)
    names = tier_names(session, merchant_id)
    changes = session.execute(
        select(TierChange).where(TierChange.merchant_id == merchant_id,
                                 TierChange.member_id == member.id)
        .order_by(TierChange.id.desc())).scalars()
    history = [{"from": names.get(c.from_tier_id) if c.from_tier_id else None,
                "to": names.get(c.to_tier_id) if c.to_tier_id else None,
                "reason": c.reason, "at": c.created_at} for c in changes]
    ledger = list(session.execute(
        select(LedgerEntry).where(LedgerEntry.merchant_id == merchant_id,
                                  LedgerEntry.member_id == member.id)
        .order_by(LedgerEntry.id.desc()).limit(LEDGER_LIMIT)).scalars())
    redemptions = list(session.execute(
        select(Redemption).where(Redemption.merchant_id == merchant_id,
                                 Redemption.member_id == member.id)
        .order_by(Redemption.id.desc()).limit(REDEMPTION_LIMIT)).scalars())
    return MemberDetail(member, names.get(member.tier_id) if member.tier_id else None,
                        history, ledger, redemptions,
                        _cancellable(session, member, redemptions, now or utcnow()))


def parse_adjustment(points_text: str | None, reason_text: str | None) -> Adjustment:
    """The adjustment form's fields, or FieldError for the first one that is wrong."""
    raw = (points_text or "").strip()
    if not raw:
        raise FieldError("points", "members.error.points_missing")
    try:
        points = int(raw)
    except ValueError:
        raise FieldError("points", "members.error.points_whole") from None
    if points == 0:
        raise FieldError("points", "members.error.points_zero")
    if abs(points) > MAX_ADJUSTMENT:
        raise FieldError("points", "members.error.points_range", limit=MAX_ADJUSTMENT)
    reason = (reason_text or "").strip()
    if not reason:
        raise FieldError("reason", "members.error.reason_missing")
    if len(reason) > MAX_REASON:
        raise FieldError("reason", "members.error.reason_long", limit=MAX_REASON)
    return Adjustment(points, reason)


def adjust_member(session: Session, merchant_id: int, member_id: int, adjustment: Adjustment,
                  actor: str, now: datetime | None = None) -> LedgerEntry:
    """Post the adjustment (a fresh source id each time, so two never collide), move the
    member to the tier the rules now give, and log it. A deduction the balance does not
    cover is refused before anything is written."""
    now = now or utcnow()
    member = get_member(session, merchant_id, member_id)
    if adjustment.points < 0 and member.balance + adjustment.points < 0:
        raise FieldError("points", "members.error.overdraw", balance=member.balance)
    entry = adjust_points(session, merchant_id, member.id, adjustment.points,
                          reason=adjustment.reason, actor=actor, now=now)
    reevaluate_member_tier(session, load_program(session, merchant_id), member, now,
                           reason="adjustment")
    record_activity(session, merchant_id, actor, "member.adjust",
                    {"member": member.id, "points": adjustment.points,
                     "reason": adjustment.reason})
    return entry
