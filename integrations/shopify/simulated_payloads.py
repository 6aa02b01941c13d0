"""Shopify-shaped bodies built from our own dataclasses, for the demo store and the tests:
the REST/webhook order and refund, and the GraphQL order node. ``payloads`` reads them back."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..base import Order, Refund


def _money(amount: Decimal, currency: str) -> dict[str, Any]:
    text = str(amount.quantize(Decimal("0.01")))
    return {"shop_money": {"amount": text, "currency_code": currency},
            "presentment_money": {"amount": text, "currency_code": currency}}


def rest_refund(refund: Refund, currency: str) -> dict[str, Any]:
    return {
        "id": int(refund.refund_id) if refund.refund_id.isdigit() else refund.refund_id,
        "order_id": int(refund.order_id) if refund.order_id.isdigit() else refund.order_id,
        "created_at": refund.created_at.isoformat(),
        "refund_line_items": [
            {"line_item_id": line.line_id, "quantity": line.quantity,
             "subtotal_set": _money(line.subtotal, currency)}
            for line in refund.lines
        ],
        "refund_shipping_lines": [
            {"subtotal_amount_set": _money(refund.shipping, currency)}
        ] if refund.shipping else [],
        "order_adjustments": [],
        "transactions": [
            {"kind": "refund", "status": "success", "amount": str(refund.amount),
             "amount_set": _money(refund.amount, currency)}
        ] if refund.amount else [],
    }


def rest_order(order: Order) -> dict[str, Any]:
    """An order as Shopify's ``orders/*`` webhooks deliver it (the fields the app reads)."""
    currency = order.currency
    customer = order.customer
    financial = "paid" if order.paid else "pending"
    if order.paid and order.refunds:
        financial = "partially_refunded"
    return {
        "id": int(order.order_id) if order.order_id.isdigit() else order.order_id,
        "name": order.name,
        "created_at": order.created_at.isoformat(),
        "updated_at": order.updated_at.isoformat(),
        "currency": currency,
        "presentment_currency": currency,
        "email": customer.email,
        "financial_status": financial,
        "fulfillment_status": "fulfilled" if order.fulfilled else None,
        "cancelled_at": order.updated_at.isoformat() if order.cancelled else None,
        "test": order.test,
        "taxes_included": False,
        "customer": None if customer.customer_id is None else {
            "id": int(customer.customer_id) if customer.customer_id.isdigit()
            else customer.customer_id,
            "email": customer.email, "first_name": customer.first_name,
            "last_name": customer.last_name},
        "line_items": [
            {"id": int(line.line_id) if line.line_id.isdigit() else line.line_id,
             "quantity": line.quantity, "title": line.title,
             "price_set": _money(line.unit_price, currency),
             "total_discount_set": _money(line.total_discount, currency),
             "discount_allocations": [],
             "product_id": line.product_id, "variant_id": line.variant_id,
             "gift_card": line.is_gift_card, "tax_lines": []}
            for line in order.line_items
        ],
        "total_price_set": _money(order.total, currency),
        "total_shipping_price_set": _money(order.shipping, currency),
        "total_tax_set": _money(order.taxes, currency),
        "total_tip_received": str(order.tips),
        "discount_codes": [{"code": code, "amount": "0.00", "type": "fixed_amount"}
                           for code in order.discount_codes],
        "refunds": [rest_refund(refund, currency) for refund in order.refunds],
    }


def graphql_order(order: Order) -> dict[str, Any]:
    """An order node as the Admin GraphQL API returns it for our page and bulk queries."""
    customer = order.customer

    def money(amount: Decimal) -> dict[str, Any]:
        return {"shopMoney": {"amount": str(amount.quantize(Decimal("0.01")))}}

    status = "PAID" if order.paid else "PENDING"
    return {
        "id": f"gid://shopify/Order/{order.order_id}",
        "name": order.name,
        "createdAt": order.created_at.isoformat(),
        "updatedAt": order.updated_at.isoformat(),
        "currencyCode": order.currency,
        "test": order.test,
        "cancelledAt": order.updated_at.isoformat() if order.cancelled else None,
        "displayFinancialStatus": status,
        "displayFulfillmentStatus": "FULFILLED" if order.fulfilled else "UNFULFILLED",
        "taxesIncluded": False,
        "email": customer.email,
        "customer": None if customer.customer_id is None else {
            "id": f"gid://shopify/Customer/{customer.customer_id}", "email": customer.email,
            "firstName": customer.first_name, "lastName": customer.last_name},
        "totalPriceSet": money(order.total),
        "totalShippingPriceSet": money(order.shipping),
        "totalTaxSet": money(order.taxes),
        "totalTipReceivedSet": money(order.tips),
        "discountCodes": list(order.discount_codes),
        "refunds": [{"id": f"gid://shopify/Refund/{refund.refund_id}",
                     "createdAt": refund.created_at.isoformat(),
                     "totalRefundedSet": money(refund.amount)} for refund in order.refunds],
        "lineItems": {"nodes": [
            {"id": f"gid://shopify/LineItem/{line.line_id}", "quantity": line.quantity,
             "title": line.title, "isGiftCard": line.is_gift_card,
             "product": {"id": f"gid://shopify/Product/{line.product_id}"}
             if line.product_id else None,
             "variant": None,
             "originalUnitPriceSet": money(line.unit_price),
             "discountAllocations": [{"allocatedAmountSet": money(line.total_discount)}]
             if line.total_discount else [],
             "taxLines": []}
            for line in order.line_items]},
    }
