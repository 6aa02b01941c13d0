"""Saving the program settings the merchant edits: earning, the tier ladder, rewards and the
widget. Every save is logged in the activity log with what changed (old → new); a change to
the ladder re-evaluates every member's tier in a job queued after the commit. Ids of another
merchant's tiers or rewards are NotFound, like ids that do not exist."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin_server.db import after_commit
from plugin_server.loyalty.errors import NotFound
from plugin_server.loyalty.program import ensure_settings, get_merchant
from plugin_server.loyalty.rewards import get_reward
from plugin_server.loyalty.widget_settings import (
    InvalidWidgetSettings,
    storefront_widget,
    validate_widget_settings,
)
from plugin_server.models import EarningRule, ProgramSettings, Reward, Tier

from .activity import record_activity
from .i18n import Translator
from .member_admin import FieldError
from .settings_forms import (
    EARNING_SWITCHES,
    EarningForm,
    MultiplierRow,
    RewardForm,
    TierLadder,
)

Changes = dict[str, list[Any]]
REEVALUATE_JOB = "reevaluate_tiers"


@dataclass(frozen=True)
class ProgramState:
    settings: ProgramSettings
    tiers: list[Tier]
    rewards: list[Reward]
    widget: dict[str, Any]
    multipliers: list[EarningRule]


def _shown(value: Any) -> Any:
    return Translator.plain(value) if isinstance(value, Decimal) else value


def _assign(target: Any, values: dict[str, Any], prefix: str = "") -> Changes:
    """Set the attributes that differ; returns them as {name: [old, new]} for the log."""
    changes: Changes = {}
    for name, value in values.items():
        old = getattr(target, name)
        if old != value:
            changes[f"{prefix}{name}"] = [_shown(old), _shown(value)]
            setattr(target, name, value)
    return changes


def program_state(session: Session, merchant_id: int) -> ProgramState:
    settings = ensure_settings(session, get_merchant(session, merchant_id))
    tiers = list(session.execute(
        select(Tier).where(Tier.merchant_id == merchant_id, Tier.active.is_(True))
        .order_by(Tier.threshold, Tier.id)).scalars())
    rewards = list(session.execute(
        select(Reward).where(Reward.merchant_id == merchant_id)
        .order_by(Reward.enabled.desc(), Reward.points_cost, Reward.id)).scalars())
    multipliers = list(session.execute(
        select(EarningRule).where(EarningRule.merchant_id == merchant_id)
        .order_by(EarningRule.target, EarningRule.target_id)).scalars())
    return ProgramState(settings, tiers, rewards, storefront_widget(settings.widget_json),
                        multipliers)


def save_earning(session: Session, merchant_id: int, form: EarningForm, actor: str) -> Changes:
    settings = ensure_settings(session, get_merchant(session, merchant_id))
    changes = _assign(settings, {
        "points_per_unit": form.points_per_unit, "rounding": form.rounding.value,
        "award_on": form.award_on.value, "pending_days": form.pending_days,
        **{name: getattr(form, name) for name in EARNING_SWITCHES},
    })
    if form.multipliers is not None:
        changes.update(_save_multipliers(session, merchant_id, form.multipliers))
    if changes:
        record_activity(session, merchant_id, actor, "settings.earning", changes)
    return changes


def _save_multipliers(session: Session, merchant_id: int,
                      rows: tuple[MultiplierRow, ...]) -> Changes:
    """Make the merchant's product and collection multipliers exactly ``rows``."""
    stored = {(rule.target, rule.target_id): rule for rule in session.execute(
        select(EarningRule).where(EarningRule.merchant_id == merchant_id)).scalars()}
    wanted = {(row.target, row.target_id): row for row in rows}
    changes: Changes = {}
    for key, rule in stored.items():
        if key not in wanted:
            session.delete(rule)
            changes[f"{key[0]} {key[1]}: factor"] = [_shown(rule.factor), "—"]
    session.flush()
    for key, row in wanted.items():
        rule = stored.get(key)
        if rule is None:
            session.add(EarningRule(merchant_id=merchant_id, target=row.target,
                                    target_id=row.target_id, factor=row.factor,
                                    label=row.label))
            changes[f"{key[0]} {key[1]}: factor"] = ["—", _shown(row.factor)]
        else:
            changes.update(_assign(rule, {"factor": row.factor, "label": row.label},
                                   prefix=f"{key[0]} {key[1]}: "))
    return changes


def _merchant_tiers(session: Session, merchant_id: int, *, lock: bool) -> dict[int, Tier]:
    query = select(Tier).where(Tier.merchant_id == merchant_id)
    return {tier.id: tier for tier in session.execute(
        query.with_for_update() if lock else query).scalars()}


