"""What the storefront widget shows: the public program, and one signed-in shopper's view.
The same documents answer on every platform (App Proxy, WooCommerce token, demo)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from plugin_server.models import (
    EarningRule,
    LedgerEntry,
    Member,
    ProgramSettings,
    Redemption,
    Reward,
    Tier,
)

from .program import get_merchant
from .widget_settings import storefront_widget

HISTORY_LENGTH = 20
CODES_LENGTH = 10

# Built once: the storefront's balance sits on the store's page load, and building statements
# costs more than running them. Rows keep the column names, so the JSON builders take them
# like model objects.
_members, _tiers_t, _rewards_t = Member.__table__, Tier.__table__, Reward.__table__
_entries, _redemptions = LedgerEntry.__table__, Redemption.__table__
MEMBER_QUERY = select(_members.c.id, _members.c.balance, _members.c.pending,
                      _members.c.tier_id, _members.c.tier_progress).where(
    _members.c.merchant_id == bindparam("merchant_id"),
    _members.c.customer_id == bindparam("customer_id"))
TIERS_QUERY = select(*_tiers_t.c).where(
    _tiers_t.c.merchant_id == bindparam("merchant_id"), _tiers_t.c.active.is_(True)
).order_by(_tiers_t.c.threshold, _tiers_t.c.id)
REWARDS_QUERY = select(*_rewards_t.c).where(
    _rewards_t.c.merchant_id == bindparam("merchant_id"), _rewards_t.c.enabled.is_(True)
).order_by(_rewards_t.c.points_cost, _rewards_t.c.id)
HISTORY_QUERY = select(_entries.c.kind, _entries.c.points, _entries.c.pending_points,
                       _entries.c.reason, _entries.c.created_at).where(
    _entries.c.merchant_id == bindparam("merchant_id"),
    _entries.c.member_id == bindparam("member_id")
).order_by(_entries.c.id.desc()).limit(HISTORY_LENGTH)
CODES_QUERY = select(_redemptions.c.id, _redemptions.c.reward_name, _redemptions.c.code,
                     _redemptions.c.state, _redemptions.c.points_cost,
                     _redemptions.c.expires_at, _redemptions.c.created_at).where(
    _redemptions.c.merchant_id == bindparam("merchant_id"),
    _redemptions.c.member_id == bindparam("member_id"), _redemptions.c.state == "issued"
).order_by(_redemptions.c.id.desc()).limit(CODES_LENGTH)


def _number(value: Decimal) -> str:
    """A decimal as plain text without trailing zeros ("1", "2.5"), for JSON."""
    text = format(value.normalize(), "f")
    return text if "." not in text else text.rstrip("0").rstrip(".")


def _tiers(session: Session, merchant_id: int) -> list[Any]:
    return list(session.execute(TIERS_QUERY, {"merchant_id": merchant_id}))


def _rewards(session: Session, merchant_id: int) -> list[Any]:
    return list(session.execute(REWARDS_QUERY, {"merchant_id": merchant_id}))


def reward_json(reward: Any) -> dict[str, Any]:
    """A reward (model or row) as the storefront shows it."""
    return {
        "id": reward.id, "name": reward.name, "kind": reward.kind,
        "value": _number(reward.value), "points_cost": reward.points_cost,
        "minimum_subtotal": (None if reward.minimum_subtotal is None
                             else _number(reward.minimum_subtotal)),
        "expires_days": reward.expires_days,
    }


def tier_json(tier: Any) -> dict[str, Any]:
    """A tier (model or row) as the storefront shows it."""
    return {"id": tier.id, "name": tier.name, "threshold": _number(tier.threshold),
            "multiplier": _number(tier.multiplier),
            "entry_reward_points": tier.entry_reward_points, "perks": tier.perks}


def public_program(session: Session, merchant_id: int) -> dict[str, Any]:
    """The program as anyone may see it: how to earn, what to redeem, the tiers."""
    merchant = get_merchant(session, merchant_id)
    settings = session.execute(
        select(ProgramSettings).where(ProgramSettings.merchant_id == merchant_id)
    ).scalar_one()
    multipliers = session.execute(
        select(EarningRule).where(EarningRule.merchant_id == merchant_id)
        .order_by(EarningRule.id)
    ).scalars()
    ways_to_earn: list[dict[str, Any]] = [{
        "kind": "purchase", "points_per_unit": _number(settings.points_per_unit),
        "currency": merchant.currency, "rounding": settings.rounding,
        "award_on": settings.award_on, "pending_days": settings.pending_days,
    }]
    ways_to_earn += [{"kind": f"{rule.target}_multiplier", "target_id": rule.target_id,
                      "factor": _number(rule.factor), "label": rule.label}
                     for rule in multipliers]
    return {
        "program": {"name": settings.program_name, "shop_name": merchant.name,
                    "currency": merchant.currency},
        "ways_to_earn": ways_to_earn,
        "rewards": [reward_json(reward) for reward in _rewards(session, merchant_id)],
        "tiers": [tier_json(tier) for tier in _tiers(session, merchant_id)],
        "tier_basis": settings.tier_basis,
        "tier_window": settings.tier_window,
        "widget": storefront_widget(settings.widget_json),
    }


def shopper_view(session: Session, merchant_id: int, customer_id: str) -> dict[str, Any]:
    """A signed-in shopper's points, tier, what they can redeem and what happened lately.
    A customer who has not earned yet gets the same document with zeros."""
    member = session.execute(MEMBER_QUERY, {"merchant_id": merchant_id,
                                            "customer_id": customer_id}).first()
    tiers = _tiers(session, merchant_id)
    balance = member.balance if member else 0
    progress = member.tier_progress if member else Decimal(0)
    current = next((tier for tier in tiers if member and tier.id == member.tier_id), None)
    floor = current.threshold if current else Decimal(-1)
    following = next((tier for tier in tiers if tier.threshold > floor), None)
    next_tier = None
    if following is not None:
        next_tier = tier_json(following) | {
            "remaining": _number(max(following.threshold - progress, Decimal(0))),
            "percent": (100 if following.threshold <= 0 else
                        min(int(progress * 100 / following.threshold), 100)),
        }
    history: list[dict[str, Any]] = []
    codes: list[dict[str, Any]] = []
    if member is not None:
        ids = {"merchant_id": merchant_id, "member_id": member.id}
        history = [{"kind": entry.kind, "points": entry.points,
                    "pending_points": entry.pending_points, "reason": entry.reason,
                    "created_at": entry.created_at.isoformat()}
                   for entry in session.execute(HISTORY_QUERY, ids)]
        codes = [{"id": redemption.id, "reward_name": redemption.reward_name,
                  "code": redemption.code, "state": redemption.state,
                  "points_cost": redemption.points_cost,
                  "expires_at": (redemption.expires_at.isoformat()
                                 if redemption.expires_at else None),
                  "created_at": redemption.created_at.isoformat()}
                 for redemption in session.execute(CODES_QUERY, ids)]
    return {
        "customer_id": customer_id,
        "balance": balance,
        "pending": member.pending if member else 0,
        "tier": tier_json(current) if current else None,
        "tier_progress": _number(progress),
        "next_tier": next_tier,
        "rewards": [reward_json(reward) for reward in _rewards(session, merchant_id)
                    if reward.points_cost <= balance],
        "codes": codes,
        "history": history,
    }
