"""Admin GraphQL order nodes, paged polling and bulk JSONL (integrations/shopify/order_queries.py
and ``parse_graphql_order`` in payloads.py), against a fake executor: no HTTP."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from integrations.base import Customer, LineItem, Refund
from integrations.errors import PayloadError
from integrations.shopify import order_queries as oq
from integrations.shopify.order_queries import (
    BULK_ORDERS_QUERY_TEMPLATE,
    BULK_RUN_MUTATION,
    BULK_STATUS_QUERY,
    ORDER_FIELDS,
    ORDERS_PAGE_QUERY,
    BulkOperationError,
    ParsedOrder,
    bulk_operation_status,
    bulk_orders_query,
    fetch_orders_page,
    orders_from_bulk_jsonl,
    start_bulk_orders,
)
from integrations.shopify.payloads import parse_graphql_order

D = Decimal


def bag(amount: str) -> dict[str, Any]:
    return {"shopMoney": {"amount": amount}}


def line_node(line_id: int, price: str = "20.00", quantity: int = 1, discount: str | None = None,
              tax: str | None = None) -> dict[str, Any]:
    return {
        "id": f"gid://shopify/LineItem/{line_id}",
        "quantity": quantity,
        "title": f"Tea {line_id}",
        "isGiftCard": False,
        "product": {"id": "gid://shopify/Product/5"},
        "variant": {"id": f"gid://shopify/ProductVariant/{line_id * 10}"},
        "originalUnitPriceSet": bag(price),
        "discountAllocations": [] if discount is None else [{"allocatedAmountSet": bag(discount)}],
        "taxLines": [] if tax is None else [{"priceSet": bag(tax)}],
    }


def order_node(number: int = 1, lines: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An Order node shaped as ORDER_FIELDS selects it, with its lines as ``lineItems.nodes``."""
    return {
        "id": f"gid://shopify/Order/{number}",
        "name": f"#{1000 + number}",
        "createdAt": "2026-01-05T12:00:00Z",
        "updatedAt": "2026-01-06T08:30:00+01:00",
        "currencyCode": "EUR",
        "test": False,
        "cancelledAt": None,
        "displayFinancialStatus": "PAID",
        "displayFulfillmentStatus": "UNFULFILLED",
        "taxesIncluded": True,
        "email": "sam@example.com",
        "customer": {"id": "gid://shopify/Customer/42", "email": "old@example.com",
                     "firstName": "Sam", "lastName": "Shopper"},
        "totalPriceSet": bag("52.50"),
        "totalShippingPriceSet": bag("4.90"),
        "totalTaxSet": bag("8.38"),
        "totalTipReceivedSet": bag("1.00"),
        "discountCodes": ["WELCOME"],
        "refunds": [{"id": "gid://shopify/Refund/7", "createdAt": "2026-01-07T10:00:00Z",
                     "totalRefundedSet": bag("10.00")}],
        "lineItems": {"nodes": lines if lines is not None else [
            line_node(11, "20.00", 2, discount="3.00", tax="5.70"),
            line_node(12, "9.60", 1, tax="1.60"),
        ]},
    }


def error_of(node: Any) -> str:
    with pytest.raises(PayloadError) as caught:
        parse_graphql_order(node)
    return str(caught.value)


# ---- GraphQL order nodes -----------------------------------------------------------------------

def test_graphql_order_node() -> None:
    order = parse_graphql_order(order_node())

    assert order.order_id == "1"
    assert order.name == "#1001"
    assert order.created_at == datetime(2026, 1, 5, 12, tzinfo=UTC)
    assert order.updated_at == datetime(2026, 1, 6, 7, 30, tzinfo=UTC)
    assert order.currency == "EUR"
    assert order.customer == Customer("42", "sam@example.com", "Sam", "Shopper")
    assert order.line_items == (
        LineItem(line_id="11", quantity=2, unit_price=D("20.00"), total_discount=D("3.00"),
                 included_tax=D("5.70"), product_id="5", variant_id="110", title="Tea 11"),
        LineItem(line_id="12", quantity=1, unit_price=D("9.60"), total_discount=D("0"),
                 included_tax=D("1.60"), product_id="5", variant_id="120", title="Tea 12"),
    )
    assert order.lines_subtotal == D("31.30") + D("8.00")
    assert (order.shipping, order.taxes, order.tips, order.total) == (
        D("4.90"), D("8.38"), D("1.00"), D("52.50"))
    assert (order.paid, order.fulfilled, order.cancelled, order.test) == (
        True, False, False, False)
    assert order.discount_codes == ("WELCOME",)
    assert order.refunds == (Refund(refund_id="7", order_id="1",
                                    created_at=datetime(2026, 1, 7, 10, tzinfo=UTC),
                                    amount=D("10.00")),)


