"""Shopify JSON (REST and webhook bodies, Admin GraphQL order nodes) into ``integrations.base``.

Every amount comes from the shop's currency (``shop_money`` / ``shopMoney``): the presentment
currency is what the shopper saw, but points and refunds are counted in the shop's currency.
Parsing is as strict as ``integrations.canonical``: each problem raises ``PayloadError`` with the
path of the field, and unknown fields are ignored (Shopify adds fields with every API version).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from .. import canonical
from ..base import Customer, LineItem, Order, Refund, RefundLine
from ..errors import PayloadError

PAID_STATUSES = frozenset({"paid", "partially_refunded", "refunded"})
GRAPHQL_PAID_STATUSES = frozenset({"PAID", "PARTIALLY_REFUNDED", "REFUNDED"})
ZERO = Decimal("0.0000")  # the same exponent canonical.money gives every amount


# ---- shared helpers ------------------------------------------------------------------------

def _object(data: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise PayloadError(f"{where} must be a JSON object")
    return data


def _required(data: Mapping[str, Any], name: str, where: str) -> Any:
    if data.get(name) is None:
        raise PayloadError(f"{where}.{name} is missing")
    return data[name]


def _list(data: Mapping[str, Any], name: str, where: str, *, required: bool = False,
          limit: int = canonical.MAX_LINES) -> list[Any]:
    value = _required(data, name, where) if required else data.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > limit:
        raise PayloadError(f"{where}.{name} must be a list of at most {limit} entries")
    return value


def _total(amounts: list[Decimal], where: str) -> Decimal:
    # Each part is within MAX_AMOUNT; their sum must be too, or a thousand parts could smuggle in
    # an amount the engine's columns cannot hold.
    total = sum(amounts, ZERO)
    if total > canonical.MAX_AMOUNT:
        raise PayloadError(f"{where} add up to {total}, beyond the limit of {canonical.MAX_AMOUNT}")
    return total


def _text(value: Any, where: str, limit: int) -> str | None:
    """Display text, cut to ``limit`` rather than refused: a long product title or name must
    not cost the shopper their points."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{where} must be text, got {value!r}")
    return value[:limit]


def _is_one_of(value: Any, choices: frozenset[str]) -> bool:
    return isinstance(value, str) and value in choices  # a list or object here is not hashable


def _optional_id(value: Any, where: str) -> str | None:
    return None if value is None else canonical.identifier(value, where)


def _line_total_check(line: LineItem, where: str) -> LineItem:
    if line.net_amount < 0:
        raise PayloadError(f"{where} discounts and included taxes are larger than the line's "
                           f"price")
    return line


def _check_subtotal(order: Order) -> Order:
    if order.lines_subtotal > canonical.MAX_AMOUNT:
        raise PayloadError(f"order.line_items add up to {order.lines_subtotal}, beyond the limit "
                           f"of {canonical.MAX_AMOUNT}")
    return order


# ---- REST / webhook bodies -----------------------------------------------------------------

def _shop_money(data: Mapping[str, Any], name: str, where: str, *, required: bool = False,
                fallback: bool = True, allow_negative: bool = False) -> Decimal:
    """``name_set.shop_money.amount``; the plain ``name`` only when the ``_set`` is absent
    (older REST payloads), because the plain field is in the presentment currency on newer
    ones. ``fallback=False`` for fields whose plain form is a JSON float."""
    money_set = data.get(f"{name}_set")
    if money_set is not None:
        path = f"{where}.{name}_set"
        shop_money = _object(_object(money_set, path).get("shop_money"), f"{path}.shop_money")
        return canonical.money(shop_money.get("amount"), f"{path}.shop_money.amount",
                               allow_negative=allow_negative)
    if fallback and data.get(name) is not None:
        return canonical.money(data[name], f"{where}.{name}", allow_negative=allow_negative)
    if required:
        raise PayloadError(f"{where}.{name}_set is missing")
    return ZERO


