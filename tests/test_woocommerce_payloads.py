"""WooCommerce REST documents (the published examples in shared/fixtures) into base objects."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from integrations.base import RefundLine
from integrations.errors import PayloadError
from integrations.woocommerce.payloads import (
    ORDER_STATUSES,
    order_modified_at,
    parse_customer,
    parse_order,
    parse_refund,
)
from integrations.woocommerce.simulator import FakeWooCommerce
from tests.support.fixtures import fixture_json


def order(**changes: Any) -> dict[str, Any]:
    data = fixture_json("woocommerce/rest/order.json")
    data.update(changes)
    return data


def test_order_fixture() -> None:
    parsed = parse_order(fixture_json("woocommerce/rest/order.json"))
    assert parsed.order_id == "727"
    assert parsed.name == "#727"
    assert parsed.created_at == datetime(2017, 3, 22, 19, 28, 2, tzinfo=UTC)
    assert parsed.updated_at == datetime(2017, 3, 22, 19, 28, 8, tzinfo=UTC)
    assert parsed.currency == "USD"
    assert parsed.customer.customer_id is None  # customer_id 0: a guest
    assert parsed.customer.email == "john.doe@example.com"
    assert (parsed.customer.first_name, parsed.customer.last_name) == ("John", "Doe")
    assert parsed.shipping == Decimal("10.00")
    assert parsed.taxes == Decimal("1.35")
    assert parsed.total == Decimal("29.35")
    assert (parsed.paid, parsed.fulfilled, parsed.cancelled) == (True, False, False)
    first, second = parsed.line_items
    assert (first.line_id, first.quantity, first.unit_price) == ("315", 2, Decimal("3"))
    assert (first.product_id, first.variant_id) == ("93", None)
    assert (second.product_id, second.variant_id) == ("22", "23")
    assert second.title == "Ship Your Idea \u2013 Color: Black, Size: M Test"  # entity decoded
    # Tax is added on top by default: none of it is inside the line amounts.
    assert first.included_tax == second.included_tax == 0
    assert parsed.lines_subtotal == Decimal("18.00")
    assert parsed.discount_codes == () and parsed.refunds == ()
    assert order_modified_at(fixture_json("woocommerce/rest/order.json")) == parsed.updated_at


def test_order_with_refunds_fixture() -> None:
    parsed = parse_order(fixture_json("woocommerce/rest/order_with_refunds.json"))
    assert parsed.customer.customer_id == "26"
    assert parsed.customer.email == "joao.silva@example.com"
    assert (parsed.paid, parsed.fulfilled, parsed.cancelled) == (True, True, False)
    assert [(r.refund_id, r.amount, r.lines) for r in parsed.refunds] == [
        ("726", Decimal("10.00"), ()), ("724", Decimal("9.00"), ())]
    assert all(r.order_id == "723" and r.created_at == parsed.updated_at
               for r in parsed.refunds)


def test_refund_fixture() -> None:
    refund = parse_refund(fixture_json("woocommerce/rest/order_refund.json"), "723")
    assert (refund.refund_id, refund.order_id, refund.amount) == ("726", "723", Decimal("10"))
    assert refund.created_at == datetime(2017, 3, 21, 20, 7, 11, tzinfo=UTC)
    assert refund.lines == ()


def test_refund_lines_are_positive_and_name_the_order_line() -> None:
    store = FakeWooCommerce()
    placed = store.add_order()
    line_id = placed["line_items"][0]["id"]
    document = store.add_refund(placed["id"], "13.00", lines=[(line_id, 1, "3.00")],
                                shipping="10.00")
    assert document["line_items"][0]["quantity"] == -1
    refund = parse_refund(document, str(placed["id"]))
    assert refund.lines == (RefundLine(str(line_id), 1, Decimal("3.00")),)
    assert (refund.amount, refund.shipping) == (Decimal("13.00"), Decimal("10.00"))


def test_refund_lines_without_their_order_line_count_by_amount() -> None:
    document = fixture_json("woocommerce/rest/order_refund.json")
    document["line_items"] = [{"id": 900, "quantity": -1, "subtotal": "-10.00",
                               "total": "-10.00", "meta_data": []}]
    refund = parse_refund(document, "723")
    assert refund.lines == () and refund.amount == Decimal("10.00")


def test_customer_fixture() -> None:
    customer = parse_customer(fixture_json("woocommerce/rest/customer.json"))
    assert (customer.customer_id, customer.email) == ("25", "john.doe@example.com")
    assert (customer.first_name, customer.last_name) == ("John", "Doe")


@pytest.mark.parametrize("name", ["coupon.json", "webhook.json"])
def test_other_fixtures_are_not_orders(name: str) -> None:
    with pytest.raises(PayloadError):
        parse_order(fixture_json(f"woocommerce/rest/{name}"))


@pytest.mark.parametrize(("status", "paid", "fulfilled", "cancelled"), [
    ("pending", False, False, False), ("on-hold", False, False, False),
    ("checkout-draft", False, False, False), ("processing", True, False, False),
    ("completed", True, True, False), ("cancelled", False, False, True),
    ("failed", False, False, True), ("refunded", True, False, True),
    ("trash", False, False, True),
])
def test_statuses(status: str, paid: bool, fulfilled: bool, cancelled: bool) -> None:
    parsed = parse_order(order(status=status))
    assert (parsed.paid, parsed.fulfilled, parsed.cancelled) == (paid, fulfilled, cancelled)
    assert ORDER_STATUSES[status].paid is paid


def test_registered_customer_and_coupons() -> None:
    parsed = parse_order(order(customer_id=42, coupon_lines=[{"id": 1, "code": "save10"}]))
    assert parsed.customer.customer_id == "42"
    assert parsed.discount_codes == ("save10",)


def test_guest_without_billing_email() -> None:
    parsed = parse_order(order(billing=None))
    assert parsed.customer.customer_id is None and parsed.customer.email is None


def test_line_discount_and_uneven_unit_price() -> None:
    data = order()
    data["line_items"][0].update(quantity=3, subtotal="10.00", total="8.00", price=2.6666667)
    line = parse_order(data).line_items[0]
    assert line.unit_price == Decimal("3.3334")  # rounded up: the discount is never negative
    assert line.net_amount == Decimal("8.00")  # exactly the line's total
    assert line.total_discount >= Decimal("2.00")


def test_prices_including_tax() -> None:
    data = order(prices_include_tax=True)
    line = parse_order(data).line_items[0]  # subtotal 6.00 + 0.45 tax
    assert line.unit_price == Decimal("3.225")
    assert line.included_tax == Decimal("0.45")
    assert line.net_amount == Decimal("6.00")


def test_naive_and_offset_dates_are_utc() -> None:
    parsed = parse_order(order(date_modified_gmt="2017-03-22T21:28:08+02:00"))
    assert parsed.updated_at == datetime(2017, 3, 22, 19, 28, 8, tzinfo=UTC)
    never_modified = order(date_modified_gmt=None)
    assert order_modified_at(never_modified) == datetime(2017, 3, 22, 19, 28, 2, tzinfo=UTC)


def _broken(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(fixture_json("woocommerce/rest/order.json"))
    target = data
    *parents, last = path.split(".")
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return data


@pytest.mark.parametrize(("path", "value", "message"), [
    ("status", "shipped", "order.status: unknown status 'shipped'"),
    ("status", ["processing"], "order.status: unknown status"),
    ("total", KeyError, "order.total is missing"),
    ("total", "lots", "order.total must be a number"),
    ("total", "-1.00", "order.total must not be negative"),
    ("date_created_gmt", "yesterday", "order.date_created_gmt must be an ISO 8601 date"),
    ("date_created_gmt", KeyError, "order.date_created_gmt is missing"),
    ("date_modified_gmt", "3017-01-01T00:00:00", "order.date_modified_gmt must be between"),
    ("currency", "XXX", "order.currency is not a known ISO 4217"),
    ("id", KeyError, "order.id is missing"),
    ("customer_id", True, "order.customer_id must be a non-empty id"),
    ("billing", "john", "order.billing must be a JSON object"),
    ("line_items", {"0": {}}, "order.line_items must be a list"),
    ("line_items.0.quantity", 1.5, "order.line_items[0].quantity must be a whole number"),
    ("line_items.0.subtotal", None, "order.line_items[0].subtotal is missing"),
    ("line_items.0.total", "NaN", "order.line_items[0].total must be a finite number"),
    ("coupon_lines", [{"id": 3}], "order.coupon_lines[0].code is missing"),
    ("refunds", [{"id": 1, "total": "x"}], "order.refunds[0].total must be a number"),
    ("prices_include_tax", "false", "order.prices_include_tax must be true or false"),
])
def test_bad_orders_name_the_field(path: str, value: Any, message: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_order(_broken(path, value))
    assert message in str(caught.value)


@pytest.mark.parametrize("data", [None, [], "order", 727])
def test_not_an_object(data: Any) -> None:
    with pytest.raises(PayloadError, match="order must be a JSON object"):
        parse_order(data)


def test_bad_refund_and_customer() -> None:
    refund = fixture_json("woocommerce/rest/order_refund.json")
    with pytest.raises(PayloadError, match=r"refund\.date_created_gmt is missing"):
        parse_refund({**refund, "date_created_gmt": None}, "723")
    with pytest.raises(PayloadError, match=r"refund.line_items\[0\].quantity"):
        parse_refund({**refund, "line_items": [{"id": 1, "quantity": "1", "subtotal": "1"}]},
                     "723")
    with pytest.raises(PayloadError, match=r"customer\.id"):
        parse_customer({**fixture_json("woocommerce/rest/customer.json"), "id": 0})
