"""Reading orders through the Admin GraphQL API: paged polling for reconciliation, and bulk
operations for history import.

The functions take any object with ``execute(query, variables) -> data`` (``AdminClient`` in
``integrations.shopify.admin``), so they run against a fake in tests and never touch HTTP here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from ..base import Order
from ..canonical import MAX_LINES
from ..errors import PayloadError
from .payloads import gid_tail, parse_graphql_order


class GraphQLExecutor(Protocol):
    def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one operation and return its ``data``; raise on GraphQL or transport errors."""
        ...


class BulkOperationError(Exception):
    """Shopify refused to start a bulk operation (``userErrors``), e.g. one is already running."""


# Everything ``parse_graphql_order`` reads, except the line items: page queries and bulk
# queries must spell that connection differently (``nodes`` with ``first`` vs ``edges``).
ORDER_FIELDS = """
      id
      name
      createdAt
      updatedAt
      currencyCode
      test
      cancelledAt
      displayFinancialStatus
      displayFulfillmentStatus
      taxesIncluded
      email
      customer { id email firstName lastName }
      totalPriceSet { shopMoney { amount } }
      totalShippingPriceSet { shopMoney { amount } }
      totalTaxSet { shopMoney { amount } }
      totalTipReceivedSet { shopMoney { amount } }
      discountCodes
      refunds { id createdAt totalRefundedSet { shopMoney { amount } } }
"""

LINE_ITEM_FIELDS = """
          id
          quantity
          title
          isGiftCard
          product { id }
          variant { id }
          originalUnitPriceSet { shopMoney { amount } }
          discountAllocations { allocatedAmountSet { shopMoney { amount } } }
          taxLines { priceSet { shopMoney { amount } } }
"""

# Shopify refuses any single query whose *requested* cost is over 1,000 points, and nested
# connections multiply (orders times lines). By Shopify's rules (object 1, connection 2) one
# order here costs about 16 + 11 per requested line: 4 orders of 18 lines come to about 860.
# Orders with more lines than requested are reported as errors rather than scored short;
# history import (bulk operations) has no such limit.
PAGE_SIZE = 4
PAGE_LINE_ITEMS = 18