def _rest_line(data: Any, where: str, taxes_included: bool) -> LineItem:
    line = _object(data, where)
    allocations = _list(line, "discount_allocations", where)
    if allocations:
        discount = _total([_shop_money(_object(a, f"{where}.discount_allocations[{i}]"), "amount",
                                       f"{where}.discount_allocations[{i}]", required=True)
                           for i, a in enumerate(allocations)],
                          f"{where}.discount_allocations")
    else:
        discount = _shop_money(line, "total_discount", where)
    included_tax = ZERO
    if taxes_included:
        # Only in tax-inclusive shops is the tax inside ``price``; elsewhere it is added on top
        # and never part of the line's amount.
        tax_lines = _list(line, "tax_lines", where)
        included_tax = _total([_shop_money(_object(t, f"{where}.tax_lines[{i}]"), "price",
                                           f"{where}.tax_lines[{i}]", required=True)
                               for i, t in enumerate(tax_lines)], f"{where}.tax_lines")
    return _line_total_check(LineItem(
        line_id=canonical.identifier(_required(line, "id", where), f"{where}.id"),
        quantity=canonical.quantity(_required(line, "quantity", where), f"{where}.quantity"),
        unit_price=_shop_money(line, "price", where, required=True),
        total_discount=discount,
        included_tax=included_tax,
        product_id=_optional_id(line.get("product_id"), f"{where}.product_id"),
        variant_id=_optional_id(line.get("variant_id"), f"{where}.variant_id"),
        title=_text(line.get("title"), f"{where}.title", 255) or "",
        is_gift_card=canonical.flag(line.get("gift_card"), f"{where}.gift_card"),
    ), where)


def _order_customer(order: Mapping[str, Any]) -> Customer:
    raw = order.get("customer")
    customer = {} if raw is None else _object(raw, "order.customer")
    # The order's own email is what the shopper typed at checkout, so it wins over the profile's.
    email = None
    for value, where in ((order.get("email"), "order.email"),
                         (order.get("contact_email"), "order.contact_email"),
                         (customer.get("email"), "order.customer.email")):
        email = canonical.optional_text(value, where)
        if email:
            break
    return Customer(
        customer_id=_optional_id(customer.get("id"), "order.customer.id"),
        email=email,
        first_name=_text(customer.get("first_name"), "order.customer.first_name", 120),
        last_name=_text(customer.get("last_name"), "order.customer.last_name", 120),
    )


def _discount_codes(order: Mapping[str, Any]) -> tuple[str, ...]:
    codes = []
    for i, entry in enumerate(_list(order, "discount_codes", "order")):
        codes.append(_required(_object(entry, f"order.discount_codes[{i}]"), "code",
                               f"order.discount_codes[{i}]"))
    return canonical.string_list(codes, "order.discount_codes")


def parse_order(data: Any) -> Order:
    """An ``Order`` from a Shopify REST order or an ``orders/*`` webhook body."""
    order = _object(data, "order")
    order_id = canonical.identifier(_required(order, "id", "order"), "order.id")
    raw_lines = _list(order, "line_items", "order", required=True)
    taxes_included = canonical.flag(order.get("taxes_included"), "order.taxes_included")
    return _check_subtotal(Order(
        order_id=order_id,
        name=_text(order.get("name"), "order.name", 64) or "",
        created_at=canonical.timestamp(_required(order, "created_at", "order"),
                                       "order.created_at"),
        updated_at=canonical.timestamp(_required(order, "updated_at", "order"),
                                       "order.updated_at"),
        currency=canonical.currency(_required(order, "currency", "order"), "order.currency"),
        customer=_order_customer(order),
        line_items=tuple(_rest_line(line, f"order.line_items[{i}]", taxes_included)
                         for i, line in enumerate(raw_lines)),
        shipping=_shop_money(order, "total_shipping_price", "order"),
        taxes=_shop_money(order, "total_tax", "order"),
        tips=_shop_money(order, "total_tip_received", "order"),
        total=_shop_money(order, "total_price", "order", required=True),
        paid=_is_one_of(order.get("financial_status"), PAID_STATUSES),
        fulfilled=order.get("fulfillment_status") == "fulfilled",
        cancelled=order.get("cancelled_at") is not None,
        test=canonical.flag(order.get("test"), "order.test"),
        discount_codes=_discount_codes(order),
        refunds=tuple(parse_refund(refund, order_id=order_id, where=f"order.refunds[{i}]")
                      for i, refund in enumerate(_list(order, "refunds", "order"))),
    ))