@pytest.mark.parametrize(("status", "paid"), [
    ("PAID", True), ("PARTIALLY_REFUNDED", True), ("REFUNDED", True), ("PENDING", False),
    ("PARTIALLY_PAID", False), ("AUTHORIZED", False), ("VOIDED", False), (None, False)])
def test_graphql_financial_status(status: str | None, paid: bool) -> None:
    assert parse_graphql_order({**order_node(), "displayFinancialStatus": status}).paid is paid


def test_graphql_flags() -> None:
    node = {**order_node(), "displayFulfillmentStatus": "FULFILLED",
            "cancelledAt": "2026-01-08T00:00:00Z", "test": True}
    order = parse_graphql_order(node)
    assert (order.fulfilled, order.cancelled, order.test) == (True, True, True)


def test_graphql_tax_added_on_top_is_not_taken_out_of_lines() -> None:
    order = parse_graphql_order({**order_node(), "taxesIncluded": False})
    assert [line.included_tax for line in order.line_items] == [0, 0]
    assert order.lines_subtotal == D("37.00") + D("9.60")


def test_graphql_guest_and_deleted_products() -> None:
    lines = [line_node(11)]
    lines[0].update(product=None, variant=None)
    node = {**order_node(lines=lines), "customer": None, "email": "guest@example.com"}
    order = parse_graphql_order(node)
    assert order.customer == Customer(None, "guest@example.com")
    assert (order.line_items[0].product_id, order.line_items[0].variant_id) == (None, None)


def test_graphql_email_falls_back_to_the_customer() -> None:
    assert parse_graphql_order({**order_node(), "email": None}).customer.email == (
        "old@example.com")


def test_graphql_order_with_lines_beyond_the_page_is_refused() -> None:
    node = order_node()
    node["lineItems"]["pageInfo"] = {"hasNextPage": True}
    assert error_of(node) == "order.lineItems has more lines than this query fetched"
    node["lineItems"]["pageInfo"] = {"hasNextPage": False}
    assert len(parse_graphql_order(node).line_items) == 2


def _node_with(change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    node = order_node()
    change(node)
    return node


@pytest.mark.parametrize(("change", "message"), [
    (lambda n: n.pop("id"), "order.id is missing"),
    (lambda n: n.update(id=123), "order.id must be a Shopify global id"),
    (lambda n: n.update(id="gid://shopify/Order/"), "order.id must be a non-empty id"),
    (lambda n: n.pop("createdAt"), "order.createdAt is missing"),
    (lambda n: n.update(updatedAt="2026-13-01T00:00:00Z"), "order.updatedAt must be an ISO"),
    (lambda n: n.pop("currencyCode"), "order.currencyCode is missing"),
    (lambda n: n.pop("totalPriceSet"), "order.totalPriceSet is missing"),
    (lambda n: n.update(totalTaxSet={"presentmentMoney": {"amount": "1"}}),
     "order.totalTaxSet.shopMoney must be a JSON object"),
    (lambda n: n.pop("lineItems"), "order.lineItems is missing"),
    (lambda n: n.update(lineItems={"edges": []}), "order.lineItems.nodes is missing"),
    (lambda n: n["lineItems"]["nodes"][1]["originalUnitPriceSet"]["shopMoney"].update(
        amount="1,5"), "order.lineItems.nodes[1].originalUnitPriceSet.shopMoney.amount must be a "
                       "number"),
    (lambda n: n["lineItems"]["nodes"][0]["discountAllocations"][0].update(
        allocatedAmountSet=None),
     "order.lineItems.nodes[0].discountAllocations[0].allocatedAmountSet is missing"),
    (lambda n: n["lineItems"]["nodes"][0].update(quantity=None),
     "order.lineItems.nodes[0].quantity is missing"),
    (lambda n: n["lineItems"]["nodes"][0].update(product={"title": "x"}),
     "order.lineItems.nodes[0].product.id is missing"),
    (lambda n: n["lineItems"]["nodes"][0].update(isGiftCard="no"),
     "order.lineItems.nodes[0].isGiftCard must be true or false"),
    (lambda n: n["lineItems"]["nodes"][0]["taxLines"][0].update(priceSet=bag("40.01")),
     "order.lineItems.nodes[0] discounts and included taxes are larger"),
    (lambda n: n.update(discountCodes="WELCOME"), "order.discountCodes must be a list of strings"),
    (lambda n: n["refunds"][0].pop("createdAt"), "order.refunds[0].createdAt is missing"),
    (lambda n: n.update(customer={"id": 42}), "order.customer.id must be a Shopify global id"),
])
def test_broken_graphql_nodes_name_the_field(change: Callable[[dict[str, Any]], Any],
                                             message: str) -> None:
    assert message in error_of(_node_with(change))


# ---- the query text ----------------------------------------------------------------------------

def test_queries_are_valid_graphql_and_select_what_the_parser_reads() -> None:
    import graphql

    for text in (ORDERS_PAGE_QUERY, bulk_orders_query(), bulk_orders_query(datetime.now(UTC)),
                 BULK_RUN_MUTATION, BULK_STATUS_QUERY):
        graphql.parse(text)
    for name in order_node():
        if name != "lineItems":
            assert name in ORDER_FIELDS
    assert "lineItems" not in ORDER_FIELDS
    assert "sortKey: UPDATED_AT" in ORDERS_PAGE_QUERY
    assert "pageInfo { hasNextPage endCursor }" in ORDERS_PAGE_QUERY


def test_bulk_query_uses_edges_and_no_page_sizes() -> None:
    text = bulk_orders_query()
    assert "__ARGUMENTS__" in BULK_ORDERS_QUERY_TEMPLATE
    assert "__ARGUMENTS__" not in text
    assert "first:" not in text and "nodes" not in text
    assert text.count("edges") == 2
    assert "orders {" in text
    cutoff = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=2)))
    assert "orders(query: \"created_at:<'2026-03-01T07:30:00Z'\") {" in bulk_orders_query(cutoff)
    # A fractional second rounds up: an order in that second is imported rather than skipped.
    late = datetime(2026, 3, 1, 7, 30, 0, 500, tzinfo=UTC)
    assert "created_at:<'2026-03-01T07:30:01Z'" in bulk_orders_query(late)


