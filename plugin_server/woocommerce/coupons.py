"""Rewards on WooCommerce: the redemption's code created as a single-use coupon through the
REST API (``POST /coupons``), restricted to the member's email."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from integrations.base import DiscountRequest, IssuedCode
from integrations.woocommerce.client import CouponCodeTaken, WooError
from integrations.woocommerce.coupons import coupon_body
from plugin_server.loyalty.errors import PlatformRefused
from plugin_server.loyalty.rewards import generate_code

from .jobs import NotConnected, woo_client

if TYPE_CHECKING:
    from plugin_server.runtime import Runtime

log = logging.getLogger(__name__)
# A code that exists already (the merchant's own coupon, or ours from an answer lost on the
# way) gets a fresh one; three times taken in a row is not chance.
ATTEMPTS = 3


def woocommerce_code_issuer(runtime: Runtime) -> Callable[[DiscountRequest], IssuedCode]:
    def issue(request: DiscountRequest) -> IssuedCode:
        attempt = request
        try:
            with woo_client(runtime, request.merchant_id) as client:
                for _ in range(ATTEMPTS):
                    try:
                        coupon = client.create_coupon(coupon_body(attempt))
                    except CouponCodeTaken:
                        log.info("coupon code of redemption %s is taken; making another",
                                 request.redemption_id)
                        attempt = replace(attempt, code=generate_code())
                        continue
                    # WooCommerce keeps codes in lower case and matches them ignoring case;
                    # the shopper sees ours as made.
                    return IssuedCode(code=attempt.code,
                                      platform_discount_id=str(coupon.get("id") or "") or None)
        except NotConnected as error:
            raise PlatformRefused(f"the store is not connected: {error}") from error
        except WooError as error:
            raise PlatformRefused(f"WooCommerce could not create the coupon: {error}") from error
        raise PlatformRefused("WooCommerce refused every code offered for this coupon")

    return issue
