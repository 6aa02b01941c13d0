"""The stand-in WooCommerce's documents: orders and refunds in the REST shape of the published
examples (``shared/fixtures/woocommerce/rest``), and the JSON encoding WooCommerce sends."""

from __future__ import annotations

import copy
import json
import secrets
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

WC_VERSION = "9.8.0"
CENTS = Decimal("0.01")

NewId = Callable[[], int]


def php_json(document: Any) -> bytes:
    """The body WooCommerce sends: compact ``wp_json_encode`` output, which escapes ``/`` and
    non-ASCII characters."""
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=True)
    return text.replace("/", "\\/").encode("ascii")  # "/" only ever occurs inside strings


def _links(base_url: str, path: str) -> dict[str, Any]:
    collection = f"{base_url}/wp-json/wc/v3/{path.rsplit('/', 1)[0]}"
    return {"self": [{"href": f"{base_url}/wp-json/wc/v3/{path}"}],
            "collection": [{"href": collection}]}


def _line(new_id: NewId, name: str, product_id: int, quantity: int, price: str) -> dict[str, Any]:
    total = str((Decimal(price) * quantity).quantize(CENTS))
    return {"id": new_id(), "name": name, "product_id": product_id, "variation_id": 0,
            "quantity": quantity, "tax_class": "", "subtotal": total, "subtotal_tax": "0.00",
            "total": total, "total_tax": "0.00", "taxes": [], "meta_data": [], "sku": "",
            "price": float(price)}


def recompute_totals(order: dict[str, Any], new_id: NewId) -> None:
    """Fill each line's missing figures (``subtotal`` from ``total`` and back, ``price``
    after discounts as WooCommerce computes it) and the order's totals from the lines."""
    lines_total = lines_tax = discount = Decimal(0)
    for line in order["line_items"]:
        for key, value in (("name", "Item"), ("product_id", 0), ("variation_id", 0),
                           ("quantity", 1), ("total_tax", "0.00"), ("meta_data", [])):
            line.setdefault(key, copy.copy(value))
        line.setdefault("id", new_id())
        line.setdefault("total", line.get("subtotal", "0.00"))
        line.setdefault("subtotal", line["total"])
        line.setdefault("subtotal_tax", line["total_tax"])
        line["price"] = float(Decimal(line["total"]) / max(1, int(line["quantity"])))
        lines_total += Decimal(line["total"])
        lines_tax += Decimal(line["total_tax"])
        discount += Decimal(line["subtotal"]) - Decimal(line["total"])
    shipping = Decimal(order.get("shipping_total", "0"))
    shipping_tax = Decimal(order.get("shipping_tax", "0"))
    order["discount_total"] = str(discount.quantize(CENTS))
    order["cart_tax"] = str(lines_tax.quantize(CENTS))
    order["total_tax"] = str((lines_tax + shipping_tax).quantize(CENTS))
    order["total"] = str((lines_total + lines_tax + shipping + shipping_tax).quantize(CENTS))


def order_document(order_id: int, stamp: str, currency: str, base_url: str,
                   new_id: NewId) -> dict[str, Any]:
    """A paid guest order in the REST shape of the published example (``rest/order.json``)."""
    billing = {"first_name": "John", "last_name": "Doe", "company": "",
               "address_1": "969 Market", "address_2": "", "city": "San Francisco",
               "state": "CA", "postcode": "94103", "country": "US"}
    order: dict[str, Any] = {
        "id": order_id, "parent_id": 0, "number": str(order_id),
        "order_key": "wc_order_" + secrets.token_hex(6), "created_via": "checkout",
        "version": WC_VERSION, "status": "processing", "currency": currency,
        "date_created": stamp, "date_created_gmt": stamp, "date_modified": stamp,
        "date_modified_gmt": stamp, "discount_total": "0.00", "discount_tax": "0.00",
        "shipping_total": "10.00", "shipping_tax": "0.00", "cart_tax": "0.00",
        "total": "0.00", "total_tax": "0.00", "prices_include_tax": False, "customer_id": 0,
        "customer_ip_address": "", "customer_user_agent": "", "customer_note": "",
        "billing": {**billing, "email": "john.doe@example.com", "phone": "(555) 555-5555"},
        "shipping": billing, "payment_method": "bacs",
        "payment_method_title": "Direct Bank Transfer", "transaction_id": "",
        "date_paid": stamp, "date_paid_gmt": stamp, "date_completed": None,
        "date_completed_gmt": None, "cart_hash": "", "meta_data": [],
        "line_items": [_line(new_id, "Woo Single #1", 93, 2, "3.00"),
                       _line(new_id, "Ship Your Idea", 22, 1, "12.00")],
        "tax_lines": [], "shipping_lines": [
            {"id": new_id(), "method_title": "Flat Rate", "method_id": "flat_rate",
             "total": "10.00", "total_tax": "0.00", "taxes": [], "meta_data": []}],
        "fee_lines": [], "coupon_lines": [], "refunds": [],
        "_links": _links(base_url, f"orders/{order_id}"),
    }
    recompute_totals(order, new_id)
    return order


def refund_document(refund_id: int, order: dict[str, Any], stamp: str, amount: str,
                    reason: str, lines: Iterable[tuple[int | str, int, str]],
                    shipping: str | None, base_url: str, new_id: NewId) -> dict[str, Any]:
    """A refund in the shape of ``GET /orders/{id}/refunds`` (``rest/order_refund.json``):
    quantities and amounts negative, each line naming its order line in meta data."""
    by_id = {str(line["id"]): line for line in order.get("line_items", [])}
    items = []
    for line_id, quantity, money in lines:
        items.append({
            **copy.deepcopy(by_id[str(line_id)]), "id": new_id(), "quantity": -abs(quantity),
            "subtotal": f"-{money}", "total": f"-{money}", "subtotal_tax": "0.00",
            "total_tax": "0.00", "taxes": [], "price": 0,
            "meta_data": [{"id": new_id(), "key": "_refunded_item_id", "value": str(line_id)}]})
    shipping_lines = [] if shipping is None else [
        {"id": new_id(), "method_title": "Flat Rate", "method_id": "flat_rate",
         "total": f"-{shipping}", "total_tax": "0.00", "taxes": [], "meta_data": []}]
    return {"id": refund_id, "date_created": stamp, "date_created_gmt": stamp,
            "amount": str(Decimal(amount).quantize(CENTS)), "reason": reason,
            "refunded_by": 1, "refunded_payment": False, "meta_data": [],
            "line_items": items, "shipping_lines": shipping_lines,
            "_links": _links(base_url, f"orders/{order['id']}/refunds/{refund_id}")}
