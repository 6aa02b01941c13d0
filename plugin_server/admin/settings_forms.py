"""Reading the program settings forms: text fields in, plain dataclasses out. Pure: nothing
here touches the database, so the same parsing serves a preview and a save. A field that
cannot be saved raises FieldError with the field's name and a catalog key saying why."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from plugin_server.loyalty.rules import AwardTrigger, Rounding, TierBasis, TierWindow
from plugin_server.models.base import FixedDecimal
from plugin_server.models.merchant import REWARD_KINDS

from .member_admin import FieldError

MAX_RATE = Decimal(1000)
MAX_PENDING_DAYS = 365
MAX_TIERS = 10
MAX_THRESHOLD = Decimal(10**9)
MAX_TIER_MULTIPLIER = Decimal(10)
MAX_ENTRY_REWARD = 1_000_000
MAX_REWARD_COST = 10_000_000
MAX_FIXED_VALUE = Decimal(100_000)
MAX_EXPIRY_DAYS = 3650
NAME_LIMITS = {"tier": 60, "reward": 120}
PERKS_LIMIT = 300
PROGRAM_NAME_LIMIT = 60
EARNING_SWITCHES = ("include_shipping", "include_taxes", "include_tips", "include_gift_cards",
                    "award_test_orders")
TIER_FIELDS = ("id", "name", "threshold", "retention", "multiplier", "entry_reward", "perks")
MULTIPLIER_FIELDS = ("target_id", "factor", "label")
MULTIPLIER_TARGETS = ("product", "collection")
MAX_LINE_MULTIPLIER = Decimal(10)
MAX_MULTIPLIERS = 200
LABEL_LIMIT = 120
# A platform's product or collection id, as order lines carry it (Shopify's and WooCommerce's
# are numbers); a Shopify GID (gid://shopify/Product/7) is taken as its number.
TARGET_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
SHOPIFY_GID = re.compile(r"gid://shopify/(?:Product|Collection)/([0-9]{1,20})")

Form = Mapping[str, str]
DECIMAL = re.compile(r"-?[0-9]{1,13}(\.[0-9]{1,8})?")
WHOLE = re.compile(r"-?[0-9]{1,12}")
ID = re.compile(r"[1-9][0-9]{0,17}")
ROW = re.compile(r"[0-9]{1,4}")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
Choice = TypeVar("Choice", Rounding, AwardTrigger, TierBasis, TierWindow)


@dataclass(frozen=True)
class MultiplierRow:
    """Extra weight for the lines of one product or one collection (2 = double points)."""

    target: str  # "product" | "collection"
    target_id: str
    factor: Decimal
    label: str


@dataclass(frozen=True)
class EarningForm:
    points_per_unit: Decimal
    rounding: Rounding
    award_on: AwardTrigger
    pending_days: int
    include_shipping: bool
    include_taxes: bool
    include_tips: bool
    include_gift_cards: bool
    award_test_orders: bool
    # None when the form did not show the multipliers: they stay as they are.
    multipliers: tuple[MultiplierRow, ...] | None = None


@dataclass(frozen=True)
class TierRow:
    """One rung of the ladder as the merchant arranged it; ``tier_id`` None for a new tier."""

    tier_id: int | None
    name: str
    threshold: Decimal
    retention_threshold: Decimal | None
    multiplier: Decimal
    entry_reward_points: int
    perks: str
    # The row's number in the form (``tiers-<n>-...``), to point at its fields.
    row_number: int = 0


@dataclass(frozen=True)
class TierLadder:
    basis: TierBasis
    window: TierWindow
    tiers: tuple[TierRow, ...]
    # Existing tiers the merchant removed: retired, so tier history keeps its names.
    removed: tuple[int, ...]


@dataclass(frozen=True)
class RewardForm:
    name: str
    kind: str
    points_cost: int
    value: Decimal
    minimum_subtotal: Decimal | None
    expires_days: int | None
    enabled: bool


def _decimal(form: Form, name: str, low: Decimal, high: Decimal, *,
             whole: bool = False) -> Decimal:
    raw = form.get(name, "").strip()
    # ASCII digits only: Decimal() and int() also take "١٢", "1e3" and 5,000-digit numbers.
    value = Decimal(raw) if DECIMAL.fullmatch(raw) else Decimal("NaN")
    if not value.is_finite() or not low <= value <= high:
        raise FieldError(name, "program.error.number_range", low=low, high=high)
    if whole and value != value.to_integral_value():
        raise FieldError(name, "program.error.whole_number", low=low, high=high)
    if value * FixedDecimal.SCALE != (value * FixedDecimal.SCALE).to_integral_value():
        raise FieldError(name, "program.error.decimals")
    return value


def _whole(form: Form, name: str, low: int, high: int) -> int:
    raw = form.get(name, "").strip()
    if not WHOLE.fullmatch(raw) or not low <= int(raw) <= high:
        raise FieldError(name, "program.error.whole_number", low=low, high=high)
    return int(raw)


def _optional(form: Form, name: str) -> bool:
    return form.get(name, "").strip() != ""


def _choice(form: Form, name: str, choices: type[Choice]) -> Choice:
    try:
        return choices(form.get(name, ""))
    except ValueError:
        raise FieldError(name, "program.error.choice",
                         choices=", ".join(choice.value for choice in choices)) from None


def _switch(form: Form, name: str) -> bool:
    return form.get(name, "") in ("on", "1", "true", "yes")


def _text(form: Form, name: str, limit: int, *, required: bool = True) -> str:
    text = " ".join(form.get(name, "").split())
    if (required and not text) or len(text) > limit or CONTROL.search(text):
        raise FieldError(name, "program.error.text_length", low=1 if required else 0,
                         high=limit)
    return text


def parse_earning(form: Form) -> EarningForm:
    return EarningForm(
        points_per_unit=_decimal(form, "points_per_unit", Decimal(0), MAX_RATE),
        rounding=_choice(form, "rounding", Rounding),
        award_on=_choice(form, "award_on", AwardTrigger),
        pending_days=_whole(form, "pending_days", 0, MAX_PENDING_DAYS),
        **{name: _switch(form, name) for name in EARNING_SWITCHES},
        multipliers=(_multipliers(form) if form.get("multipliers_shown") == "1" else None),
    )


def _multipliers(form: Form) -> tuple[MultiplierRow, ...]:
    """The product and collection multipliers as listed (removed and empty rows left out)."""
    rows: list[MultiplierRow] = []
    for number in _row_numbers(form, "multipliers"):
        prefix = f"multipliers-{number}-"
        if _switch(form, f"{prefix}remove") or not any(
                form.get(f"{prefix}{name}", "").strip() for name in MULTIPLIER_FIELDS):
            continue
        target = form.get(f"{prefix}target", "")
        if target not in MULTIPLIER_TARGETS:
            raise FieldError(f"{prefix}target", "program.error.choice",
                             choices=", ".join(MULTIPLIER_TARGETS))
        target_id = form.get(f"{prefix}target_id", "").strip()
        # Order lines carry the number alone (a GID's tail), so that is what is kept.
        gid = SHOPIFY_GID.fullmatch(target_id)
        target_id = gid.group(1) if gid else target_id
        if not TARGET_ID.fullmatch(target_id):
            raise FieldError(f"{prefix}target_id", "program.error.target_id")
        if any(row.target == target and row.target_id == target_id for row in rows):
            raise FieldError(f"{prefix}target_id", "program.error.duplicate_multiplier")
        rows.append(MultiplierRow(
            target=target, target_id=target_id,
            factor=_decimal(form, f"{prefix}factor", Decimal(0), MAX_LINE_MULTIPLIER),
            label=_text(form, f"{prefix}label", LABEL_LIMIT, required=False)))
    if len(rows) > MAX_MULTIPLIERS:
        raise FieldError("multipliers", "program.error.too_many_multipliers",
                         high=MAX_MULTIPLIERS)
    return tuple(rows)


def _tier_id(form: Form, name: str) -> int | None:
    """A saved tier's id, None for a new row; anything else is not an id of ours."""
    raw = form.get(name, "").strip()
    if not raw:
        return None
    if not ID.fullmatch(raw):
        raise FieldError(name, "program.error.stale_ladder")
    return int(raw)