ORDERS_PAGE_QUERY = (
    """
query LoyaltyOrdersPage($first: Int!, $after: String, $search: String, $lineItems: Int!) {
  orders(first: $first, after: $after, query: $search, sortKey: UPDATED_AT) {
    nodes {"""
    + ORDER_FIELDS
    + """      lineItems(first: $lineItems) {
        nodes {"""
    + LINE_ITEM_FIELDS
    + """        }
        pageInfo { hasNextPage }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""
)

# ``__ARGUMENTS__`` is replaced by ``bulk_orders_query``: braces are GraphQL syntax, so no
# str.format. Bulk queries take no ``first`` and must spell connections as edges/node.
BULK_ORDERS_QUERY_TEMPLATE = (
    """
{
  orders__ARGUMENTS__ {
    edges {
      node {"""
    + ORDER_FIELDS
    + """        lineItems {
          edges {
            node {"""
    + LINE_ITEM_FIELDS
    + """            }
          }
        }
      }
    }
  }
}
"""
)

# ``groupObjects: true``: from API 2026-01 the default is false, and ungrouped output may put a
# line item anywhere in the file, which ``orders_from_bulk_jsonl`` cannot stream.
BULK_RUN_MUTATION = """
mutation LoyaltyBulkOrders($query: String!) {
  bulkOperationRunQuery(query: $query, groupObjects: true) {
    bulkOperation { id status }
    userErrors { field message }
  }
}
"""

BULK_STATUS_QUERY = """
query LoyaltyBulkStatus($id: ID!) {
  node(id: $id) {
    ... on BulkOperation { id status errorCode objectCount url partialDataUrl }
  }
}
"""

FINISHED_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELED", "EXPIRED"})


@dataclass(frozen=True, slots=True)
class ParsedOrder:
    """One order read from Shopify: either ``order`` or ``error`` is set. ``order_id`` is known
    whenever the order's id could be read, so a failure can still be reported against it."""

    order_id: str | None
    order: Order | None
    error: str | None


@dataclass(frozen=True, slots=True)
class OrdersPage:
    orders: list[ParsedOrder]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class BulkStatus:
    status: str
    object_count: int
    url: str | None
    error_code: str | None
    partial_data_url: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES


def _search_time(moment: datetime, *, round_up: bool = False) -> str:
    """Shopify's search syntax takes whole seconds in UTC. Naive datetimes are taken as UTC
    (how the database hands them back)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if round_up and moment.microsecond:
        moment += timedelta(seconds=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PayloadError(f"{where} must be a JSON object")
    return value


def _order_id_of(node: Any) -> str | None:
    try:
        return gid_tail(node.get("id"), "order.id") if isinstance(node, Mapping) else None
    except PayloadError:
        return None


def parse_order_node(node: Any) -> ParsedOrder:
    """``parse_graphql_order`` that never raises: one bad order must not hide the others."""
    try:
        order = parse_graphql_order(node)
    except PayloadError as error:
        return ParsedOrder(_order_id_of(node), None, str(error))
    return ParsedOrder(order.order_id, order, None)


def fetch_orders_page(client: GraphQLExecutor, updated_since: datetime | None,
                      after: str | None, first: int = PAGE_SIZE, *,
                      line_items: int = PAGE_LINE_ITEMS) -> OrdersPage:
    """One page of orders, oldest change first, changed at or after ``updated_since``.

    ``>=`` rather than ``>``: search works in whole seconds, and an order changed later in the
    checkpoint's own second would otherwise never be seen; seeing one twice is harmless."""
    search = None if updated_since is None else f"updated_at:>='{_search_time(updated_since)}'"
    data = client.execute(ORDERS_PAGE_QUERY, {"first": first, "after": after, "search": search,
                                              "lineItems": line_items})
    connection = _mapping(_mapping(data, "data").get("orders"), "data.orders")
    nodes = connection.get("nodes")
    if not isinstance(nodes, list):
        raise PayloadError("data.orders.nodes must be a list")
    page_info = _mapping(connection.get("pageInfo"), "data.orders.pageInfo")
    cursor = page_info.get("endCursor") if page_info.get("hasNextPage") is True else None
    if cursor is not None and not isinstance(cursor, str):
        raise PayloadError("data.orders.pageInfo.endCursor must be text")
    return OrdersPage(orders=[parse_order_node(node) for node in nodes], next_cursor=cursor)


def bulk_orders_query(created_before: datetime | None = None) -> str:
    """The inner query for ``bulkOperationRunQuery``: every order, or those created before."""
    arguments = ""
    if created_before is not None:
        # Rounded up: an order in the boundary's second is better imported twice than never.
        search = f"created_at:<'{_search_time(created_before, round_up=True)}'"
        arguments = f"(query: {json.dumps(search)})"  # a JSON string is a valid GraphQL string
    return BULK_ORDERS_QUERY_TEMPLATE.replace("__ARGUMENTS__", arguments)


def start_bulk_orders(client: GraphQLExecutor, created_before: datetime | None = None) -> str:
    """Start a bulk export of orders; returns the bulk operation's gid."""
    data = client.execute(BULK_RUN_MUTATION, {"query": bulk_orders_query(created_before)})
    payload = _mapping(_mapping(data, "data").get("bulkOperationRunQuery"),
                       "data.bulkOperationRunQuery")
    errors = payload.get("userErrors") or []
    if errors:
        messages = "; ".join(str(e.get("message")) if isinstance(e, Mapping) else str(e)
                             for e in errors)
        raise BulkOperationError(f"Shopify refused the bulk operation: {messages}")
    operation = payload.get("bulkOperation")
    if not isinstance(operation, Mapping) or not isinstance(operation.get("id"), str):
        raise BulkOperationError("Shopify started no bulk operation and gave no reason")
    return operation["id"]


def bulk_operation_status(client: GraphQLExecutor, operation_id: str) -> BulkStatus:
    data = client.execute(BULK_STATUS_QUERY, {"id": operation_id})
    node = _mapping(data, "data").get("node")
    if not isinstance(node, Mapping) or not isinstance(node.get("status"), str):
        raise BulkOperationError(f"no bulk operation {operation_id} on this shop")
    count = node.get("objectCount")  # UnsignedInt64: a JSON string
    try:
        object_count = int(count) if count is not None else 0
    except (TypeError, ValueError) as error:
        raise PayloadError(f"node.objectCount must be a whole number, got {count!r}") from error
    return BulkStatus(status=node["status"], object_count=object_count, url=node.get("url"),
                      error_code=node.get("errorCode"),
                      partial_data_url=node.get("partialDataUrl"))


@dataclass(slots=True)
class _Group:
    """An order line of the JSONL and the line items gathered under it so far."""

    gid: str | None
    node: dict[str, Any] | None
    error: str | None = None
    lines: list[Any] = field(default_factory=list)

    def fail(self, reason: str) -> None:
        self.error = self.error or reason

    def result(self) -> ParsedOrder:
        if self.node is None or self.error is not None:
            order_id = None
            if self.gid is not None:
                order_id = _order_id_of({"id": self.gid})
            return ParsedOrder(order_id, None, self.error)
        return parse_order_node({**self.node, "lineItems": {"nodes": self.lines}})


def _decode(raw: str | bytes, number: int) -> dict[str, Any] | str:
    """The JSON object on a line, or the reason it has none."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        record = json.loads(text)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        return f"line {number} is not JSON: {type(error).__name__}: {str(error)[:200]}"
    if not isinstance(record, dict):
        return f"line {number} is not a JSON object"
    return record


def orders_from_bulk_jsonl(lines: Iterable[str | bytes]) -> Iterator[ParsedOrder]:
    """Orders from a bulk operation's JSONL, streamed: memory holds one order at a time.

    Grouped output puts each order's line items (``__parentId``) right after the order's line,
    so an order is complete when the next order starts. A line that cannot be read yields an
    error of its own and the stream goes on. What the lost line was is judged from the next one:
    before the current order's next item or before a new order, it may have been one of the
    current order's items, so that order fails too rather than being scored without it; before
    another order's items, it was that order's own line, which then fails by its id."""
    group: _Group | None = None
    doubt: str | None = None  # an unreadable line whose owner the next line will tell
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        record = _decode(raw, number)
        if isinstance(record, str):
            yield ParsedOrder(None, None, record)
            doubt = doubt or record
            continue
        parent = record.get("__parentId")
        if doubt is not None and group is not None and parent in (None, group.gid):
            group.fail(f"{doubt}; it may have been one of this order's line items")
        doubt = None
        if parent is None:
            if group is not None:
                yield group.result()
            group = _Group(gid=record.get("id") if isinstance(record.get("id"), str) else None,
                           node=record)
            continue
        if group is None or group.gid != parent:
            # Its order's line was unreadable, or came earlier and was already yielded (the
            # output was not grouped): fail that order by id rather than attach items elsewhere.
            if group is not None:
                yield group.result()
            group = _Group(gid=parent if isinstance(parent, str) else None, node=None,
                           error=f"line {number}: line items of {parent!r} did not come right "
                                 f"after the order's own line")
        if len(group.lines) <= MAX_LINES:
            # Up to one past the limit is kept, so that the parser refuses an oversized order
            # instead of scoring it with lines silently dropped, and memory stays bounded.
            group.lines.append(record)
    if group is not None:
        if doubt is not None:
            group.fail(f"{doubt}; it may have been one of this order's line items")
        yield group.result()
