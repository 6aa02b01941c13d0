"""Rewards as real Shopify discount codes: single use, for one customer only (DESIGN §7).

Field names follow the Admin GraphQL API 2026-01: ``context`` (which replaced the deprecated
``customerSelection``), ``customerGets``, ``minimumRequirement``, ``destination``; a code is
disabled with ``discountCodeDeactivate`` and found by its text with ``codeDiscountNodeByCode``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from integrations.base import CodeToDisable, DisabledCode, DiscountRequest, IssuedCode
from integrations.currencies import EXPONENTS
from integrations.shopify.admin import AdminClient

_CUSTOMER_GID = "gid://shopify/Customer/"
_NUMERIC_ID = re.compile(r"[0-9]+")
_DISCOUNT_GID = re.compile(r"gid://shopify/DiscountCodeNode/[0-9]+")

_BASIC_MUTATION = """
mutation discountCodeBasicCreate($basicCodeDiscount: DiscountCodeBasicInput!) {
  discountCodeBasicCreate(basicCodeDiscount: $basicCodeDiscount) {
    codeDiscountNode { id }
    userErrors { field code message }
  }
}
""".strip()

_FREE_SHIPPING_MUTATION = """
mutation discountCodeFreeShippingCreate(
  $freeShippingCodeDiscount: DiscountCodeFreeShippingInput!
) {
  discountCodeFreeShippingCreate(freeShippingCodeDiscount: $freeShippingCodeDiscount) {
    codeDiscountNode { id }
    userErrors { field code message }
  }
}
""".strip()


# Both kinds of code this app creates carry ``asyncUsageCount``; Shopify updates it
# asynchronously, so it can lag a checkout by a few seconds.
_DEACTIVATE_MUTATION = """
mutation discountCodeDeactivate($id: ID!) {
  discountCodeDeactivate(id: $id) {
    codeDiscountNode {
      id
      codeDiscount {
        ... on DiscountCodeBasic { status asyncUsageCount }
        ... on DiscountCodeFreeShipping { status asyncUsageCount }
      }
    }
    userErrors { field code message }
  }
}
""".strip()

_BY_CODE_QUERY = """
query codeDiscountNodeByCode($code: String!) {
  codeDiscountNodeByCode(code: $code) { id }
}
""".strip()


class DiscountRefused(Exception):
    """Shopify (or this adapter, before asking) will not create the code.

    ``code`` is ``"taken"`` when the code already exists in the shop (possibly ours, from a
    call that timed out after Shopify created it), ``"missing"`` when the shop has no such
    code to disable, else ``"refused"``.
    """

    def __init__(self, message: str, code: str = "refused") -> None:
        super().__init__(message)
        self.code = code


def _customer_gid(customer_id: str | None) -> str:
    if not customer_id:
        # A code without a customer restriction could be used by anyone who sees it.
        raise DiscountRefused("a reward code needs a Shopify customer id; guests cannot redeem")
    raw = customer_id.removeprefix(_CUSTOMER_GID)
    if not _NUMERIC_ID.fullmatch(raw):
        raise DiscountRefused(f"not a Shopify customer id: {customer_id!r}")
    return _CUSTOMER_GID + raw


def _money(value: Decimal, currency: str, what: str) -> str:
    """A decimal string in the currency's minor units, e.g. "5.00" (USD) or "500" (JPY)."""
    exponent = EXPONENTS.get(currency.upper(), 2)
    try:
        amount = value.quantize(Decimal(1).scaleb(-exponent))
    except InvalidOperation:
        raise DiscountRefused(f"{what} {value} is not a valid amount") from None
    if amount != value:
        raise DiscountRefused(f"{what} {value} has more decimals than {currency} allows")
    if amount <= 0:
        raise DiscountRefused(f"{what} must be positive, got {value}")
    return str(amount)


def _timestamp(moment: datetime) -> str:
    # Naive datetimes are taken as UTC, the only zone this codebase stores.
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _common_input(request: DiscountRequest) -> dict[str, Any]:
    if not request.code:
        raise DiscountRefused("the discount code is empty")
    fields: dict[str, Any] = {
        "title": request.title or request.code,
        "code": request.code,
        "startsAt": _timestamp(request.starts_at),
        "context": {"customers": {"add": [_customer_gid(request.customer_id)]}},
        "usageLimit": 1,
        "appliesOncePerCustomer": True,
    }
    if request.ends_at is not None:
        if request.ends_at <= request.starts_at:
            raise DiscountRefused("the code would expire before it starts")
        fields["endsAt"] = _timestamp(request.ends_at)
    if request.minimum_subtotal:
        subtotal = _money(request.minimum_subtotal, request.currency, "minimum subtotal")
        fields["minimumRequirement"] = {"subtotal": {"greaterThanOrEqualToSubtotal": subtotal}}
    return fields


