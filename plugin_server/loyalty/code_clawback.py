"""A reward code the merchant cancelled (its points returned) that turns up on an order after
all: the store reported its use late (Shopify's usage count is asynchronous, a webhook can be
hours late, WooCommerce counts a coupon only when the order's status moves). The points the
cancel gave back are taken back, once per redemption (the ledger's unique key), and may take
the balance below zero like any reversal: the shopper had both the discount and the points."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin_server.models import LedgerEntry, Member, Redemption
from plugin_server.models import Order as OrderRow

from .ledger import post_entry

SOURCE_KIND = "redemption_clawback"


def order_codes(raw: str) -> set[str]:
    """The order's discount codes, lower-cased (WooCommerce lowers them)."""
    try:
        codes = json.loads(raw or "[]")
    except ValueError:
        return set()
    return {str(code).casefold() for code in codes} if isinstance(codes, list) else set()


def claw_back_cancelled_codes(session: Session, row: OrderRow, now: datetime) -> int:
    """Take back the points of every cancelled redemption whose code this order used;
    returns the points taken."""
    codes = order_codes(row.discount_codes)
    if not codes:
        return 0
    cancelled = session.execute(
        select(Redemption).where(Redemption.merchant_id == row.merchant_id,
                                 Redemption.state == "cancelled",
                                 func.lower(Redemption.code).in_(codes))).scalars().all()
    if not cancelled:
        return 0
    done = set(session.execute(select(LedgerEntry.source_id).where(
        LedgerEntry.merchant_id == row.merchant_id, LedgerEntry.source_kind == SOURCE_KIND,
        LedgerEntry.source_id.in_([str(redemption.id) for redemption in cancelled])
    )).scalars())
    taken = 0
    for redemption in cancelled:
        if str(redemption.id) in done:
            continue
        member = session.get(Member, redemption.member_id)
        if member is None:
            continue
        post_entry(session, member, kind="redemption", source_kind=SOURCE_KIND,
                   source_id=str(redemption.id), points=-redemption.points_cost,
                   order_id=row.id, redemption_id=redemption.id,
                   reason=f"cancelled code {redemption.code} was used on order "
                          f"{row.name or row.platform_order_id}", now=now)
        taken += redemption.points_cost
    return taken