# ---- a fake executor ---------------------------------------------------------------------------

class FakeExecutor:
    """Answers each call with the next prepared ``data`` after checking what was asked."""

    def __init__(self, *answers: tuple[Callable[[str, dict[str, Any]], None], dict[str, Any]]):
        self.answers = list(answers)
        self.calls: list[tuple[str, dict[str, Any] | None]] = []

    def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        self.calls.append((query, variables))
        check, data = self.answers.pop(0)
        check(query, variables or {})
        return data


def page(nodes: list[Any], *, more: bool, cursor: str | None = "c2") -> dict[str, Any]:
    return {"orders": {"nodes": nodes, "pageInfo": {"hasNextPage": more, "endCursor": cursor}}}


def test_fetch_orders_page_asks_for_changes_since_the_checkpoint() -> None:
    def check(query: str, variables: dict[str, Any]) -> None:
        assert query == ORDERS_PAGE_QUERY
        assert variables == {"first": 4, "after": "c1", "lineItems": 18,
                             "search": "updated_at:>='2026-01-01T00:00:00Z'"}

    broken = order_node(2)
    del broken["totalPriceSet"]
    client = FakeExecutor((check, page([order_node(1), broken, {"id": 9}], more=True)))

    result = fetch_orders_page(client, datetime(2026, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
                               "c1")

    assert result.next_cursor == "c2"
    assert [(p.order_id, p.error) for p in result.orders] == [
        ("1", None), ("2", "order.totalPriceSet is missing"),
        (None, "order.id must be a Shopify global id, got 9")]
    assert result.orders[0].order == parse_graphql_order(order_node(1))
    assert result.orders[1].order is None


def test_fetch_orders_page_without_checkpoint_or_cursor() -> None:
    def check(query: str, variables: dict[str, Any]) -> None:
        assert variables == {"first": 2, "after": None, "search": None, "lineItems": 40}

    client = FakeExecutor((check, page([], more=False, cursor=None)))
    result = fetch_orders_page(client, None, None, first=2, line_items=40)
    assert result.orders == []
    assert result.next_cursor is None


def test_fetch_orders_page_takes_naive_times_as_utc_and_stops_on_the_last_page() -> None:
    def check(query: str, variables: dict[str, Any]) -> None:
        assert variables["search"] == "updated_at:>='2026-02-03T04:05:06Z'"

    client = FakeExecutor((check, page([order_node(3)], more=False, cursor="ignored")))
    result = fetch_orders_page(client, datetime(2026, 2, 3, 4, 5, 6, 999), "c9")
    assert result.next_cursor is None
    assert [p.order_id for p in result.orders] == ["3"]


@pytest.mark.parametrize("data", [{}, {"orders": None}, {"orders": {"nodes": {}}},
                                  {"orders": {"nodes": []}}])
def test_fetch_orders_page_refuses_a_garbled_answer(data: dict[str, Any]) -> None:
    client = FakeExecutor((lambda q, v: None, data))
    with pytest.raises(PayloadError):
        fetch_orders_page(client, None, None)


def test_start_bulk_orders_returns_the_operation_id() -> None:
    def check(query: str, variables: dict[str, Any]) -> None:
        assert query == BULK_RUN_MUTATION
        assert "groupObjects: true" in query
        assert variables == {"query": bulk_orders_query(datetime(2026, 1, 1, tzinfo=UTC))}

    answer = {"bulkOperationRunQuery": {
        "bulkOperation": {"id": "gid://shopify/BulkOperation/77", "status": "CREATED"},
        "userErrors": []}}
    client = FakeExecutor((check, answer))
    assert start_bulk_orders(client, datetime(2026, 1, 1, tzinfo=UTC)) == (
        "gid://shopify/BulkOperation/77")


def test_start_bulk_orders_raises_on_user_errors() -> None:
    answer = {"bulkOperationRunQuery": {"bulkOperation": None, "userErrors": [
        {"field": None, "message": "A bulk query operation for this app and shop is already "
                                   "in progress"}]}}
    client = FakeExecutor((lambda q, v: None, answer))
    with pytest.raises(BulkOperationError, match="already in progress"):
        start_bulk_orders(client)
    assert client.calls[0][1] == {"query": bulk_orders_query()}


def test_start_bulk_orders_without_an_operation() -> None:
    client = FakeExecutor((lambda q, v: None,
                           {"bulkOperationRunQuery": {"bulkOperation": None, "userErrors": []}}))
    with pytest.raises(BulkOperationError):
        start_bulk_orders(client)


@pytest.mark.parametrize(("node", "expected", "finished"), [
    ({"id": "gid://shopify/BulkOperation/77", "status": "COMPLETED", "errorCode": None,
      "objectCount": "12", "url": "https://storage.example/bulk.jsonl", "partialDataUrl": None},
     oq.BulkStatus("COMPLETED", 12, "https://storage.example/bulk.jsonl", None), True),
    ({"id": "gid://shopify/BulkOperation/77", "status": "RUNNING", "errorCode": None,
      "objectCount": "3", "url": None, "partialDataUrl": None},
     oq.BulkStatus("RUNNING", 3, None, None), False),
    ({"id": "gid://shopify/BulkOperation/77", "status": "FAILED", "errorCode": "TIMEOUT",
      "objectCount": "0", "url": None, "partialDataUrl": "https://storage.example/part.jsonl"},
     oq.BulkStatus("FAILED", 0, None, "TIMEOUT", "https://storage.example/part.jsonl"), True),
    ({"id": "gid://shopify/BulkOperation/77", "status": "CANCELED", "objectCount": None},
     oq.BulkStatus("CANCELED", 0, None, None), True),
])
def test_bulk_operation_status(node: dict[str, Any], expected: oq.BulkStatus,
                               finished: bool) -> None:
    def check(query: str, variables: dict[str, Any]) -> None:
        assert query == BULK_STATUS_QUERY
        assert variables == {"id": "gid://shopify/BulkOperation/77"}

    status = bulk_operation_status(FakeExecutor((check, {"node": node})),
                                   "gid://shopify/BulkOperation/77")
    assert status == expected
    assert status.finished is finished


def test_bulk_operation_status_of_an_unknown_operation() -> None:
    with pytest.raises(BulkOperationError):
        bulk_operation_status(FakeExecutor((lambda q, v: None, {"node": None})), "gid://x/1")


# ---- bulk JSONL --------------------------------------------------------------------------------

def jsonl(node: dict[str, Any]) -> list[str]:
    """An order node as a grouped bulk export writes it: the order, then each item after it."""
    order = copy.deepcopy(node)
    items = order.pop("lineItems")["nodes"]
    return [json.dumps(order)] + [json.dumps({**item, "__parentId": order["id"]})
                                  for item in items]


THREE = [order_node(1), order_node(2, [line_node(21, "5.00", 3)]),
         order_node(3, [line_node(31), line_node(32), line_node(33, "1.50")])]


def test_bulk_jsonl_groups_line_items_under_their_orders() -> None:
    lines = [text for node in THREE for text in jsonl(node)]
    results = list(orders_from_bulk_jsonl(lines))

    assert [(r.order_id, r.error) for r in results] == [("1", None), ("2", None), ("3", None)]
    assert [r.order for r in results] == [parse_graphql_order(node) for node in THREE]
    assert [len(r.order.line_items) for r in results if r.order] == [2, 1, 3]


def test_bulk_jsonl_streams_one_order_at_a_time_and_flushes_the_last() -> None:
    lines = [text for node in THREE for text in jsonl(node)]
    consumed: list[int] = []

    def source() -> Iterator[str]:
        for index, text in enumerate(lines):
            consumed.append(index)
            yield text

    stream = orders_from_bulk_jsonl(source())
    first = next(stream)
    assert first.order_id == "1"
    assert len(consumed) == 4  # order 1, its two items, and order 2's line that closed it
    second = next(stream)
    assert second.order_id == "2"
    assert len(consumed) == 6
    last = next(stream)  # nothing follows order 3: the end of input flushes it
    assert last.order_id == "3" and last.order is not None
    assert len(last.order.line_items) == 3
    assert list(stream) == []


def test_bulk_jsonl_accepts_bytes_and_blank_lines() -> None:
    lines = [text.encode() + b"\n" for text in jsonl(THREE[1])] + [b"\n", b""]
    assert [r.order for r in orders_from_bulk_jsonl(lines)] == [parse_graphql_order(THREE[1])]


def test_an_unreadable_order_line_fails_that_order_by_id_and_the_stream_goes_on() -> None:
    one, two, three = (jsonl(node) for node in THREE)
    two[0] = '{"id": "gid://shopify/Order/2", "name": '  # cut short
    results = list(orders_from_bulk_jsonl(one + two + three))

    # The unreadable line is reported at once, before the order it interrupted is closed.
    assert [r.order_id for r in results] == [None, "1", "2", "3"]
    assert results[0].error is not None and results[0].error.startswith("line 4 is not JSON")
    assert results[1].order == parse_graphql_order(THREE[0])  # complete: the bad line was not its
    assert results[2].order is None and "did not come right after" in (results[2].error or "")
    assert results[3].order == parse_graphql_order(THREE[2])


def test_an_unreadable_line_among_an_orders_items_fails_that_order() -> None:
    one, two, three = (jsonl(node) for node in THREE)
    three[2] = b"\xff\xfe not utf-8"
    results = list(orders_from_bulk_jsonl([*one, *two, *three]))

    assert [(r.order_id, r.order is not None) for r in results] == [
        ("1", True), ("2", True), (None, False), ("3", False)]
    assert "line 8 is not JSON: UnicodeDecodeError" in (results[2].error or "")
    assert "may have been one of this order's line items" in (results[3].error or "")


def test_an_unreadable_last_line_fails_the_last_order() -> None:
    lines = [text for node in THREE for text in jsonl(node)] + ["not json at all"]
    results = list(orders_from_bulk_jsonl(lines))
    assert [(r.order_id, r.order is not None) for r in results] == [
        ("1", True), ("2", True), (None, False), ("3", False)]


def test_an_order_that_does_not_parse_and_non_object_lines_are_reported() -> None:
    bad = order_node(2)
    bad["currencyCode"] = "MONOPOLY"
    lines = [*jsonl(THREE[0]), "[1, 2, 3]", *jsonl(bad), *jsonl(THREE[2])]
    results = list(orders_from_bulk_jsonl(lines))

    assert [(r.order_id, r.error is None) for r in results] == [
        (None, False), ("1", False), ("2", False), ("3", True)]
    assert results[0].error == "line 4 is not a JSON object"
    # The unreadable line came before a new order, so it may have been order 1's last item.
    assert "may have been one of this order's line items" in (results[1].error or "")
    assert "order.currencyCode is not a known ISO 4217" in (results[2].error or "")


def test_items_arriving_after_their_order_was_closed_fail_that_order() -> None:
    # Ungrouped output interleaves items of different orders; they must never be attached to
    # whichever order happens to be open.
    one, two = jsonl(THREE[0]), jsonl(THREE[1])
    lines = [one[0], one[1], two[0], two[1], one[2]]
    results = list(orders_from_bulk_jsonl(lines))
    assert [(r.order_id, r.order is not None) for r in results] == [
        ("1", True), ("2", True), ("1", False)]
    assert "did not come right after the order's own line" in (results[2].error or "")


def test_an_order_with_too_many_items_is_refused_not_truncated() -> None:
    node = order_node(1, [line_node(i, "1.00") for i in range(1, 1_003)])
    results = list(orders_from_bulk_jsonl(jsonl(node)))
    assert len(results) == 1
    assert results[0].order is None
    assert "order.lineItems.nodes must be a list of at most 1000" in (results[0].error or "")


def test_parsed_order_is_what_the_page_and_the_bulk_reader_share() -> None:
    parsed = oq.parse_order_node(order_node(5))
    assert isinstance(parsed, ParsedOrder)
    assert parsed.order_id == "5" and parsed.error is None