def _percentage(value: Decimal) -> float:
    """Shopify wants a fraction: a 10 % reward is 0.1."""
    if not Decimal(0) < value <= Decimal(100):
        raise DiscountRefused(f"a percentage must be above 0 and at most 100, got {value}")
    return float(value / 100)


def discount_mutation(request: DiscountRequest) -> tuple[str, dict[str, Any]]:
    """The mutation text and its variables for ``request``; raises DiscountRefused for a
    request Shopify must never see (no customer, bad value)."""
    fields = _common_input(request)
    if request.kind == "free_shipping":
        fields["destination"] = {"all": True}
        return _FREE_SHIPPING_MUTATION, {"freeShippingCodeDiscount": fields}
    if request.kind == "fixed_amount":
        amount = _money(request.value, request.currency, "amount")
        value: dict[str, Any] = {"discountAmount": {"amount": amount, "appliesOnEachItem": False}}
    elif request.kind == "percentage":
        value = {"percentage": _percentage(request.value)}
    else:
        raise DiscountRefused(f"unknown reward kind {request.kind!r}")
    fields["customerGets"] = {"value": value, "items": {"all": True}}
    return _BASIC_MUTATION, {"basicCodeDiscount": fields}


def create_discount_code(client: AdminClient, request: DiscountRequest) -> IssuedCode:
    """Create the code in the shop. AdminError subclasses pass through untouched."""
    query, variables = discount_mutation(request)
    data = client.execute(query, variables)
    field = ("discountCodeFreeShippingCreate" if request.kind == "free_shipping"
             else "discountCodeBasicCreate")
    payload = data.get(field)
    if not isinstance(payload, dict):
        raise DiscountRefused(f"Shopify's answer has no {field}")
    errors = [e for e in payload.get("userErrors") or [] if isinstance(e, dict)]
    if errors:
        message = "; ".join(str(e.get("message") or e.get("code")) for e in errors)
        taken = any(e.get("code") == "TAKEN" for e in errors)
        raise DiscountRefused(message[:500], "taken" if taken else "refused")
    node = payload.get("codeDiscountNode")
    gid = node.get("id") if isinstance(node, dict) else None
    if not isinstance(gid, str) or not gid:
        raise DiscountRefused("Shopify reported no error but returned no discount id")
    return IssuedCode(code=request.code, platform_discount_id=gid)


def find_discount_id(client: AdminClient, code: str) -> str | None:
    """The id of the shop's code discount with this code (Shopify ignores case), or None."""
    if not code:
        raise DiscountRefused("the discount code is empty")
    data = client.execute(_BY_CODE_QUERY, {"code": code})
    node = data.get("codeDiscountNodeByCode")
    gid = node.get("id") if isinstance(node, dict) else None
    return gid if isinstance(gid, str) and gid else None


def _usage_count(node: object) -> int:
    discount = node.get("codeDiscount") if isinstance(node, dict) else None
    count = discount.get("asyncUsageCount") if isinstance(discount, dict) else None
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        # Without the count nobody can say the code was unused: never guess "unused".
        raise DiscountRefused("Shopify did not report how often the code was used")
    return count


def deactivate_discount_code(client: AdminClient, discount_id: str, code: str) -> DisabledCode:
    """Deactivate the code discount ``discount_id`` (it stops applying at checkout at once)
    and report its usage count as Shopify returns it with the deactivated discount."""
    if not _DISCOUNT_GID.fullmatch(discount_id):
        raise DiscountRefused(f"not a Shopify code discount id: {discount_id[:80]!r}")
    data = client.execute(_DEACTIVATE_MUTATION, {"id": discount_id})
    payload = data.get("discountCodeDeactivate")
    if not isinstance(payload, dict):
        raise DiscountRefused("Shopify's answer has no discountCodeDeactivate")
    errors = [e for e in payload.get("userErrors") or [] if isinstance(e, dict)]
    if errors:
        message = "; ".join(str(e.get("message") or e.get("code")) for e in errors)
        raise DiscountRefused(message[:500])
    node = payload.get("codeDiscountNode")
    return DisabledCode(code=code, platform_discount_id=discount_id,
                        usage_count=_usage_count(node))


def disable_discount_code(client: AdminClient, target: CodeToDisable) -> DisabledCode:
    """Deactivate the code created for a redemption, by the id Shopify gave at creation or,
    when that answer was lost (a retried creation finds the code taken), by the code itself.
    AdminError subclasses pass through untouched."""
    discount_id = target.platform_discount_id
    if not discount_id or not _DISCOUNT_GID.fullmatch(discount_id):
        discount_id = find_discount_id(client, target.code)
    if discount_id is None:
        raise DiscountRefused(f"the shop has no discount code {target.code}", "missing")
    return deactivate_discount_code(client, discount_id, target.code)
