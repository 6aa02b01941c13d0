"""The embedded demo: a demo merchant with a sensible program, and simulated orders that go
through the same inbox and jobs a platform's webhooks use."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .loyalty.adjustments import adjust_points
from .loyalty.inbox import store_delivery
from .loyalty.merchants import create_merchant
from .loyalty.redeem import redeem_reward
from .models import Member, Merchant, Reward, Tier
from .runtime import Runtime

DEMO_SHOP = "demo-store.example"
DEMO_HISTORY_ORDERS = 90
FIRST_NAMES = ["Aiko", "Minh", "Ravi", "Ana", "Lucas", "Sofia", "Hana", "Omar", "Lea", "Jon",
               "Mei", "Arjun", "Nare", "Chloe", "Mateo", "Yuki", "Linh", "Karim", "Eva", "Noah"]
LAST_NAMES = ["Sato", "Nguyen", "Reddy", "Silva", "Martin", "Garcia", "Kim", "Haddad", "Muller",
              "Smith", "Wang", "Sharma", "Petrosyan", "Dubois", "Lopez"]
PRODUCTS = [("tea-sencha", "Sencha green tea", "14.00", ["tea"]),
            ("tea-matcha", "Ceremonial matcha", "32.00", ["tea", "premium"]),
            ("cup-stone", "Stoneware cup", "18.50", ["ceramics"]),
            ("pot-cast", "Cast iron teapot", "64.00", ["ceramics", "premium"]),
            ("kit-starter", "Starter kit", "45.00", ["kits"]),
            ("card-gift", "Gift card", "25.00", [])]


def find_demo_merchant(session: Session) -> Merchant | None:
    return session.execute(
        select(Merchant).where(Merchant.platform == "demo", Merchant.shop == DEMO_SHOP)
    ).scalar_one_or_none()


def seed_demo_merchant(session: Session) -> Merchant:
    """The demo merchant with 1 point per dollar, Bronze/Silver/Gold and three rewards."""
    existing = find_demo_merchant(session)
    if existing is not None:
        return existing
    merchant = create_merchant(session, "demo", DEMO_SHOP, name="Demo Tea House",
                               currency="USD")
    merchant.settings.program_name = "Tea Leaves"
    session.add_all([
        Tier(merchant_id=merchant.id, name="Bronze", threshold=Decimal(0)),
        Tier(merchant_id=merchant.id, name="Silver", threshold=Decimal(300),
             retention_threshold=Decimal(250), multiplier=Decimal("1.25"),
             entry_reward_points=50),
        Tier(merchant_id=merchant.id, name="Gold", threshold=Decimal(800),
             retention_threshold=Decimal(700), multiplier=Decimal("1.5"),
             entry_reward_points=150),
        Reward(merchant_id=merchant.id, name="$5 off your order", kind="fixed_amount",
               points_cost=500, value=Decimal(5), expires_days=30),
        Reward(merchant_id=merchant.id, name="10% off your order", kind="percentage",
               points_cost=1000, value=Decimal(10), expires_days=30),
        Reward(merchant_id=merchant.id, name="Free shipping", kind="free_shipping",
               points_cost=300, value=Decimal(0), expires_days=30),
    ])
    session.flush()
    return merchant


class OrderSimulator:
    """Plausible orders from a pool of shoppers, with the odd guest, refund and cancel."""

    def __init__(self, seed: int = 7, shoppers: int = 40) -> None:
        self.rng = random.Random(seed)
        self.shoppers = [self._shopper(i) for i in range(shoppers)]
        self.clock = datetime.now(UTC) - timedelta(days=60)

    def _shopper(self, index: int) -> dict[str, Any]:
        first = FIRST_NAMES[index % len(FIRST_NAMES)]
        last = LAST_NAMES[(index * 7) % len(LAST_NAMES)]
        return {"customer_id": str(1000 + index), "first_name": first, "last_name": last,
                "email": f"{first.lower()}.{last.lower()}{index}@example.com"}

    def _lines(self) -> list[dict[str, Any]]:
        lines = []
        for index in range(self.rng.randint(1, 3)):
            product_id, title, price, collections = self.rng.choice(PRODUCTS)
            lines.append({"line_id": f"{index + 1}", "product_id": product_id, "title": title,
                          "quantity": self.rng.randint(1, 3), "unit_price": price,
                          "total_discount": "0", "collection_ids": collections,
                          "is_gift_card": product_id == "card-gift"})
        return lines

    def orders(self, count: int, prefix: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(topic, event id, canonical order) deliveries; follow-ups reuse earlier orders."""
        for number in range(1, count + 1):
            self.clock += timedelta(minutes=self.rng.randint(5, 90))
            guest = self.rng.random() < 0.1
            shopper = dict(self.rng.choice(self.shoppers))
            if guest:
                shopper["customer_id"] = None
            lines = self._lines()
            subtotal = sum(Decimal(item["unit_price"]) * item["quantity"] for item in lines)
            order_id = f"{prefix}{number}"
            stamp = self.clock.isoformat()
            order = {"order_id": order_id, "name": f"#{prefix}{number}", "created_at": stamp,
                     "updated_at": stamp, "currency": "USD", "customer": shopper,
                     "line_items": lines, "shipping": "5.00", "taxes": "0",
                     "total": str(subtotal + 5), "paid": True, "refunds": []}
            yield "orders/paid", f"{order_id}:paid", order
            roll = self.rng.random()
            if roll < 0.08:
                later = (self.clock + timedelta(days=2)).isoformat()
                line = lines[0]
                refund = {"refund_id": f"{order_id}-r1", "created_at": later,
                          "lines": [{"line_id": line["line_id"], "quantity": 1,
                                     "subtotal": line["unit_price"]}]}
                yield "refunds/create", f"{order_id}:refund", {
                    **order, "updated_at": later, "refunds": [refund]}
            elif roll < 0.11:
                later = (self.clock + timedelta(hours=3)).isoformat()
                yield "orders/cancelled", f"{order_id}:cancel", {
                    **order, "updated_at": later, "cancelled": True}


