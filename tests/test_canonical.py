"""The canonical order JSON (integrations/canonical.py): strict parsing, exact round trips."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from integrations.base import Customer, Order
from integrations.canonical import decode_json, order_to_dict, parse_order
from integrations.errors import PayloadError
from tests.support.builders import customer, line, order, refund, with_refunds

D = Decimal


def valid() -> dict[str, Any]:
    return {
        "order_id": "1001",
        "name": "#1001",
        "created_at": "2026-01-05T12:00:00Z",
        "updated_at": "2026-01-05T12:05:00+09:00",
        "currency": "USD",
        "customer": {"customer_id": "42", "email": "sam@example.com", "first_name": "Sam",
                     "last_name": "Shopper"},
        "line_items": [
            {"line_id": "1", "product_id": "p1", "title": "Sencha", "quantity": 2,
             "unit_price": "14.00", "total_discount": "3.00", "collection_ids": ["tea"],
             "is_gift_card": False},
            {"line_id": 2, "quantity": 1, "unit_price": 10.5},
        ],
        "shipping": "5.00",
        "taxes": "1.25",
        "tips": 0,
        "total": "42.25",
        "paid": True,
        "fulfilled": False,
        "cancelled": False,
        "test": False,
        "discount_codes": ["WELCOME"],
        "refunds": [
            {"refund_id": "r1", "created_at": "2026-01-06T00:00:00+00:00", "amount": "0",
             "shipping": "5.00", "lines": [{"line_id": "1", "quantity": 1,
                                            "subtotal": "12.50"}]},
        ],
    }


def broken(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    data = valid()
    change(data)
    return data


def parse_error(data: Any) -> str:
    with pytest.raises(PayloadError) as caught:
        parse_order(data)
    return str(caught.value)


# --- Valid orders -----------------------------------------------------------------------


def test_valid_order_parses_exactly() -> None:
    parsed = parse_order(valid())
    assert parsed.order_id == "1001"
    assert parsed.created_at == datetime(2026, 1, 5, 12, tzinfo=UTC)
    assert parsed.updated_at.utcoffset() == timedelta(hours=9)
    assert parsed.customer == Customer("42", "sam@example.com", "Sam", "Shopper")
    first, second = parsed.line_items
    assert (first.quantity, first.unit_price, first.total_discount) == (2, D("14"), D("3"))
    assert first.net_amount == D("25.00")
    assert first.collection_ids == ("tea",)
    assert second.line_id == "2" and second.unit_price == D("10.50")
    assert isinstance(second.unit_price, Decimal)
    assert (parsed.shipping, parsed.taxes, parsed.tips, parsed.total) == (
        D("5"), D("1.25"), D(0), D("42.25"))
    assert parsed.paid and not parsed.fulfilled and not parsed.cancelled and not parsed.test
    assert parsed.discount_codes == ("WELCOME",)
    (only,) = parsed.refunds
    assert only.order_id == "1001" and only.lines_subtotal == D("12.50")
    assert only.shipping == D("5.00")


def test_valid_order_round_trips_through_order_to_dict() -> None:
    parsed = parse_order(valid())
    again = parse_order(json.loads(json.dumps(order_to_dict(parsed))))
    assert again == parsed
    assert order_to_dict(again) == order_to_dict(parsed)


def test_built_order_round_trips() -> None:
    placed = order("7", line("1", "19.99", quantity=3, discount="2.50", collections=("a", "b")),
                   line("2", "25.00", product_id=None, gift_card=True),
                   who=customer(None, "guest@example.com"), shipping=D("4.00"),
                   discount_codes=("X", "Y"))
    placed = with_refunds(placed, refund("r1", ("1", 1, "19.99"), order_id="7"),
                          refund("r2", amount="3.00", order_id="7"))
    assert parse_order(json.loads(json.dumps(order_to_dict(placed)))) == placed


def test_minimal_order_gets_defaults() -> None:
    parsed = parse_order({"order_id": 5, "created_at": "2026-01-01T00:00:00Z",
                          "updated_at": "2026-01-01T00:00:00Z", "currency": "JPY",
                          "line_items": [], "total": 0})
    assert parsed.order_id == "5"
    assert parsed.customer == Customer(None, None)
    assert parsed.line_items == () and parsed.refunds == ()
    assert not parsed.paid


def test_lower_case_currency_is_accepted_and_upper_cased() -> None:
    assert parse_order(broken(lambda d: d.update(currency="usd"))).currency == "USD"
    assert parse_order(broken(lambda d: d.update(currency="jpy"))).currency == "JPY"


@pytest.mark.parametrize("raw", ["0", "0.00", 12, "1e3", " 7.5 ", 1000000000])
def test_money_accepts_numbers_and_numeric_strings(raw: Any) -> None:
    parsed = parse_order(broken(lambda d: d.update(total=raw)))
    assert parsed.total == D(str(raw).strip())


@pytest.mark.parametrize("value", [0, "0", ""])
def test_guest_customer_ids(value: Any) -> None:
    data = broken(lambda d: d["customer"].update(customer_id=value))
    assert parse_order(data).customer.customer_id is None


# --- Malformed orders -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["order_id", "line_items", "total", "created_at",
                                  "updated_at", "currency"])
def test_missing_required_field_is_named(name: str) -> None:
    assert parse_error(broken(lambda d: d.pop(name))) == f"order.{name} is missing"
    assert parse_error(broken(lambda d: d.update({name: None}))) == f"order.{name} is missing"


@pytest.mark.parametrize(("path", "name"), [
    (("line_items", 0), "line_id"),
    (("line_items", 0), "quantity"),
    (("line_items", 1), "unit_price"),
    (("refunds", 0), "refund_id"),
    (("refunds", 0), "created_at"),
])
def test_missing_nested_field_is_named(path: tuple[str, int], name: str) -> None:
    data = valid()
    data[path[0]][path[1]].pop(name)
    assert parse_error(data) == f"order.{path[0]}[{path[1]}].{name} is missing"


def test_missing_refund_line_field_is_named() -> None:
    data = valid()
    data["refunds"][0]["lines"][0].pop("subtotal")
    assert parse_error(data) == "order.refunds[0].lines[0].subtotal is missing"


@pytest.mark.parametrize("body", [None, [], "order", 7])
def test_order_must_be_an_object(body: Any) -> None:
    assert parse_error(body) == "order must be a JSON object"


@pytest.mark.parametrize(("where", "set_value"), [
    ("order.total", lambda d, v: d.update(total=v)),
    ("order.shipping", lambda d, v: d.update(shipping=v)),
    ("order.taxes", lambda d, v: d.update(taxes=v)),
    ("order.tips", lambda d, v: d.update(tips=v)),
    ("order.line_items[0].unit_price", lambda d, v: d["line_items"][0].update(unit_price=v)),
    ("order.line_items[1].unit_price", lambda d, v: d["line_items"][1].update(unit_price=v)),
    ("order.line_items[0].total_discount",
     lambda d, v: d["line_items"][0].update(total_discount=v)),
    ("order.refunds[0].amount", lambda d, v: d["refunds"][0].update(amount=v)),
    ("order.refunds[0].shipping", lambda d, v: d["refunds"][0].update(shipping=v)),
    ("order.refunds[0].lines[0].subtotal",
     lambda d, v: d["refunds"][0]["lines"][0].update(subtotal=v)),
])
@pytest.mark.parametrize(("value", "problem"), [
    ("-0.01", "must not be negative"),
    (-5, "must not be negative"),
    ("abc", "must be a number"),
    ("", "must be a number"),
    ("12,50", "must be a number"),
    ("NaN", "must be a finite number"),
    (float("nan"), "must be a finite number"),
    ("Infinity", "must be a finite number"),
    ("-Infinity", "must be a finite number"),
    (float("inf"), "must be a finite number"),
    (True, "must be a number"),
    (False, "must be a number"),
    (None, "is missing"),
    ([1], "must be a number"),
    ({"amount": "1"}, "must be a number"),
    ("1000000000.01", "beyond the limit"),
    ("1e12", "beyond the limit"),
])
def test_bad_amount_is_refused_with_its_field(where: str, set_value: Any, value: Any,
                                              problem: str) -> None:
    data = valid()
    set_value(data, value)
    message = parse_error(data)
    assert message.startswith(where + " ")
    if value is None:  # required amounts are missing; optional ones must still be numbers
        assert "is missing" in message or "must be a number" in message
    else:
        assert problem in message


@pytest.mark.parametrize(("value", "problem"), [
    (10**9, "must be between 0 and 100000"),
    (100_001, "must be between 0 and 100000"),
    (-1, "must be between 0 and 100000"),
    (1.5, "must be a whole number"),
    (2.0, "must be a whole number"),
    ("2", "must be a whole number"),
    (True, "must be a whole number"),
])
def test_absurd_quantity_is_refused(value: Any, problem: str) -> None:
    message = parse_error(broken(lambda d: d["line_items"][1].update(quantity=value)))
    assert message.startswith("order.line_items[1].quantity ")
    assert problem in message


@pytest.mark.parametrize(("value", "problem"), [
    (-1, "must be between 0 and 100000"),
    (1.5, "must be a whole number"),
])
def test_bad_refund_line_quantity_names_its_full_path(value: Any, problem: str) -> None:
    data = valid()
    data["refunds"][0]["lines"][0]["quantity"] = value
    message = parse_error(data)
    assert message.startswith("order.refunds[0].lines[0].quantity ")
    assert problem in message


def test_bad_refund_line_id_names_its_full_path() -> None:
    data = valid()
    data["refunds"][0]["lines"][0]["line_id"] = True
    assert parse_error(data).startswith("order.refunds[0].lines[0].line_id ")


@pytest.mark.parametrize("value", ["XYZ", "US", "usdollar", "", 840, None, ["USD"]])
def test_unknown_currency_is_refused(value: Any) -> None:
    message = parse_error(broken(lambda d: d.update(currency=value)))
    assert message.startswith("order.currency ")


@pytest.mark.parametrize("field", ["created_at", "updated_at"])
@pytest.mark.parametrize(("value", "problem"), [
    ("2026-01-05T12:00:00", "must include a UTC offset"),
    ("2026-01-05", "must include a UTC offset"),
    ("yesterday", "must be an ISO 8601 timestamp"),
    ("2026-13-05T12:00:00Z", "must be an ISO 8601 timestamp"),
    (1767614400, "must be an ISO 8601 timestamp"),
])
def test_bad_timestamps_are_refused(field: str, value: Any, problem: str) -> None:
    message = parse_error(broken(lambda d: d.update({field: value})))
    assert message.startswith(f"order.{field} ")
    assert problem in message


def test_naive_refund_timestamp_is_refused() -> None:
    data = valid()
    data["refunds"][0]["created_at"] = "2026-01-06T00:00:00"
    assert parse_error(data).startswith("order.refunds[0].created_at must include a UTC offset")


def test_discount_larger_than_the_line_price_is_refused() -> None:
    data = broken(lambda d: d["line_items"][0].update(total_discount="28.01"))
    assert parse_error(data) == "order.line_items[0].total_discount is larger than the line's price"
    # A discount of exactly the line's price is a free line, and fine.
    data["line_items"][0]["total_discount"] = "28.00"
    assert parse_order(data).line_items[0].net_amount == 0


@pytest.mark.parametrize(("change", "where"), [
    (lambda d: d.update(line_items={"0": {}}), "order.line_items must be a list"),
    (lambda d: d.update(line_items=[{"line_id": "1"}] * 1001), "order.line_items must be a list"),
    (lambda d: d.update(line_items=["x"]), "order.line_items[0] must be a JSON object"),
    (lambda d: d.update(refunds="r1"), "order.refunds must be a list"),
    (lambda d: d.update(refunds=[7]), "order.refunds[0] must be a JSON object"),
    (lambda d: d["refunds"][0].update(lines={}), "order.refunds[0].lines must be a list"),
    (lambda d: d["line_items"][0].update(collection_ids="tea"),
     "order.line_items[0].collection_ids must be a list"),
    (lambda d: d.update(customer="sam@example.com"), "customer must be a JSON object"),
    (lambda d: d.update(order_id=""), "order.order_id must be a non-empty id"),
    (lambda d: d.update(order_id=True), "order.order_id must be a non-empty id"),
    (lambda d: d.update(order_id="x" * 65), "order.order_id is longer than 64 characters"),
    (lambda d: d["customer"].update(email=["a@b.c"]), "customer.email must be text"),
    (lambda d: d.update(name=12), "order.name must be text"),
])
def test_malformed_structure_is_named(change: Callable[[dict[str, Any]], None],
                                      where: str) -> None:
    assert parse_error(broken(change)).startswith(where)


@pytest.mark.parametrize("field", ["paid", "fulfilled", "cancelled", "test"])
def test_non_boolean_flags_are_refused(field: str) -> None:
    """``"cancelled": "false"`` must not quietly become a cancellation (bool("false") is
    True)."""
    data = broken(lambda d: d.update({field: "false"}))
    assert parse_error(data).startswith(f"order.{field} ")


def test_non_boolean_gift_card_flag_is_refused() -> None:
    data = broken(lambda d: d["line_items"][0].update(is_gift_card="false"))
    assert parse_error(data).startswith("order.line_items[0].is_gift_card ")


@pytest.mark.parametrize("value", [5, "WELCOME", {"code": "X"}])
def test_discount_codes_must_be_a_list(value: Any) -> None:
    assert parse_error(broken(lambda d: d.update(discount_codes=value))).startswith(
        "order.discount_codes ")


def test_parse_does_not_mutate_its_input() -> None:
    data = valid()
    before = copy.deepcopy(data)
    parse_order(data)
    assert data == before


# --- decode_json ------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    b"", b"not json", b"{'single': 'quotes'}", b'{"order_id": "1"', b"\x80abc",
    b"\xff\xfe\x00", "caf\u00e9".encode("latin-1"),
])
def test_decode_json_refuses_non_json_bodies(body: bytes) -> None:
    with pytest.raises(PayloadError, match="body is not valid JSON"):
        decode_json(body)


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"total": ' + b"9" * 5000 + b"}"],
                         ids=["deep-nesting", "5000-digit-integer"])
def test_decode_json_refuses_pathological_bodies(body: bytes) -> None:
    """Deep nesting and huge integer literals raise RecursionError / ValueError inside
    json.loads; they are still just bodies we cannot use."""
    with pytest.raises(PayloadError, match="body is not valid JSON"):
        decode_json(body)


def test_decode_json_then_parse() -> None:
    body = json.dumps(valid()).encode()
    assert parse_order(decode_json(body)) == parse_order(valid())
    assert decode_json(b'{"a": [1, "2"]}') == {"a": [1, "2"]}


def test_timezone_is_kept_not_converted() -> None:
    data = broken(lambda d: d.update(created_at="2026-01-05T21:00:00+09:00"))
    parsed: Order = parse_order(data)
    assert parsed.created_at == datetime(2026, 1, 5, 12, tzinfo=UTC)
    assert parsed.created_at.tzinfo == timezone(timedelta(hours=9))
