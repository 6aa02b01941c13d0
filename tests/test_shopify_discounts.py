"""Reward codes created through the Admin API against a local fake (pytest-httpserver)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from integrations.base import DiscountRequest, IssuedCode
from integrations.shopify.admin import AdminClient, ShopifyConfig
from integrations.shopify.discounts import (
    DiscountRefused,
    create_discount_code,
    discount_mutation,
)

SHOP = "loyal-test.myshopify.com"
GRAPHQL = "/admin/api/2026-01/graphql.json"
GID = "gid://shopify/DiscountCodeNode/123"

BASE = DiscountRequest(
    merchant_id=1, redemption_id=7, code="LOYAL-AB12CD", kind="fixed_amount",
    value=Decimal("5"), currency="USD", customer_id="6012345", email="s@example.com",
    starts_at=datetime(2026, 3, 1, 9, 30, tzinfo=UTC), ends_at=None, minimum_subtotal=None,
    title="$5 off",
)

COMMON = {
    "title": "$5 off",
    "code": "LOYAL-AB12CD",
    "startsAt": "2026-03-01T09:30:00Z",
    "context": {"customers": {"add": ["gid://shopify/Customer/6012345"]}},
    "usageLimit": 1,
    "appliesOncePerCustomer": True,
}


def request(**changes: Any) -> DiscountRequest:
    return dataclasses.replace(BASE, **changes)


@pytest.fixture
def admin(httpserver: HTTPServer) -> Any:
    config = ShopifyConfig(api_key="k", api_secret="s", timeout=2.0, max_retries=0,
                           url_override=httpserver.url_for("/").rstrip("/"))
    with AdminClient(config, SHOP, "shpat_token", sleep=lambda _s: None) as client:
        yield client


def created(field: str) -> dict[str, Any]:
    return {"data": {field: {"codeDiscountNode": {"id": GID}, "userErrors": []}}}


def test_fixed_amount(httpserver: HTTPServer, admin: AdminClient) -> None:
    httpserver.expect_request(GRAPHQL).respond_with_json(created("discountCodeBasicCreate"))

    issued = create_discount_code(admin, request())

    assert issued == IssuedCode(code="LOYAL-AB12CD", platform_discount_id=GID)
    sent = httpserver.log[0][0].get_json()
    assert "discountCodeBasicCreate(basicCodeDiscount: $basicCodeDiscount)" in sent["query"]
    assert "codeDiscountNode { id }" in sent["query"]
    assert "userErrors { field code message }" in sent["query"]
    assert sent["variables"] == {"basicCodeDiscount": {
        **COMMON,
        "customerGets": {"value": {"discountAmount": {"amount": "5.00",
                                                      "appliesOnEachItem": False}},
                         "items": {"all": True}},
    }}


def test_percentage_with_end_and_minimum(httpserver: HTTPServer, admin: AdminClient) -> None:
    httpserver.expect_request(GRAPHQL).respond_with_json(created("discountCodeBasicCreate"))
    req = request(kind="percentage", value=Decimal("10"), title="10% off",
                  ends_at=datetime(2026, 4, 1, tzinfo=UTC), minimum_subtotal=Decimal("50"))

    create_discount_code(admin, req)

    assert httpserver.log[0][0].get_json()["variables"] == {"basicCodeDiscount": {
        **COMMON,
        "title": "10% off",
        "endsAt": "2026-04-01T00:00:00Z",
        "minimumRequirement": {"subtotal": {"greaterThanOrEqualToSubtotal": "50.00"}},
        "customerGets": {"value": {"percentage": 0.1}, "items": {"all": True}},
    }}


def test_free_shipping(httpserver: HTTPServer, admin: AdminClient) -> None:
    httpserver.expect_request(GRAPHQL).respond_with_json(
        created("discountCodeFreeShippingCreate"))

    issued = create_discount_code(admin, request(kind="free_shipping", value=Decimal(0),
                                                 customer_id="gid://shopify/Customer/6012345"))

    assert issued.platform_discount_id == GID
    sent = httpserver.log[0][0].get_json()
    assert ("discountCodeFreeShippingCreate(freeShippingCodeDiscount: $freeShippingCodeDiscount)"
            in sent["query"])
    assert sent["variables"] == {"freeShippingCodeDiscount": {
        **COMMON, "destination": {"all": True},
    }}


def test_zero_decimal_currency() -> None:
    _, variables = discount_mutation(request(value=Decimal("500"), currency="JPY",
                                             minimum_subtotal=Decimal("3000")))
    fields = variables["basicCodeDiscount"]
    assert fields["customerGets"]["value"]["discountAmount"]["amount"] == "500"
    assert fields["minimumRequirement"] == {"subtotal": {"greaterThanOrEqualToSubtotal": "3000"}}


def test_taken_code_is_refused_as_taken(httpserver: HTTPServer, admin: AdminClient) -> None:
    httpserver.expect_request(GRAPHQL).respond_with_json({"data": {"discountCodeBasicCreate": {
        "codeDiscountNode": None,
        "userErrors": [{"field": ["basicCodeDiscount", "code"], "code": "TAKEN",
                        "message": "Code must be unique. Please try a different code."}],
    }}})
    with pytest.raises(DiscountRefused) as caught:
        create_discount_code(admin, request())
    assert caught.value.code == "taken"
    assert "must be unique" in str(caught.value)


def test_other_user_errors_are_refused(httpserver: HTTPServer, admin: AdminClient) -> None:
    httpserver.expect_request(GRAPHQL).respond_with_json({"data": {"discountCodeBasicCreate": {
        "codeDiscountNode": None,
        "userErrors": [{"field": ["basicCodeDiscount", "context"], "code": "INVALID",
                        "message": "Customer does not exist"},
                       {"field": None, "code": "BLANK", "message": "Title can't be blank"}],
    }}})
    with pytest.raises(DiscountRefused) as caught:
        create_discount_code(admin, request())
    assert caught.value.code == "refused"
    assert str(caught.value) == "Customer does not exist; Title can't be blank"


@pytest.mark.parametrize("customer_id", [None, "", "abc", "gid://shopify/Order/1", "1 OR 1"])
def test_no_usable_customer_is_refused_before_any_call(
        httpserver: HTTPServer, admin: AdminClient, customer_id: str | None) -> None:
    with pytest.raises(DiscountRefused) as caught:
        create_discount_code(admin, request(customer_id=customer_id))
    assert caught.value.code == "refused"
    assert httpserver.log == []


@pytest.mark.parametrize("changes", [
    {"kind": "percentage", "value": Decimal("0")},
    {"kind": "percentage", "value": Decimal("101")},
    {"value": Decimal("-5")},
    {"value": Decimal("5.001")},
    {"kind": "points"},
    {"code": ""},
    {"ends_at": datetime(2026, 3, 1, 9, 0, tzinfo=UTC)},
])
def test_bad_requests_never_reach_shopify(changes: dict[str, Any]) -> None:
    with pytest.raises(DiscountRefused):
        discount_mutation(request(**changes))