def parse_refund(data: Any, *, order_id: str | None = None, where: str = "refund") -> Refund:
    """A ``Refund`` from a ``refunds/create`` body or an entry of an order's ``refunds``.

    ``order_id`` is given for refunds inside an order: the enclosing order is authoritative
    (Shopify's own ``order_id`` there has been seen rounded through a JavaScript number)."""
    refund = _object(data, where)
    if order_id is None:
        order_id = canonical.identifier(_required(refund, "order_id", where), f"{where}.order_id")
    lines = []
    for i, item in enumerate(_list(refund, "refund_line_items", where)):
        at = f"{where}.refund_line_items[{i}]"
        item = _object(item, at)
        lines.append(RefundLine(
            line_id=canonical.identifier(_required(item, "line_item_id", at),
                                         f"{at}.line_item_id"),
            quantity=canonical.quantity(_required(item, "quantity", at), f"{at}.quantity"),
            # The plain ``subtotal`` is a JSON float: only the string in ``subtotal_set`` is exact.
            subtotal=_shop_money(item, "subtotal", at, required=True, fallback=False),
        ))
    shipping = [_shop_money(_object(line, f"{where}.refund_shipping_lines[{i}]"),
                            "subtotal_amount", f"{where}.refund_shipping_lines[{i}]",
                            required=True)
                for i, line in enumerate(_list(refund, "refund_shipping_lines", where))]
    for i, adjustment in enumerate(_list(refund, "order_adjustments", where)):
        at = f"{where}.order_adjustments[{i}]"
        if _object(adjustment, at).get("kind") == "shipping_refund":
            # Adjustments are signed from the order's point of view (a refund is negative).
            shipping.append(abs(_shop_money(adjustment, "amount", at, required=True,
                                            allow_negative=True)))
    refunded = []
    for i, transaction in enumerate(_list(refund, "transactions", where)):
        at = f"{where}.transactions[{i}]"
        if (_object(transaction, at).get("kind") == "refund"
                and transaction.get("status") == "success"):
            refunded.append(_shop_money(transaction, "amount", at, required=True))
    return Refund(
        refund_id=canonical.identifier(_required(refund, "id", where), f"{where}.id"),
        order_id=order_id,
        created_at=canonical.timestamp(_required(refund, "created_at", where),
                                       f"{where}.created_at"),
        lines=tuple(lines),
        amount=_total(refunded, f"{where}.transactions"),
        shipping=_total(shipping, f"{where}.shipping refunds"),
    )


def parse_customer(data: Any) -> Customer:
    """A ``Customer`` from a ``customers/create`` or ``customers/update`` body."""
    customer = _object(data, "customer")
    consent = customer.get("email_marketing_consent")
    if consent is not None:
        # The consent object replaced ``accepts_marketing`` (deprecated); when both are sent the
        # newer one is the truth.
        accepts = _object(consent, "customer.email_marketing_consent").get("state") == "subscribed"
    else:
        accepts = canonical.flag(customer.get("accepts_marketing"), "customer.accepts_marketing")
    return Customer(
        customer_id=canonical.identifier(_required(customer, "id", "customer"), "customer.id"),
        email=canonical.optional_text(customer.get("email"), "customer.email"),
        first_name=_text(customer.get("first_name"), "customer.first_name", 120),
        last_name=_text(customer.get("last_name"), "customer.last_name", 120),
        accepts_marketing=accepts,
    )


# ---- Admin GraphQL order nodes -------------------------------------------------------------

def gid_tail(value: Any, where: str) -> str:
    """``gid://shopify/Order/123`` → ``"123"``, the id REST and webhooks use for the same thing,
    so an order imported through GraphQL and one delivered by webhook share one key."""
    if not isinstance(value, str):
        raise PayloadError(f"{where} must be a Shopify global id, got {value!r}")
    tail = value.rsplit("/", 1)[-1].split("?", 1)[0] if value.startswith("gid://") else value
    return canonical.identifier(tail, where)


def _bag(node: Mapping[str, Any], name: str, where: str, *, required: bool = False) -> Decimal:
    """``name { shopMoney { amount } }`` of a GraphQL MoneyBag."""
    bag = node.get(name)
    if bag is None:
        if required:
            raise PayloadError(f"{where}.{name} is missing")
        return ZERO
    shop_money = _object(_object(bag, f"{where}.{name}").get("shopMoney"),
                         f"{where}.{name}.shopMoney")
    return canonical.money(shop_money.get("amount"), f"{where}.{name}.shopMoney.amount")


def _linked_id(node: Mapping[str, Any], name: str, where: str) -> str | None:
    linked = node.get(name)  # null when the product or variant was deleted since
    if linked is None:
        return None
    return gid_tail(_required(_object(linked, f"{where}.{name}"), "id", f"{where}.{name}"),
                    f"{where}.{name}.id")


