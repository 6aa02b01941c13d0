"""Reward requests as WooCommerce coupon bodies (POST /wp-json/wc/v3/coupons)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from integrations.base import DiscountRequest
from integrations.woocommerce.coupons import InvalidCoupon, coupon_body, coupon_redemption_id

BASE = DiscountRequest(
    merchant_id=1, redemption_id=7, code="LOYALAB12CD34EF", kind="fixed_amount",
    value=Decimal("5"), currency="USD", customer_id="26", email="joao.silva@example.com",
    starts_at=datetime(2026, 3, 1, 9, 30, tzinfo=UTC), ends_at=None, minimum_subtotal=None,
    title="$5 off",
)


def request(**changes: Any) -> DiscountRequest:
    return dataclasses.replace(BASE, **changes)


def test_fixed_amount() -> None:
    assert coupon_body(BASE) == {
        "code": "LOYALAB12CD34EF", "discount_type": "fixed_cart", "amount": "5.00",
        "individual_use": False, "usage_limit": 1, "usage_limit_per_user": 1,
        "email_restrictions": ["joao.silva@example.com"], "description": "$5 off",
        "meta_data": [{"key": "_loyalty_redemption", "value": "7"}],
    }


def test_zero_decimal_currency() -> None:
    assert coupon_body(request(value=Decimal("500"), currency="JPY"))["amount"] == "500"


def test_percentage_with_expiry_and_minimum() -> None:
    ends = datetime(2026, 4, 1, 18, 0, tzinfo=timezone(timedelta(hours=9)))
    body = coupon_body(request(kind="percentage", value=Decimal("12.50"), ends_at=ends,
                               minimum_subtotal=Decimal("40")))
    assert body["discount_type"] == "percent"
    assert body["amount"] == "12.5"
    assert body["date_expires_gmt"] == "2026-04-01T09:00:00"  # GMT, no offset
    assert body["minimum_amount"] == "40.00"
    assert "free_shipping" not in body


def test_free_shipping() -> None:
    body = coupon_body(request(kind="free_shipping", value=Decimal("0")))
    assert (body["discount_type"], body["amount"], body["free_shipping"]) == (
        "fixed_cart", "0", True)


def test_without_email_no_restriction_is_sent() -> None:
    assert "email_restrictions" not in coupon_body(request(email=None))


@pytest.mark.parametrize(("changes", "message"), [
    ({"kind": "free_product"}, "unknown reward kind"),
    ({"code": ""}, "coupon code"),
    ({"value": Decimal("0")}, "must be positive"),
    ({"value": Decimal("5.001")}, "more decimals than USD"),
    ({"value": Decimal("1.5"), "currency": "JPY"}, "more decimals than JPY"),
    ({"kind": "percentage", "value": Decimal("101")}, "percentage"),
    ({"kind": "percentage", "value": Decimal("0")}, "percentage"),
    ({"ends_at": datetime(2026, 3, 1, 9, 0, tzinfo=UTC)}, "expire before it starts"),
    ({"minimum_subtotal": Decimal("-1")}, "minimum subtotal must be positive"),
])
def test_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidCoupon, match=message):
        coupon_body(request(**changes))


def test_the_redemption_id_reads_back_from_the_coupon_the_store_returns() -> None:
    body = coupon_body(request(redemption_id=4012))
    assert coupon_redemption_id(body) == "4012"
    # WooCommerce adds an id to each meta entry and may list others (plugins, the merchant).
    returned = {**body, "meta_data": [{"id": 88, "key": "_wc_other", "value": "x"},
                                      {"id": 89, "key": "_loyalty_redemption", "value": 4012}]}
    assert coupon_redemption_id(returned) == "4012"


@pytest.mark.parametrize("meta_data", [
    None, "garbage", [], [{"key": "_wc_other", "value": "7"}],
    [{"key": "_loyalty_redemption", "value": ""}],
    [{"key": "_loyalty_redemption", "value": {"nested": 1}}],
    [{"key": "_loyalty_redemption", "value": True}], ["not an object"],
])
def test_a_coupon_we_did_not_make_has_no_redemption_id(meta_data: Any) -> None:
    assert coupon_redemption_id({"code": "summer10", "meta_data": meta_data}) is None