def push_orders(runtime: Runtime, merchant_id: int,
                deliveries: Iterator[tuple[str, str, dict[str, Any]]]) -> int:
    """Store each delivery in the inbox and enqueue its processing, as a webhook would."""
    stored = 0
    for topic, event_id, body in deliveries:
        with runtime.database.session() as session, session.begin():
            row = store_delivery(session, merchant_id, "demo", topic, event_id,
                                 json.dumps(body).encode(), {"X-Demo-Topic": topic})
            if row is not None:
                runtime.jobs.enqueue_after_commit(session, "process_inbox_event", row)
                stored += 1
    return stored


def seed_demo_history(runtime: Runtime, merchant_id: int) -> None:
    """A few months of orders from 40 shoppers, some redemptions and a goodwill adjustment,
    all through the real pipeline."""
    history = OrderSimulator(seed=1, shoppers=40).orders(DEMO_HISTORY_ORDERS, "S-")
    push_orders(runtime, merchant_id, history)
    runtime.jobs.drain()
    with runtime.database.session() as session:
        reward = session.execute(
            select(Reward).where(Reward.merchant_id == merchant_id, Reward.points_cost == 500)
        ).scalar_one()
        richest = session.execute(
            select(Member.id).where(Member.merchant_id == merchant_id)
            .order_by(Member.balance.desc()).limit(4)
        ).scalars().all()
        reward_id = reward.id
    issuer = runtime.code_issuers["demo"]
    for member_id in richest[:3]:
        redeem_reward(runtime.database, merchant_id, member_id, reward_id,
                      f"demo-seed-{member_id}", issuer)
    with runtime.database.session() as session, session.begin():
        adjust_points(session, merchant_id, richest[-1], 100, reason="sorry for the late parcel",
                      actor="demo merchant", reference="demo-seed-goodwill")


def next_order_prefix() -> str:
    """A prefix that keeps each batch's order ids apart from earlier batches'."""
    return f"D{int(time.time())}-"
