"""Rewards as WooCommerce coupons (DESIGN §8, "Coupons"): one code, used once, by one shopper.

WooCommerce ties a coupon to a shopper through ``email_restrictions`` (checked against the
billing email at checkout); it has no customer-id restriction. Each coupon carries the id of
the redemption it was made for in its meta data, so a coupon found by its code (after a call
that timed out, or a code clash) can be told apart from one the merchant made.

A coupon is disabled by moving it to the trash: WooCommerce only applies published coupons,
and the answer to the trashing carries the coupon's ``usage_count`` and ``used_by``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ..base import CodeToDisable, DisabledCode, DiscountRequest
from ..currencies import EXPONENTS
from .client import ALREADY_TRASHED, WooClient, WooError

MAX_CODE_LENGTH = 100
# A leading underscore keeps the meta entry out of the coupon's custom fields in wp-admin.
REDEMPTION_META_KEY = "_loyalty_redemption"


class InvalidCoupon(ValueError):
    """A request WooCommerce must never see (bad value, unknown kind, empty code)."""


def _money(value: Decimal, currency: str, what: str) -> str:
    """A decimal string in the currency's minor units, e.g. "5.00" (USD) or "500" (JPY)."""
    exponent = EXPONENTS.get(currency.upper(), 2)
    try:
        amount = value.quantize(Decimal(1).scaleb(-exponent))
    except InvalidOperation:
        raise InvalidCoupon(f"{what} {value} is not a valid amount") from None
    if amount != value:
        raise InvalidCoupon(f"{what} {value} has more decimals than {currency} allows")
    if amount <= 0:
        raise InvalidCoupon(f"{what} must be positive, got {value}")
    return str(amount)


def _percentage(value: Decimal) -> str:
    if not value.is_finite() or not Decimal(0) < value <= Decimal(100):
        raise InvalidCoupon(f"a percentage must be above 0 and at most 100, got {value}")
    return format(value.normalize(), "f")  # "10", "12.5": never "1E+1"


def _utc(moment: datetime) -> datetime:
    """A naive value is taken as UTC, so naive and aware values compare."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _gmt(moment: datetime) -> str:
    """``date_expires_gmt``: ISO 8601 without an offset, in GMT."""
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%S")


def coupon_body(request: DiscountRequest) -> dict[str, Any]:
    """The JSON body of ``POST /wp-json/wc/v3/coupons`` for ``request``."""
    if not request.code or len(request.code) > MAX_CODE_LENGTH:
        raise InvalidCoupon(f"the coupon code must be 1 to {MAX_CODE_LENGTH} characters")
    body: dict[str, Any] = {"code": request.code}
    if request.kind == "fixed_amount":
        body.update(discount_type="fixed_cart",
                    amount=_money(request.value, request.currency, "amount"))
    elif request.kind == "percentage":
        body.update(discount_type="percent", amount=_percentage(request.value))
    elif request.kind == "free_shipping":
        # WooCommerce has no free-shipping coupon type: a zero cart discount that grants it.
        body.update(discount_type="fixed_cart", amount="0", free_shipping=True)
    else:
        raise InvalidCoupon(f"unknown reward kind {request.kind!r}")
    body.update(individual_use=False, usage_limit=1, usage_limit_per_user=1)
    if request.email:
        body["email_restrictions"] = [request.email]
    if request.ends_at is not None:
        if _utc(request.ends_at) <= _utc(request.starts_at):
            raise InvalidCoupon("the coupon would expire before it starts")
        body["date_expires_gmt"] = _gmt(request.ends_at)
    if request.minimum_subtotal:
        body["minimum_amount"] = _money(request.minimum_subtotal, request.currency,
                                        "minimum subtotal")
    body["description"] = request.title or ""
    body["meta_data"] = [{"key": REDEMPTION_META_KEY, "value": str(request.redemption_id)}]
    return body


def coupon_redemption_id(coupon: Mapping[str, Any]) -> str | None:
    """The redemption id ``coupon_body`` stored in a coupon the store returns, or None for a
    coupon this app did not make."""
    entries = coupon.get("meta_data")
    if not isinstance(entries, list):
        return None
    for entry in entries:
        if isinstance(entry, Mapping) and entry.get("key") == REDEMPTION_META_KEY:
            value = entry.get("value")
            # Ours are strings of digits; a number is taken too, anything else is not ours.
            if isinstance(value, bool) or not isinstance(value, str | int):
                return None
            return str(value).strip() or None
    return None


def disabled_code(coupon: Mapping[str, Any], code: str) -> DisabledCode:
    """What a coupon document says of its use; WooError when it does not say (a coupon whose
    use is unknown must never count as unused)."""
    count = coupon.get("usage_count")
    if isinstance(count, str) and count.isdecimal():
        count = int(count)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise WooError("the store did not report how often the coupon was used",
                       code="unexpected_json")
    users = coupon.get("used_by")
    used_by = tuple(str(user) for user in users if str(user)) if isinstance(users, list) else ()
    coupon_id = coupon.get("id")
    return DisabledCode(code=code, platform_discount_id=str(coupon_id) if coupon_id else None,
                        usage_count=count, used_by=used_by)


def _coupon_id(client: WooClient, target: CodeToDisable) -> str:
    known = (target.platform_discount_id or "").strip()
    if known.isdecimal():
        return known
    # The creation's answer was lost: the coupon is found by its code, and must be ours.
    found = client.coupon_by_code(target.code)
    if found is None or coupon_redemption_id(found) != str(target.redemption_id) \
            or not str(found.get("id") or "").isdecimal():
        raise WooError(f"the store has no coupon {target.code} made for this redemption",
                       code="coupon_not_found")
    return str(found["id"])


def disable_coupon(client: WooClient, target: CodeToDisable) -> DisabledCode:
    """Trash the coupon made for a redemption and report its use. A coupon in the trash
    already (an earlier attempt whose answer was lost, or the merchant) is read instead:
    it no longer applies either way."""
    coupon_id = _coupon_id(client, target)
    try:
        coupon = client.trash_coupon(coupon_id)
    except WooError as error:
        if error.code != ALREADY_TRASHED:
            raise
        coupon = client.coupon(coupon_id)
    return disabled_code(coupon, target.code)
