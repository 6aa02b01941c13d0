"""A merchant's program as the pure rules see it, loaded from the settings tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin_server.models import EarningRule, Merchant, ProgramSettings, Tier

from .errors import NotFound
from .rules import (
    AwardTrigger,
    EarningPolicy,
    Multiplier,
    Rounding,
    TierBasis,
    TierSpec,
    TierWindow,
)


@dataclass(frozen=True, slots=True)
class Program:
    merchant_id: int
    currency: str
    policy: EarningPolicy
    tiers: tuple[TierSpec, ...]
    tier_basis: TierBasis
    tier_window: TierWindow
    timezone: str = "UTC"

    def local(self, moment: datetime) -> datetime:
        """A moment in the merchant's timezone (calendar-year tiers start at local midnight)."""
        try:
            return moment.astimezone(ZoneInfo(self.timezone))
        except (ZoneInfoNotFoundError, ValueError):
            return moment

    def tier(self, tier_id: int | None) -> TierSpec | None:
        return next((tier for tier in self.tiers if tier.tier_id == tier_id), None)

    def tier_multiplier(self, tier_id: int | None) -> Decimal:
        tier = self.tier(tier_id)
        return tier.multiplier if tier else Decimal(1)


def get_merchant(session: Session, merchant_id: int, *, lock: bool = False) -> Merchant:
    """The merchant; with ``lock``, its row stays locked until the transaction ends (for a
    read-modify-write of its credentials)."""
    merchant = session.get(Merchant, merchant_id, with_for_update=lock or None,
                           populate_existing=lock)
    if merchant is None:
        raise NotFound(f"no merchant with id {merchant_id}")
    return merchant


def ensure_settings(session: Session, merchant: Merchant) -> ProgramSettings:
    settings = session.execute(
        select(ProgramSettings).where(ProgramSettings.merchant_id == merchant.id)
    ).scalar_one_or_none()
    if settings is None:
        settings = ProgramSettings(merchant_id=merchant.id)
        session.add(settings)
        session.flush()
    return settings


def load_program(session: Session, merchant_id: int) -> Program:
    merchant = get_merchant(session, merchant_id)
    settings = ensure_settings(session, merchant)
    rules = session.execute(
        select(EarningRule).where(EarningRule.merchant_id == merchant_id)
    ).scalars()
    tiers = session.execute(
        select(Tier).where(Tier.merchant_id == merchant_id, Tier.active.is_(True))
    ).scalars()
    policy = EarningPolicy(
        points_per_unit=settings.points_per_unit,
        rounding=Rounding(settings.rounding),
        award_on=AwardTrigger(settings.award_on),
        pending_days=settings.pending_days,
        include_shipping=settings.include_shipping,
        include_taxes=settings.include_taxes,
        include_tips=settings.include_tips,
        include_gift_cards=settings.include_gift_cards,
        award_test_orders=settings.award_test_orders,
        multipliers=tuple(Multiplier(rule.target, rule.target_id, rule.factor) for rule in rules),
        earning_starts=(None if settings.award_past_orders else merchant.program_started_at),
    )
    return Program(
        merchant_id=merchant_id,
        currency=merchant.currency,
        policy=policy,
        tiers=tuple(
            TierSpec(tier_id=tier.id, name=tier.name, threshold=tier.threshold,
                     retention_threshold=tier.retention_threshold, multiplier=tier.multiplier,
                     entry_reward_points=tier.entry_reward_points)
            for tier in tiers
        ),
        tier_basis=TierBasis(settings.tier_basis),
        tier_window=TierWindow(settings.tier_window),
        timezone=merchant.timezone,
    )
