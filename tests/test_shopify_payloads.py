"""Shopify REST / webhook JSON into ``integrations.base`` (integrations/shopify/payloads.py)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from integrations import canonical
from integrations.base import Customer, RefundLine
from integrations.errors import PayloadError
from integrations.shopify.payloads import parse_customer, parse_order, parse_refund
from tests.support.builders import line, order
from tests.support.fixtures import fixture_json, shopify_webhook

D = Decimal
ORDER_TOPICS = ["orders/create", "orders/updated", "orders/paid", "orders/fulfilled",
                "orders/cancelled"]
EST = timezone(timedelta(hours=-5))


def webhook_order() -> dict[str, Any]:
    return copy.deepcopy(shopify_webhook("orders/paid"))


def refund_body() -> dict[str, Any]:
    return copy.deepcopy(shopify_webhook("refunds/create"))


def money_set(shop: str, presentment: str | None = None, currency: str = "USD") -> dict[str, Any]:
    return {"shop_money": {"amount": shop, "currency_code": "USD"},
            "presentment_money": {"amount": presentment or shop, "currency_code": currency}}


def changed(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    data = webhook_order()
    change(data)
    return data


def error_of(parse: Callable[[Any], object], data: Any) -> str:
    with pytest.raises(PayloadError) as caught:
        parse(data)
    return str(caught.value)


# ---- the published webhook bodies --------------------------------------------------------------

@pytest.mark.parametrize("topic", ORDER_TOPICS)
def test_every_order_webhook_fixture_parses_exactly(topic: str) -> None:
    parsed = parse_order(shopify_webhook(topic))

    assert parsed.order_id == "820982911946154508"
    assert parsed.name == "#9999"
    assert parsed.created_at == parsed.updated_at == datetime(2021, 12, 31, 19, tzinfo=EST)
    assert parsed.created_at == datetime(2022, 1, 1, 0, tzinfo=UTC)
    assert parsed.currency == "USD"
    # The order's own email (typed at checkout) wins over the customer profile's.
    assert parsed.customer == Customer(customer_id="115310627314723954", email="jon@example.com",
                                       first_name="John", last_name="Smith")
    assert [item.line_id for item in parsed.line_items] == [
        "487817672276298554", "789012345678901234", "890123456789012345",
        "976318377106520349", "315789986012684393"]
    assert [item.unit_price for item in parsed.line_items] == [
        D("89.99"), D("19.99"), D("24.99"), D("159.99"), D("119.99")]
    assert [item.quantity for item in parsed.line_items] == [1, 1, 1, 1, 1]
    assert all(item.total_discount == 0 and item.included_tax == 0 for item in parsed.line_items)
    assert [item.product_id for item in parsed.line_items] == [
        "788032119674292900", None, None, "788032119674292900", "788032119674292900"]
    assert parsed.line_items[0].title == "Aviator sunglasses"
    assert not any(item.is_gift_card for item in parsed.line_items)
    assert parsed.lines_subtotal == D("414.95")
    assert parsed.shipping == D("10.00")
    assert parsed.taxes == D("0")
    assert parsed.tips == D("0")
    assert parsed.total == D("404.95")
    assert parsed.test is True
    assert parsed.cancelled is True
    assert parsed.paid is False  # "voided"
    assert parsed.fulfilled is False
    assert parsed.discount_codes == ()
    assert parsed.refunds == ()


def test_amounts_are_decimals_never_floats() -> None:
    parsed = parse_order(webhook_order())
    amounts = [parsed.shipping, parsed.taxes, parsed.tips, parsed.total,
               *(item.unit_price for item in parsed.line_items),
               *(item.total_discount for item in parsed.line_items)]
    assert all(type(amount) is Decimal for amount in amounts)


def test_rest_order_without_money_sets_falls_back_to_the_plain_fields() -> None:
    parsed = parse_order(fixture_json("shopify/rest/order.json")["order"])

    assert parsed.order_id == "450789469"
    assert [item.unit_price for item in parsed.line_items] == [D("199.00")] * 3
    assert [item.variant_id for item in parsed.line_items] == ["39072856", "49148385",
                                                               "457924702"]
    assert parsed.taxes == D("11.94")
    assert parsed.total == D("409.94")
    assert parsed.shipping == 0
    assert parsed.paid is False  # "authorized"
    assert parsed.discount_codes == ("TENOFF",)
    assert parsed.customer == Customer("207119551", "bob.norman@hostmail.com", "Bob", "Norman")


def test_rest_order_list_entries_without_line_items_are_refused() -> None:
    for entry in fixture_json("shopify/rest/orders.json")["orders"]:
        assert error_of(parse_order, entry) == "order.line_items is missing"


# ---- variants built from the fixture -----------------------------------------------------------

@pytest.mark.parametrize(("status", "paid"), [
    ("paid", True), ("partially_refunded", True), ("refunded", True), ("partially_paid", False),
    ("pending", False), ("authorized", False), ("voided", False), (None, False),
    (["paid"], False),  # garbled: not hashable, still not paid
])
def test_financial_status(status: Any, paid: bool) -> None:
    assert parse_order(changed(lambda o: o.update(financial_status=status))).paid is paid


@pytest.mark.parametrize(("status", "fulfilled"), [
    ("fulfilled", True), ("partial", False), ("restocked", False), (None, False)])
def test_fulfillment_status(status: str | None, fulfilled: bool) -> None:
    data = changed(lambda o: o.update(fulfillment_status=status))
    assert parse_order(data).fulfilled is fulfilled


def test_an_order_not_cancelled() -> None:
    assert parse_order(changed(lambda o: o.update(cancelled_at=None))).cancelled is False


def test_discounts_come_from_allocations_in_shop_money() -> None:
    data = webhook_order()
    lounger = data["line_items"][3]
    lounger["total_discount_set"] = money_set("7.00")  # ignored: allocations are present
    lounger["discount_allocations"] = [
        {"amount": "4.00", "amount_set": money_set("5.00", "4.00", "EUR")},
        {"amount": "4.00", "amount_set": money_set("5.25", "4.00", "EUR")},
    ]
    sunglasses = data["line_items"][0]
    sunglasses["total_discount"] = "9.99"  # the set wins over the plain field
    sunglasses["total_discount_set"] = money_set("3.50")

    parsed = parse_order(data)

    assert parsed.line_items[3].total_discount == D("10.25")
    assert parsed.line_items[3].net_amount == D("149.74")
    assert parsed.line_items[0].total_discount == D("3.50")
    assert parsed.lines_subtotal == D("414.95") - D("13.75")


def test_taxes_included_shops_take_line_tax_out_of_the_price() -> None:
    data = webhook_order()
    data["taxes_included"] = True
    data["line_items"][0]["tax_lines"] = [
        {"price": "15.00", "rate": 0.2, "title": "VAT", "price_set": money_set("15.00", "14.00")},
        {"price": "2.00", "rate": 0.02, "title": "Eco", "price_set": money_set("2.00")},
    ]

    parsed = parse_order(data)

    assert parsed.line_items[0].included_tax == D("17.00")
    assert parsed.line_items[0].net_amount == D("72.99")
    assert [item.included_tax for item in parsed.line_items[1:]] == [0, 0, 0, 0]


def test_tax_lines_are_ignored_when_tax_is_added_on_top() -> None:
    data = webhook_order()
    data["line_items"][0]["tax_lines"] = [{"price": "15.00", "price_set": money_set("15.00")}]
    assert parse_order(data).line_items[0].included_tax == 0


def test_guest_order_uses_the_order_email() -> None:
    data = changed(lambda o: o.update(customer=None, email=None,
                                      contact_email="guest@example.com"))
    assert parse_order(data).customer == Customer(customer_id=None, email="guest@example.com")


def test_email_falls_back_to_the_customer_profile() -> None:
    data = changed(lambda o: o.update(email="", contact_email=None))
    assert parse_order(data).customer.email == "john@example.com"


def test_shop_money_wins_over_presentment_money_and_plain_fields() -> None:
    data = webhook_order()
    data["presentment_currency"] = "EUR"

    def to_euros(node: Any) -> None:
        if isinstance(node, dict):
            if "presentment_money" in node:
                node["presentment_money"] = {"amount": "999.99", "currency_code": "EUR"}
            for value in node.values():
                to_euros(value)
        elif isinstance(node, list):
            for value in node:
                to_euros(value)

    to_euros(data)
    data["total_price"] = "1.00"
    data["line_items"][0]["price"] = "2.00"

    parsed = parse_order(data)

    assert parsed.currency == "USD"
    assert parsed.total == D("404.95")
    assert parsed.shipping == D("10.00")
    assert parsed.line_items[0].unit_price == D("89.99")


def test_a_line_without_price_set_uses_its_plain_price() -> None:
    data = webhook_order()
    del data["line_items"][1]["price_set"]
    data["line_items"][1]["price"] = "18.50"
    assert parse_order(data).line_items[1].unit_price == D("18.50")


def test_gift_cards_variants_and_discount_codes() -> None:
    data = webhook_order()
    data["line_items"][2].update(gift_card=True, variant_id=123456)
    data["discount_codes"] = [{"code": "WELCOME10", "amount": "10.00", "type": "percentage"}]
    parsed = parse_order(data)
    assert parsed.line_items[2].is_gift_card is True
    assert parsed.line_items[2].variant_id == "123456"
    assert parsed.discount_codes == ("WELCOME10",)


def test_unknown_fields_are_ignored_and_long_titles_cut() -> None:
    data = changed(lambda o: o.update(brand_new_field={"x": [1, 2]}))
    data["line_items"][0]["title"] = "T" * 400
    assert parse_order(data).line_items[0].title == "T" * 255


def test_refunds_inside_an_order_belong_to_that_order() -> None:
    data = changed(lambda o: o.update(refunds=[refund_body()]))
    parsed = parse_order(data)
    assert len(parsed.refunds) == 1
    # The refund's own order_id (820982911946154500) went through a JavaScript number.
    assert parsed.refunds[0].order_id == "820982911946154508"
    assert parsed.refunds[0] == parse_refund(refund_body(), order_id="820982911946154508")


# ---- refunds -----------------------------------------------------------------------------------

def test_refunds_create_fixture() -> None:
    refund = parse_refund(shopify_webhook("refunds/create"))

    assert refund.refund_id == "890088186047892319"
    assert refund.order_id == "820982911946154500"
    assert refund.created_at == datetime(2021, 12, 31, 19, tzinfo=EST)
    assert refund.lines == (
        RefundLine("487817672276298554", 1, D("89.99")),
        RefundLine("789012345678901234", 1, D("19.99")),
        RefundLine("890123456789012345", 1, D("24.99")),
        RefundLine("976318377106520349", 1, D("159.99")),
        RefundLine("315789986012684393", 1, D("119.99")),
    )
    assert all(type(item.subtotal) is Decimal for item in refund.lines)
    assert refund.lines_subtotal == D("414.95")
    assert refund.amount == D("85.00")  # two successful refund transactions: 75.00 + 10.00
    assert refund.shipping == 0


def test_refund_line_subtotal_comes_from_subtotal_set_never_the_float() -> None:
    body = refund_body()
    body["refund_line_items"][0]["subtotal"] = 0.1 + 0.2
    body["refund_line_items"][0]["subtotal_set"] = money_set("89.99", "80.00", "EUR")
    assert parse_refund(body).lines[0].subtotal == D("89.99")

    del body["refund_line_items"][0]["subtotal_set"]
    assert error_of(parse_refund, body) == "refund.refund_line_items[0].subtotal_set is missing"


def test_old_rest_refund_without_subtotals_is_refused_by_field() -> None:
    body = fixture_json("shopify/rest/refund.json")["refund"]
    assert error_of(parse_refund, body) == "refund.refund_line_items[0].subtotal_set is missing"


def test_refund_amount_counts_only_successful_refund_transactions_in_shop_money() -> None:
    body = refund_body()
    first, second = body["transactions"]
    first["amount_set"] = money_set("70.00", "64.00", "EUR")  # wins over amount "75.00"
    failed = {**second, "status": "failure", "amount": "500.00"}
    sale = {**second, "kind": "sale", "amount": "900.00"}
    body["transactions"] = [first, second, failed, sale]
    assert parse_refund(body).amount == D("80.00")


def test_refund_shipping_from_shipping_lines_and_adjustments() -> None:
    body = refund_body()
    body["refund_shipping_lines"] = [
        {"id": 1, "subtotal_amount_set": money_set("5.00"), "shipping_line": {"id": 2}}]
    body["order_adjustments"] = [
        {"id": 3, "kind": "shipping_refund", "amount": "-3.00", "amount_set": money_set("-3.00")},
        {"id": 4, "kind": "refund_discrepancy", "amount": "-1.00",
         "amount_set": money_set("-1.00")},
    ]
    assert parse_refund(body).shipping == D("8.00")


def test_amount_only_refund() -> None:
    body = refund_body()
    body["refund_line_items"] = []
    refund = parse_refund(body)
    assert refund.lines == ()
    assert refund.amount == D("85.00")


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r.pop("id"), "refund.id is missing"),
    (lambda r: r.pop("order_id"), "refund.order_id is missing"),
    (lambda r: r.update(created_at="soon"), "refund.created_at must be an ISO 8601"),
    (lambda r: r["refund_line_items"][1].pop("line_item_id"),
     "refund.refund_line_items[1].line_item_id is missing"),
    (lambda r: r["refund_line_items"][1].update(quantity=-1),
     "refund.refund_line_items[1].quantity must be between"),
    (lambda r: r["refund_line_items"][2]["subtotal_set"]["shop_money"].update(amount="ten"),
     "refund.refund_line_items[2].subtotal_set.shop_money.amount must be a number"),
    (lambda r: r["transactions"][0].update(amount=None),
     "refund.transactions[0].amount_set is missing"),
    (lambda r: r.update(transactions=[{"kind": "refund", "status": "success",
                                       "amount": "999999999"}] * 2),
     "refund.transactions add up to"),
    (lambda r: r.update(refund_line_items={"a": 1}), "refund.refund_line_items must be a list"),
])
def test_broken_refunds_name_the_field(change: Callable[[dict[str, Any]], None],
                                       message: str) -> None:
    body = refund_body()
    change(body)
    assert message in error_of(parse_refund, body)


# ---- customers ---------------------------------------------------------------------------------

@pytest.mark.parametrize("topic", ["customers/create", "customers/update"])
def test_customer_webhooks(topic: str) -> None:
    assert parse_customer(shopify_webhook(topic)) == Customer(
        customer_id="706405506930370084", email="bob@biller.com", first_name="Bob",
        last_name="Biller", accepts_marketing=False)


def test_rest_customer() -> None:
    parsed = parse_customer(fixture_json("shopify/rest/customer.json")["customer"])
    assert parsed == Customer("207119551", "bob.norman@hostmail.com", "Bob", "Norman", False)


@pytest.mark.parametrize(("fields", "accepts"), [
    ({"email_marketing_consent": {"state": "subscribed", "opt_in_level": "single_opt_in"}}, True),
    ({"email_marketing_consent": {"state": "not_subscribed"}}, False),
    ({"email_marketing_consent": {"state": "unsubscribed"}, "accepts_marketing": True}, False),
    ({"accepts_marketing": True}, True),
    ({"accepts_marketing": False}, False),
    ({}, False),
])
def test_customer_marketing_consent(fields: dict[str, Any], accepts: bool) -> None:
    body = {**shopify_webhook("customers/create"), **fields}
    assert parse_customer(body).accepts_marketing is accepts


@pytest.mark.parametrize(("body", "message"), [
    ({"email": "a@example.com"}, "customer.id is missing"),
    ({"id": 1, "email": 5}, "customer.email must be text"),
    ({"id": 1, "accepts_marketing": "yes"}, "customer.accepts_marketing must be true or false"),
    ({"id": 1, "email_marketing_consent": "subscribed"},
     "customer.email_marketing_consent must be a JSON object"),
    ("customer", "customer must be a JSON object"),
])
def test_broken_customers_name_the_field(body: Any, message: str) -> None:
    assert message in error_of(parse_customer, body)


# ---- strictness --------------------------------------------------------------------------------

def _set_line(index: int, **fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda o: o["line_items"][index].update(fields)


@pytest.mark.parametrize(("change", "message"), [
    (lambda o: o.pop("id"), "order.id is missing"),
    (lambda o: o.update(id=12.5), "order.id must be a non-empty id"),
    (lambda o: o.pop("created_at"), "order.created_at is missing"),
    (lambda o: o.update(updated_at="yesterday"), "order.updated_at must be an ISO 8601"),
    (lambda o: o.update(updated_at="2021-12-31T19:00:00"), "order.updated_at must include"),
    (lambda o: o.pop("currency"), "order.currency is missing"),
    (lambda o: o.update(currency="DOLLARS"), "order.currency is not a known ISO 4217"),
    (lambda o: o.pop("line_items"), "order.line_items is missing"),
    (lambda o: o.update(line_items="many"), "order.line_items must be a list"),
    (lambda o: [o.pop("total_price_set"), o.pop("total_price")],
     "order.total_price_set is missing"),
    (lambda o: o["line_items"][2]["price_set"]["shop_money"].update(amount="abc"),
     "order.line_items[2].price_set.shop_money.amount must be a number"),
    (lambda o: o["line_items"][2]["price_set"]["shop_money"].pop("amount"),
     "order.line_items[2].price_set.shop_money.amount must be a number"),
    (lambda o: o["line_items"][2]["price_set"].update(shop_money=None),
     "order.line_items[2].price_set.shop_money must be a JSON object"),
    (_set_line(2, price_set="89.99"), "order.line_items[2].price_set must be a JSON object"),
    (lambda o: [o["line_items"][4].pop(k) for k in ("price_set", "price")],
     "order.line_items[4].price_set is missing"),
    (_set_line(1, quantity="1"), "order.line_items[1].quantity must be a whole number"),
    (_set_line(0, id=None), "order.line_items[0].id is missing"),
    (_set_line(0, id=True), "order.line_items[0].id must be a non-empty id"),
    (_set_line(0, product_id=[1]), "order.line_items[0].product_id must be a non-empty id"),
    (_set_line(0, gift_card="false"), "order.line_items[0].gift_card must be true or false"),
    (_set_line(0, title=7), "order.line_items[0].title must be text"),
    (_set_line(3, discount_allocations=[{"amount_set": money_set("NaN")}]),
     "order.line_items[3].discount_allocations[0].amount_set.shop_money.amount must be a "
     "finite number"),
    (_set_line(3, discount_allocations=["5.00"]),
     "order.line_items[3].discount_allocations[0] must be a JSON object"),
    (_set_line(0, total_discount_set=money_set("90.00")),
     "order.line_items[0] discounts and included taxes are larger than the line's price"),
    (lambda o: o["total_shipping_price_set"]["shop_money"].update(amount="-1"),
     "order.total_shipping_price_set.shop_money.amount must not be negative"),
    (lambda o: o.update(total_tip_received=True), "order.total_tip_received must be a number"),
    (lambda o: o.update(test="yes"), "order.test must be true or false"),
    (lambda o: o.update(taxes_included="true"), "order.taxes_included must be true or false"),
    (lambda o: o.update(customer="bob"), "order.customer must be a JSON object"),
    (lambda o: o["customer"].update(id={"n": 1}), "order.customer.id must be a non-empty id"),
    (lambda o: o.update(email="x" * 400), "order.email must be text of at most 320"),
    (lambda o: o.update(discount_codes=[{"amount": "1"}]),
     "order.discount_codes[0].code is missing"),
    (lambda o: o.update(discount_codes=[{"code": 5}]), "order.discount_codes must be a list of"),
    (lambda o: o.update(refunds=[{"id": 1}]), "order.refunds[0].created_at is missing"),
    (lambda o: o.update(refunds={}), "order.refunds must be a list"),
])
def test_broken_orders_name_the_field(change: Callable[[dict[str, Any]], None],
                                      message: str) -> None:
    assert message in error_of(parse_order, changed(change))


@pytest.mark.parametrize("body", [None, [], "order", 3])
def test_an_order_must_be_an_object(body: Any) -> None:
    assert error_of(parse_order, body) == "order must be a JSON object"


@pytest.mark.parametrize(("change", "message"), [
    (_set_line(0, price_set=money_set("1000000001")), "beyond the limit of 1000000000"),
    (_set_line(0, price_set=money_set("1e400")), "beyond the limit of 1000000000"),
    (lambda o: o["total_price_set"]["shop_money"].update(amount="9" * 40),
     "order.total_price_set.shop_money.amount is beyond the limit"),
    (_set_line(0, quantity=100_001), "order.line_items[0].quantity must be between 0 and 100000"),
    (lambda o: [o["line_items"][i].update(price_set=money_set("900000000"), quantity=1)
                for i in range(2)], "order.line_items add up to"),
    (_set_line(3, discount_allocations=[{"amount_set": money_set("999999999")}] * 3),
     "order.line_items[3].discount_allocations add up to"),
])
def test_absurd_amounts_are_refused(change: Callable[[dict[str, Any]], None],
                                    message: str) -> None:
    assert message in error_of(parse_order, changed(change))


def test_too_many_lines_are_refused() -> None:
    data = webhook_order()
    data["line_items"] = [copy.deepcopy(data["line_items"][0])
                          for _ in range(canonical.MAX_LINES + 1)]
    assert error_of(parse_order, data) == "order.line_items must be a list of at most 1000 entries"

    data["line_items"] = data["line_items"][:canonical.MAX_LINES]
    assert len(parse_order(data).line_items) == canonical.MAX_LINES


# ---- canonical form and included_tax -----------------------------------------------------------

def test_canonical_round_trips_included_tax() -> None:
    built = order("1001", line("1", "24.00", 2, discount="4.00"), line("2", "10.00"))
    taxed = replace(built, line_items=(replace(built.line_items[0], included_tax=D("7.3333")),
                                       built.line_items[1]))
    as_dict = canonical.order_to_dict(taxed)
    assert as_dict["line_items"][0]["included_tax"] == "7.3333"
    assert as_dict["line_items"][1]["included_tax"] == "0"
    assert canonical.parse_order(as_dict) == taxed
    assert canonical.parse_order(as_dict).line_items[0].net_amount == D("36.6667")


def test_a_shopify_order_survives_the_canonical_form() -> None:
    data = webhook_order()
    data["taxes_included"] = True
    data["line_items"][1]["tax_lines"] = [{"price_set": money_set("3.33")}]
    data["line_items"][3]["discount_allocations"] = [{"amount_set": money_set("5.00")}]
    data["refunds"] = [refund_body()]
    parsed = parse_order(data)
    assert canonical.parse_order(canonical.order_to_dict(parsed)) == parsed


def test_canonical_defaults_included_tax_and_checks_it() -> None:
    body = canonical.order_to_dict(order("1", line("1", "10.00", discount="2.00")))
    del body["line_items"][0]["included_tax"]
    assert canonical.parse_order(body).line_items[0].included_tax == 0

    body["line_items"][0]["included_tax"] = "x"
    assert error_of(canonical.parse_order, body) == (
        "order.line_items[0].included_tax must be a number, got 'x'")
    body["line_items"][0]["included_tax"] = "-1"
    assert "order.line_items[0].included_tax must not be negative" in error_of(
        canonical.parse_order, body)
    body["line_items"][0]["included_tax"] = "8.01"
    assert error_of(canonical.parse_order, body) == (
        "order.line_items[0].included_tax (with total_discount) is larger than the line's price")
    body["line_items"][0].update(included_tax="1", total_discount="10.50")
    assert error_of(canonical.parse_order, body) == (
        "order.line_items[0].total_discount is larger than the line's price")