def check_ladder(session: Session, merchant_id: int, ladder: TierLadder, *,
                 lock: bool = False) -> dict[int, Tier]:
    """The merchant's tiers, if the ladder can be saved over them: every id is one of this
    merchant's active tiers (NotFound otherwise), every active tier is in the ladder (else
    it was loaded before another change), and no kept tier takes a retired tier's name.
    The preview and the save both ask, so a preview is never shown for a ladder that cannot
    be saved."""
    stored = _merchant_tiers(session, merchant_id, lock=lock)
    for tier_id in [row.tier_id for row in ladder.tiers if row.tier_id] + list(ladder.removed):
        if tier_id not in stored or not stored[tier_id].active:
            raise NotFound(f"no tier with id {tier_id}")
    mentioned = {row.tier_id for row in ladder.tiers if row.tier_id} | set(ladder.removed)
    if any(tier.active and tier_id not in mentioned for tier_id, tier in stored.items()):
        raise FieldError("tiers", "program.error.stale_ladder")
    # Retired tiers keep their names (tier history shows them), those removed now included.
    retired_names = {tier.name.casefold() for tier in stored.values()
                     if not tier.active or tier.id in ladder.removed}
    for row in ladder.tiers:
        if row.tier_id and row.name.casefold() in retired_names:
            raise FieldError(f"tiers-{row.row_number}-name", "program.error.retired_name")
    return stored


def save_ladder(session: Session, merchant_id: int, ladder: TierLadder, actor: str,
                enqueue: Callable[[str, int], None]) -> Changes:
    """Edit, add and retire tiers as the ladder says, then queue every member's re-evaluation.
    A retired tier stays (inactive) so tier history keeps its name; adding a tier under a
    retired tier's name brings that tier back."""
    settings = ensure_settings(session, get_merchant(session, merchant_id))
    stored = check_ladder(session, merchant_id, ladder, lock=True)
    changes = _assign(settings, {"tier_basis": ladder.basis.value,
                                 "tier_window": ladder.window.value})
    for tier_id in ladder.removed:
        stored[tier_id].active = False
        changes[f"tier {stored[tier_id].name}"] = ["active", "retired"]
    original = {tier_id: tier.name for tier_id, tier in stored.items()}
    # Names are unique per merchant: park the renamed ones first so a swap never collides.
    for row in ladder.tiers:
        if row.tier_id and original[row.tier_id] != row.name:
            stored[row.tier_id].name = f"~{row.tier_id}"
    session.flush()
    retired_by_name = {tier.name.casefold(): tier for tier in stored.values()
                       if not tier.active}
    for row in ladder.tiers:
        label = f"tier {row.name}"
        tier = stored[row.tier_id] if row.tier_id else retired_by_name.get(row.name.casefold())
        values = {"threshold": row.threshold, "retention_threshold": row.retention_threshold,
                  "multiplier": row.multiplier, "entry_reward_points": row.entry_reward_points,
                  "perks": row.perks}
        if tier is None:
            session.add(Tier(merchant_id=merchant_id, name=row.name, **values))
            changes[label] = ["—", "added"]
            continue
        if not tier.active:
            tier.active = True
            changes[label] = ["retired", "active"]
        if original[tier.id] != row.name:
            changes[f"{label}: name"] = [original[tier.id], row.name]
            tier.name = row.name
        changes.update(_assign(tier, values, prefix=f"{label}: "))
    session.flush()
    if changes:
        record_activity(session, merchant_id, actor, "settings.tiers", changes)
        after_commit(session, lambda: enqueue(REEVALUATE_JOB, merchant_id))
    return changes


def save_reward(session: Session, merchant_id: int, reward_id: int | None, form: RewardForm,
                actor: str) -> Reward:
    values = {"name": form.name, "kind": form.kind, "points_cost": form.points_cost,
              "value": form.value, "minimum_subtotal": form.minimum_subtotal,
              "expires_days": form.expires_days, "enabled": form.enabled}
    if reward_id is None:
        reward = Reward(merchant_id=merchant_id, **values)
        session.add(reward)
        session.flush()
        record_activity(session, merchant_id, actor, "settings.reward_added",
                        {"reward": f"{form.name} (#{reward.id})",
                         "points_cost": form.points_cost})
        return reward
    reward = get_reward(session, merchant_id, reward_id)
    changes = _assign(reward, values)
    if changes:
        record_activity(session, merchant_id, actor, "settings.reward",
                        {"reward": f"{reward.name} (#{reward.id})", **changes})
    return reward


def save_widget(session: Session, merchant_id: int, program_name: str,
                widget: dict[str, Any], actor: str) -> Changes:
    """Store the program's name and the widget's look and texts; the per-language names of
    rewards and tiers, which this form does not show, are kept as they were."""
    settings = ensure_settings(session, get_merchant(session, merchant_id))
    named = _assign(settings, {"program_name": program_name})
    before = storefront_widget(settings.widget_json)
    for language, kept in before.get("texts", {}).items():
        groups = {key: value for key, value in kept.items()
                  if key in ("rewards", "tiers", "perks")}
        if groups:
            widget.setdefault("texts", {}).setdefault(language, {}).update(groups)
    try:
        stored = validate_widget_settings(widget)
    except InvalidWidgetSettings as error:
        raise FieldError(error.field, "program.error.widget", reason=str(error)) from None
    after = json.loads(stored)
    changes: Changes = {key: [before.get(key), after.get(key)]
                        for key in sorted(set(before) | set(after))
                        if before.get(key) != after.get(key)}
    if changes:
        settings.widget_json = stored
    changes.update(named)
    if changes:
        record_activity(session, merchant_id, actor, "settings.widget", changes)
    return changes