def _graphql_line(data: Any, where: str, taxes_included: bool) -> LineItem:
    line = _object(data, where)
    allocations = _list(line, "discountAllocations", where)
    discount = _total([_bag(_object(a, f"{where}.discountAllocations[{i}]"), "allocatedAmountSet",
                            f"{where}.discountAllocations[{i}]", required=True)
                       for i, a in enumerate(allocations)], f"{where}.discountAllocations")
    included_tax = ZERO
    if taxes_included:
        included_tax = _total([_bag(_object(t, f"{where}.taxLines[{i}]"), "priceSet",
                                    f"{where}.taxLines[{i}]", required=True)
                               for i, t in enumerate(_list(line, "taxLines", where))],
                              f"{where}.taxLines")
    return _line_total_check(LineItem(
        line_id=gid_tail(_required(line, "id", where), f"{where}.id"),
        quantity=canonical.quantity(_required(line, "quantity", where), f"{where}.quantity"),
        unit_price=_bag(line, "originalUnitPriceSet", where, required=True),
        total_discount=discount,
        included_tax=included_tax,
        product_id=_linked_id(line, "product", where),
        variant_id=_linked_id(line, "variant", where),
        title=_text(line.get("title"), f"{where}.title", 255) or "",
        is_gift_card=canonical.flag(line.get("isGiftCard"), f"{where}.isGiftCard"),
    ), where)


def _graphql_lines(node: Mapping[str, Any]) -> list[Any]:
    connection = _object(_required(node, "lineItems", "order"), "order.lineItems")
    page_info = connection.get("pageInfo")
    if isinstance(page_info, Mapping) and page_info.get("hasNextPage"):
        # A page query fetches a bounded number of lines; scoring a truncated order would give
        # the wrong points, so it is refused and the caller can fetch it another way.
        raise PayloadError("order.lineItems has more lines than this query fetched")
    return _list(connection, "nodes", "order.lineItems", required=True)


def _graphql_customer(node: Mapping[str, Any]) -> Customer:
    raw = node.get("customer")
    customer = {} if raw is None else _object(raw, "order.customer")
    email = (canonical.optional_text(node.get("email"), "order.email")
             or canonical.optional_text(customer.get("email"), "order.customer.email"))
    customer_id = customer.get("id")
    return Customer(
        customer_id=None if customer_id is None else gid_tail(customer_id, "order.customer.id"),
        email=email,
        first_name=_text(customer.get("firstName"), "order.customer.firstName", 120),
        last_name=_text(customer.get("lastName"), "order.customer.lastName", 120),
    )


def _graphql_refund(data: Any, order_id: str, where: str) -> Refund:
    refund = _object(data, where)
    return Refund(
        refund_id=gid_tail(_required(refund, "id", where), f"{where}.id"),
        order_id=order_id,
        created_at=canonical.timestamp(_required(refund, "createdAt", where),
                                       f"{where}.createdAt"),
        amount=_bag(refund, "totalRefundedSet", where),
    )


def parse_graphql_order(node: Any) -> Order:
    """An ``Order`` from an Admin GraphQL ``Order`` node selected with ``ORDER_FIELDS`` and
    its line items as ``lineItems.nodes`` (see ``integrations.shopify.order_queries``)."""
    order = _object(node, "order")
    order_id = gid_tail(_required(order, "id", "order"), "order.id")
    raw_lines = _graphql_lines(order)
    taxes_included = canonical.flag(order.get("taxesIncluded"), "order.taxesIncluded")
    return _check_subtotal(Order(
        order_id=order_id,
        name=_text(order.get("name"), "order.name", 64) or "",
        created_at=canonical.timestamp(_required(order, "createdAt", "order"),
                                       "order.createdAt"),
        updated_at=canonical.timestamp(_required(order, "updatedAt", "order"),
                                       "order.updatedAt"),
        currency=canonical.currency(_required(order, "currencyCode", "order"),
                                    "order.currencyCode"),
        customer=_graphql_customer(order),
        line_items=tuple(_graphql_line(line, f"order.lineItems.nodes[{i}]", taxes_included)
                         for i, line in enumerate(raw_lines)),
        shipping=_bag(order, "totalShippingPriceSet", "order"),
        taxes=_bag(order, "totalTaxSet", "order"),
        tips=_bag(order, "totalTipReceivedSet", "order"),
        total=_bag(order, "totalPriceSet", "order", required=True),
        paid=_is_one_of(order.get("displayFinancialStatus"), GRAPHQL_PAID_STATUSES),
        fulfilled=order.get("displayFulfillmentStatus") == "FULFILLED",
        cancelled=order.get("cancelledAt") is not None,
        test=canonical.flag(order.get("test"), "order.test"),
        discount_codes=canonical.string_list(order.get("discountCodes"), "order.discountCodes"),
        refunds=tuple(_graphql_refund(refund, order_id, f"order.refunds[{i}]")
                      for i, refund in enumerate(_list(order, "refunds", "order"))),
    ))
