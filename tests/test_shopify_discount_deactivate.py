"""Disabling a reward code on Shopify (``discountCodeDeactivate``, ``codeDiscountNodeByCode``):
the exact GraphQL sent and the answers read, against mocked HTTP (pytest-httpserver) and
against the stand-in Shopify."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import graphql
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from integrations.base import CodeToDisable, DisabledCode, DiscountRequest
from integrations.shopify.admin import AdminClient, AdminUnavailable, ShopifyConfig
from integrations.shopify.discounts import (
    _BY_CODE_QUERY,
    _DEACTIVATE_MUTATION,
    DiscountRefused,
    create_discount_code,
    disable_discount_code,
)
from integrations.shopify.simulator import FakeShopify
from tests.support.shopify import API_KEY, API_SECRET, SHOP, serve_fake

GRAPHQL = "/admin/api/2026-01/graphql.json"
GID = "gid://shopify/DiscountCodeNode/206265824"
TARGET = CodeToDisable(merchant_id=1, redemption_id=7, code="LOY-ABCDEFGHIJKLMNOP",
                       platform_discount_id=GID)


def _config(httpserver: HTTPServer, timeout: float = 2.0) -> ShopifyConfig:
    return ShopifyConfig(api_key=API_KEY, api_secret=API_SECRET, timeout=timeout,
                         max_retries=0, url_override=httpserver.url_for("/").rstrip("/"))


@pytest.fixture
def admin(httpserver: HTTPServer) -> Iterator[AdminClient]:
    with AdminClient(_config(httpserver), SHOP, "shpat_token", sleep=lambda _s: None) as client:
        yield client


def deactivated(count: Any, status: str = "EXPIRED") -> dict[str, Any]:
    return {"data": {"discountCodeDeactivate": {
        "codeDiscountNode": {"id": GID, "codeDiscount": {"status": status,
                                                         "asyncUsageCount": count}},
        "userErrors": []}}}


def test_the_documents_are_valid_graphql() -> None:
    for document in (_DEACTIVATE_MUTATION, _BY_CODE_QUERY):
        graphql.parse(document)
    assert "discountCodeDeactivate(id: $id)" in _DEACTIVATE_MUTATION
    assert "codeDiscountNodeByCode(code: $code) { id }" in _BY_CODE_QUERY


@pytest.mark.parametrize(("count", "used"), [(0, False), (1, True)])
def test_deactivates_by_the_stored_id_and_reports_usage(httpserver: HTTPServer,
                                                        admin: AdminClient, count: int,
                                                        used: bool) -> None:
    httpserver.expect_request(GRAPHQL, method="POST").respond_with_json(deactivated(count))

    disabled = disable_discount_code(admin, TARGET)

    assert disabled == DisabledCode(code=TARGET.code, platform_discount_id=GID,
                                    usage_count=count)
    assert disabled.used is used
    assert len(httpserver.log) == 1
    request = httpserver.log[0][0]
    assert request.headers["X-Shopify-Access-Token"] == "shpat_token"
    assert request.get_json() == {"query": _DEACTIVATE_MUTATION, "variables": {"id": GID}}


def test_a_lost_id_is_found_by_the_code_first(httpserver: HTTPServer, admin: AdminClient) -> None:
    answers = iter([{"data": {"codeDiscountNodeByCode": {"id": GID}}}, deactivated(0)])
    httpserver.expect_request(GRAPHQL).respond_with_handler(
        lambda _request: Response(json.dumps(next(answers)),
                                  content_type="application/json"))

    disabled = disable_discount_code(admin, CodeToDisable(1, 7, TARGET.code, None))

    assert disabled.platform_discount_id == GID and not disabled.used
    sent = [entry[0].get_json() for entry in httpserver.log]
    assert sent == [{"query": _BY_CODE_QUERY, "variables": {"code": TARGET.code}},
                    {"query": _DEACTIVATE_MUTATION, "variables": {"id": GID}}]


def test_a_code_the_shop_does_not_have_is_refused_as_missing(httpserver: HTTPServer,
                                                             admin: AdminClient) -> None:
    httpserver.expect_request(GRAPHQL).respond_with_json(
        {"data": {"codeDiscountNodeByCode": None}})

    with pytest.raises(DiscountRefused) as refused:
        disable_discount_code(admin, CodeToDisable(1, 7, TARGET.code, "demo-7"))

    assert refused.value.code == "missing"
    assert len(httpserver.log) == 1  # nothing was deactivated


@pytest.mark.parametrize("answer", [
    {"data": {"discountCodeDeactivate": {"codeDiscountNode": None, "userErrors": [
        {"field": ["id"], "code": "INVALID", "message": "Discount does not exist"}]}}},
    deactivated(None),
    deactivated("1"),
    {"data": {"discountCodeDeactivate": {"codeDiscountNode": {"id": GID, "codeDiscount": {}},
                                         "userErrors": []}}},
    {"data": {}},
])
def test_an_answer_without_a_usage_count_is_never_taken_as_unused(
        httpserver: HTTPServer, admin: AdminClient, answer: dict[str, Any]) -> None:
    httpserver.expect_request(GRAPHQL).respond_with_json(answer)

    with pytest.raises(DiscountRefused):
        disable_discount_code(admin, TARGET)


def test_the_call_has_the_configured_timeout(httpserver: HTTPServer) -> None:
    def slow(_request: Request) -> Response:
        time.sleep(1.0)
        return Response("{}", content_type="application/json")

    httpserver.expect_request(GRAPHQL).respond_with_handler(slow)
    started = time.monotonic()
    with AdminClient(_config(httpserver, timeout=0.2), SHOP, "shpat_token",
                     sleep=lambda _s: None) as client, pytest.raises(AdminUnavailable):
        disable_discount_code(client, TARGET)
    assert time.monotonic() - started < 0.9


# -- the stand-in Shopify -------------------------------------------------------------------------

@pytest.fixture
def fake(httpserver: HTTPServer) -> FakeShopify:
    fake = FakeShopify(api_key=API_KEY, api_secret=API_SECRET)
    fake.add_shop(SHOP)
    fake.access_tokens["shpat_fake"] = SHOP
    serve_fake(httpserver, fake)
    return fake


@pytest.fixture
def fake_admin(httpserver: HTTPServer, fake: FakeShopify) -> Iterator[AdminClient]:
    with AdminClient(_config(httpserver), SHOP, "shpat_fake", sleep=lambda _s: None) as client:
        yield client


def _create(client: AdminClient, code: str) -> str:
    request = DiscountRequest(merchant_id=1, redemption_id=7, code=code, kind="fixed_amount",
                              value=Decimal(5), currency="EUR", customer_id="42", email=None,
                              starts_at=datetime(2026, 1, 1, tzinfo=UTC), ends_at=None,
                              minimum_subtotal=None, title="5 off")
    issued = create_discount_code(client, request)
    assert issued.platform_discount_id is not None
    return issued.platform_discount_id


def test_simulator_an_unused_code_reports_0_and_stops_applying(fake: FakeShopify,
                                                               fake_admin: AdminClient) -> None:
    gid = _create(fake_admin, "LOY-UNUSED")
    assert fake.code_applies("LOY-UNUSED")

    disabled = disable_discount_code(fake_admin, CodeToDisable(1, 7, "LOY-UNUSED", gid))

    assert (disabled.usage_count, disabled.used) == (0, False)
    assert not fake.code_applies("LOY-UNUSED")
    with pytest.raises(ValueError, match="refuses"):
        fake.use_code("LOY-UNUSED")


def test_simulator_a_used_code_reports_1(fake: FakeShopify, fake_admin: AdminClient) -> None:
    gid = _create(fake_admin, "LOY-USED")
    fake.use_code("loy-used")  # Shopify matches codes ignoring case
    assert not fake.code_applies("LOY-USED")  # usage limit 1

    disabled = disable_discount_code(fake_admin, CodeToDisable(1, 7, "LOY-USED", gid))

    assert (disabled.usage_count, disabled.used) == (1, True)


def test_simulator_finds_the_code_when_the_id_was_lost(fake: FakeShopify,
                                                       fake_admin: AdminClient) -> None:
    gid = _create(fake_admin, "LOY-LOST")

    disabled = disable_discount_code(fake_admin, CodeToDisable(1, 7, "LOY-LOST", None))

    assert disabled.platform_discount_id == gid and not fake.code_applies("LOY-LOST")
    with pytest.raises(DiscountRefused) as refused:
        disable_discount_code(fake_admin, CodeToDisable(1, 8, "LOY-NEVER-MADE", None))
    assert refused.value.code == "missing"


def test_simulator_unknown_id_is_a_user_error(fake_admin: AdminClient) -> None:
    with pytest.raises(DiscountRefused, match="does not exist"):
        disable_discount_code(fake_admin, CodeToDisable(
            1, 7, "LOY-X", "gid://shopify/DiscountCodeNode/999"))
