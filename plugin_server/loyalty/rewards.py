"""Spending points on rewards, in two phases (L2, L7): hold the points, have the platform
create a single-use code, then confirm; if the platform refuses, void the hold."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from integrations.base import CodeToDisable, DisabledCode, DiscountRequest, IssuedCode
from plugin_server.models import Member, Redemption, Reward, utcnow

from .errors import (
    InsufficientPoints,
    InvalidArgument,
    InvalidState,
    NotFound,
    RewardUnavailable,
)
from .ledger import post_entry

CODE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # RFC 4648 base32
CODE_RANDOM_LENGTH = 16


def generate_code(prefix: str = "LOY") -> str:
    """A discount code with 80 random bits (16 base32 characters)."""
    body = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_RANDOM_LENGTH))
    return f"{prefix}-{body}" if prefix else body


# A platform adapter call that creates the code, or raises PlatformRefused.
CodeIssuer = Callable[[DiscountRequest], IssuedCode]
# A platform adapter call that disables an issued code (it no longer applies at checkout) and
# reports its use, or raises PlatformRefused.
CodeDisabler = Callable[[CodeToDisable], DisabledCode]


# Row ids are 64-bit; a larger number (a guess, a typo) names nothing and would not bind.
MAX_ROW_ID = 2**63 - 1


def _existing(kind: str, row_id: int) -> None:
    if not 0 < row_id <= MAX_ROW_ID:
        raise NotFound(f"no {kind} {row_id}")


def get_reward(session: Session, merchant_id: int, reward_id: int) -> Reward:
    _existing("reward", reward_id)
    reward = session.execute(
        select(Reward).where(Reward.id == reward_id, Reward.merchant_id == merchant_id)
    ).scalar_one_or_none()
    if reward is None:
        raise NotFound(f"no reward {reward_id}")
    return reward


def get_member(session: Session, merchant_id: int, member_id: int) -> Member:
    _existing("member", member_id)
    member = session.execute(
        select(Member).where(Member.id == member_id, Member.merchant_id == merchant_id)
    ).scalar_one_or_none()
    if member is None:
        raise NotFound(f"no member {member_id}")
    return member


def get_redemption(session: Session, merchant_id: int, redemption_id: int,
                   *, lock: bool = False) -> Redemption:
    _existing("redemption", redemption_id)
    query = select(Redemption).where(Redemption.id == redemption_id,
                                     Redemption.merchant_id == merchant_id)
    if lock:
        query = query.with_for_update()
    redemption = session.execute(query).scalar_one_or_none()
    if redemption is None:
        raise NotFound(f"no redemption {redemption_id}")
    return redemption


def hold_redemption(session: Session, merchant_id: int, member_id: int, reward_id: int,
                    now: datetime | None = None) -> Redemption:
    """Take the reward's cost from the available balance, or raise InsufficientPoints."""
    now = now or utcnow()
    member = get_member(session, merchant_id, member_id)
    if member.redacted_at is not None:
        raise InvalidState(f"member {member_id} was redacted")
    reward = get_reward(session, merchant_id, reward_id)
    if not reward.enabled:
        raise RewardUnavailable(f"reward {reward.name!r} is not available")
    redemption = Redemption(
        merchant_id=merchant_id, member_id=member.id, reward_id=reward.id,
        reward_name=reward.name, reward_kind=reward.kind, reward_value=reward.value,
        points_cost=reward.points_cost, state="held", created_at=now,
        # Recorded before the platform is asked for it, so a code created by a call that then
        # crashed or timed out can still be found.
        code=generate_code(),
        expires_at=now + timedelta(days=reward.expires_days) if reward.expires_days else None,
    )
    session.add(redemption)
    session.flush()
    try:
        post_entry(session, member, kind="redemption", source_kind="redemption",
                   source_id=str(redemption.id), points=-reward.points_cost,
                   redemption_id=redemption.id, reason=f"redeemed for {reward.name}",
                   require_balance=True, now=now)
    except InsufficientPoints:
        session.refresh(member)
        shortfall = max(reward.points_cost - member.balance, 1)
        raise InsufficientPoints(f"{reward.name} costs {reward.points_cost} points; "
                                 f"{shortfall} more needed", shortfall=shortfall) from None
    return redemption


def discount_request(session: Session, redemption: Redemption, currency: str) -> DiscountRequest:
    member = get_member(session, redemption.merchant_id, redemption.member_id)
    reward = get_reward(session, redemption.merchant_id, redemption.reward_id)
    return DiscountRequest(
        merchant_id=redemption.merchant_id, redemption_id=redemption.id,
        code=redemption.code or generate_code(), kind=redemption.reward_kind,
        value=redemption.reward_value,
        currency=currency, customer_id=member.customer_id, email=member.email,
        starts_at=redemption.created_at, ends_at=redemption.expires_at,
        minimum_subtotal=reward.minimum_subtotal, title=redemption.reward_name,
    )


def confirm_redemption(session: Session, merchant_id: int, redemption_id: int,
                       issued: IssuedCode, now: datetime | None = None) -> Redemption:
    redemption = get_redemption(session, merchant_id, redemption_id, lock=True)
    if redemption.state != "held":
        raise InvalidState(f"redemption {redemption_id} is {redemption.state}, not held")
    redemption.state = "issued"
    redemption.code = issued.code
    redemption.platform_discount_id = issued.platform_discount_id
    redemption.issued_at = now or utcnow()
    session.flush()
    return redemption


def void_redemption(session: Session, merchant_id: int, redemption_id: int, reason: str,
                    *, actor: str = "system", now: datetime | None = None) -> Redemption:
    """Give the points back for a hold that never became a code, or (by the merchant) for an
    issued code the shopper never used. Voiding twice is refused, never double-credited."""
    if not reason.strip():
        raise InvalidArgument("a reason is required to void a redemption")
    redemption = get_redemption(session, merchant_id, redemption_id, lock=True)
    if redemption.state not in ("held", "issued"):
        raise InvalidState(f"redemption {redemption_id} is already {redemption.state}")
    member = get_member(session, merchant_id, redemption.member_id)
    post_entry(session, member, kind="redemption_void", source_kind="redemption_void",
               source_id=str(redemption.id), points=redemption.points_cost,
               redemption_id=redemption.id, reason=reason, actor=actor, now=now)
    redemption.state = "voided" if redemption.state == "held" else "cancelled"
    redemption.voided_at = now or utcnow()
    redemption.void_reason = reason[:500]
    session.flush()
    return redemption


def stale_holds(session: Session, older_than: datetime, limit: int = 500) -> list[Redemption]:
    """Holds left behind by a crash between hold and code creation (L7)."""
    return list(session.execute(
        select(Redemption).where(Redemption.state == "held", Redemption.created_at < older_than)
        .order_by(Redemption.id).limit(limit)
    ).scalars())