def _row_numbers(form: Form, group: str) -> list[int]:
    """A group's row numbers in the order the form lists them (``tiers-<n>-name``): the
    order the merchant arranged the rows in, whatever the numbers."""
    numbers: list[int] = []
    for key in form:
        parts = key.split("-")
        if len(parts) == 3 and parts[0] == group and ROW.fullmatch(parts[1]) \
                and int(parts[1]) not in numbers:
            numbers.append(int(parts[1]))
    return numbers


def _tier_row(form: Form, number: int, basis: TierBasis) -> TierRow:
    prefix = f"tiers-{number}-"
    whole = basis is not TierBasis.AMOUNT_SPENT
    return TierRow(
        tier_id=_tier_id(form, f"{prefix}id"),
        name=_text(form, f"{prefix}name", NAME_LIMITS["tier"]),
        threshold=_decimal(form, f"{prefix}threshold", Decimal(0), MAX_THRESHOLD, whole=whole),
        retention_threshold=(_decimal(form, f"{prefix}retention", Decimal(0), MAX_THRESHOLD,
                                      whole=whole)
                             if _optional(form, f"{prefix}retention") else None),
        multiplier=(_decimal(form, f"{prefix}multiplier", Decimal(0), MAX_TIER_MULTIPLIER)
                    if _optional(form, f"{prefix}multiplier") else Decimal(1)),
        entry_reward_points=(_whole(form, f"{prefix}entry_reward", 0, MAX_ENTRY_REWARD)
                             if _optional(form, f"{prefix}entry_reward") else 0),
        perks=_text(form, f"{prefix}perks", PERKS_LIMIT, required=False),
        row_number=number,
    )


