"""Rewards on WooCommerce: the redemption's code created as a single-use coupon through the
REST API (``POST /coupons``), restricted to the member's email; moved to the trash when the
merchant cancels it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

from integrations.base import CodeToDisable, DisabledCode, DiscountRequest, IssuedCode
from integrations.woocommerce.client import CouponCodeTaken, WooClient, WooError
from integrations.woocommerce.coupons import coupon_body, coupon_redemption_id, disable_coupon
from plugin_server.loyalty.errors import PlatformRefused
from plugin_server.loyalty.rewards import generate_code

from .store_client import NotConnected, woo_client

if TYPE_CHECKING:
    from plugin_server.runtime import Runtime

log = logging.getLogger(__name__)
# A code that exists already (the merchant's own coupon) gets a fresh one; three times taken
# in a row is not chance.
ATTEMPTS = 3


def _issued(code: str, coupon: dict[str, object]) -> IssuedCode:
    # WooCommerce keeps codes in lower case and matches them ignoring case; the shopper sees
    # ours as made.
    return IssuedCode(code=code, platform_discount_id=str(coupon.get("id") or "") or None)


def _create(client: WooClient, request: DiscountRequest) -> IssuedCode:
    attempt = request
    for _ in range(ATTEMPTS):
        try:
            return _issued(attempt.code, client.create_coupon(coupon_body(attempt)))
        except CouponCodeTaken:
            # Ours already when an earlier answer was lost (the client repeats the POST after
            # a timeout): a second coupon would give the shopper two.
            existing = client.coupon_by_code(attempt.code)
            if existing is not None and \
                    coupon_redemption_id(existing) == str(request.redemption_id):
                return _issued(attempt.code, existing)
            log.info("coupon code of redemption %s is taken; making another",
                     request.redemption_id)
            attempt = replace(attempt, code=generate_code())
    raise PlatformRefused("WooCommerce refused every code offered for this coupon")


@contextmanager
def _store(runtime: Runtime, merchant_id: int, doing: str) -> Iterator[WooClient]:
    """The store's REST client; its failures become PlatformRefused naming ``doing``."""
    try:
        with woo_client(runtime, merchant_id) as client:
            yield client
    except NotConnected as error:
        raise PlatformRefused(f"the store is not connected: {error}") from error
    except WooError as error:
        raise PlatformRefused(f"WooCommerce could not {doing}: {error}") from error


def woocommerce_code_issuer(runtime: Runtime) -> Callable[[DiscountRequest], IssuedCode]:
    def issue(request: DiscountRequest) -> IssuedCode:
        with _store(runtime, request.merchant_id, "create the coupon") as client:
            return _create(client, request)

    return issue


def woocommerce_code_disabler(runtime: Runtime) -> Callable[[CodeToDisable], DisabledCode]:
    def disable(target: CodeToDisable) -> DisabledCode:
        with _store(runtime, target.merchant_id, "disable the coupon") as client:
            return disable_coupon(client, target)

    return disable
