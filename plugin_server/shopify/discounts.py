"""Rewards on Shopify: the redemption's code created, and deactivated when the merchant
cancels it, through the Admin API."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from integrations.base import CodeToDisable, DisabledCode, DiscountRequest, IssuedCode
from integrations.shopify.admin import AdminClient, AdminError
from integrations.shopify.discounts import (
    DiscountRefused,
    create_discount_code,
    disable_discount_code,
)
from plugin_server.loyalty.errors import PlatformRefused

from .tokens import NotConnected, admin_client

if TYPE_CHECKING:
    from plugin_server.runtime import Runtime

log = logging.getLogger(__name__)


@contextmanager
def _shop(runtime: Runtime, merchant_id: int, doing: str) -> Iterator[AdminClient]:
    """The shop's Admin client; its failures become PlatformRefused naming ``doing``."""
    try:
        with admin_client(runtime, merchant_id) as client:
            yield client
    except NotConnected as error:
        raise PlatformRefused(f"the store is not connected: {error}") from error
    except AdminError as error:
        raise PlatformRefused(f"Shopify could not {doing}: {error}") from error


def shopify_code_issuer(runtime: Runtime) -> Callable[[DiscountRequest], IssuedCode]:
    def issue(request: DiscountRequest) -> IssuedCode:
        with _shop(runtime, request.merchant_id, "create the discount code") as client:
            try:
                return create_discount_code(client, request)
            except DiscountRefused as error:
                if error.code == "taken":
                    # Our codes carry 80 random bits: one that exists already is this very
                    # code, created by an earlier attempt whose answer was lost (the client
                    # retries).
                    log.info("code of redemption %s exists already; it is ours",
                             request.redemption_id)
                    return IssuedCode(code=request.code)
                raise PlatformRefused(f"Shopify refused the discount code: {error}") from error

    return issue


def shopify_code_disabler(runtime: Runtime) -> Callable[[CodeToDisable], DisabledCode]:
    def disable(target: CodeToDisable) -> DisabledCode:
        with _shop(runtime, target.merchant_id, "deactivate the code") as client:
            try:
                return disable_discount_code(client, target)
            except DiscountRefused as error:
                raise PlatformRefused(f"Shopify refused to deactivate the code: "
                                      f"{error}") from error

    return disable