def parse_ladder(form: Form) -> TierLadder:
    """The ladder in the order shown: each tier must start above the one before it, and a
    member keeping a tier must still be past the tier below (no overlapping ranges)."""
    basis = _choice(form, "tier_basis", TierBasis)
    window = _choice(form, "tier_window", TierWindow)
    rows: list[TierRow] = []
    removed: list[int] = []
    for number in _row_numbers(form, "tiers"):
        prefix = f"tiers-{number}-"
        tier_id = _tier_id(form, f"{prefix}id")
        if _switch(form, f"{prefix}remove"):
            if tier_id is not None:
                removed.append(tier_id)
            continue
        if tier_id is None and not any(form.get(f"{prefix}{name}", "").strip()
                                  for name in TIER_FIELDS):
            continue  # the empty row offered for a new tier
        row = _tier_row(form, number, basis)
        if rows and row.threshold <= rows[-1].threshold:
            raise FieldError(f"{prefix}threshold", "program.error.threshold_order",
                             below=rows[-1].name, threshold=rows[-1].threshold)
        if row.retention_threshold is not None:
            if row.retention_threshold > row.threshold:
                raise FieldError(f"{prefix}retention", "program.error.retention_above")
            if rows and row.retention_threshold < rows[-1].threshold:
                raise FieldError(f"{prefix}retention", "program.error.retention_overlap",
                                 below=rows[-1].name, threshold=rows[-1].threshold)
        if any(other.name.casefold() == row.name.casefold() for other in rows):
            raise FieldError(f"{prefix}name", "program.error.duplicate_name")
        rows.append(row)
    if len(rows) > MAX_TIERS:
        raise FieldError("tiers", "program.error.too_many_tiers", high=MAX_TIERS)
    return TierLadder(basis=basis, window=window, tiers=tuple(rows), removed=tuple(removed))


def parse_program_name(form: Form) -> str:
    """The program's name, shown atop the widget where no language has its own."""
    return _text(form, "program_name", PROGRAM_NAME_LIMIT)


def parse_reward(form: Form) -> RewardForm:
    kind = form.get("kind", "")
    if kind not in REWARD_KINDS:
        raise FieldError("kind", "program.error.choice", choices=", ".join(REWARD_KINDS))
    if kind == "percentage":
        value = _decimal(form, "value", Decimal("0.01"), Decimal(100))
    elif kind == "fixed_amount":
        value = _decimal(form, "value", Decimal("0.01"), MAX_FIXED_VALUE)
    else:
        value = Decimal(0)
    return RewardForm(
        name=_text(form, "name", NAME_LIMITS["reward"]),
        kind=kind,
        points_cost=_whole(form, "points_cost", 1, MAX_REWARD_COST),
        value=value,
        minimum_subtotal=(_decimal(form, "minimum_subtotal", Decimal(0), MAX_FIXED_VALUE)
                          if _optional(form, "minimum_subtotal") else None),
        expires_days=(_whole(form, "expires_days", 1, MAX_EXPIRY_DAYS)
                      if _optional(form, "expires_days") else None),
        enabled=_switch(form, "enabled"),
    )
