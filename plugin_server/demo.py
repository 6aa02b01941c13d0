"""The embedded demo: a Shopify shop (played by ``demo_shopify``) with a sensible program, and
simulated orders that arrive as signed webhooks and go through the same inbox and jobs."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from integrations.canonical import parse_order

from .db import unit_of_work
from .demo_shopify import DEMO_SHOPIFY_SHOP, DemoShopify
from .loyalty.adjustments import adjust_points
from .loyalty.program import ensure_settings
from .loyalty.widget_settings import validate_widget_settings
from .models import Member, Merchant, Reward, Tier

DEMO_SHOP = DEMO_SHOPIFY_SHOP
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
        select(Merchant).where(Merchant.platform == "shopify", Merchant.shop == DEMO_SHOP)
    ).scalar_one_or_none()


def seed_demo_program(session: Session, merchant: Merchant) -> None:
    """The demo program: 1 point per dollar, Bronze/Silver/Gold and three rewards. Set once,
    on the first install; the merchant's later changes stay."""
    has_tiers = session.execute(
        select(Tier.id).where(Tier.merchant_id == merchant.id).limit(1)).first()
    if has_tiers is not None:
        return
    settings = ensure_settings(session, merchant)
    settings.program_name = "Tea Leaves"
    # The demo's history is dated before the install: let it earn.
    settings.award_past_orders = True
    session.execute(delete(Reward).where(Reward.merchant_id == merchant.id))
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
    settings.widget_json = validate_widget_settings(demo_widget(session, merchant.id))


# The merchant's own texts in a few of the widget's languages; the others fall back to
# the names as set (the widget's own strings are translated in all twelve).
DEMO_TEXTS = {
    "ja": ("ティーリーブス", ("5ドル割引", "10%割引", "送料無料")),
    "es": ("Hojas de Té", ("5 $ de descuento", "10 % de descuento", "Envío gratis")),
    "fr": ("Feuilles de thé", ("5 $ de réduction", "10 % de réduction", "Livraison offerte")),
    "ar": ("أوراق الشاي", ("خصم 5 دولارات", "خصم 10٪", "شحن مجاني")),
}


def demo_widget(session: Session, merchant_id: int) -> dict[str, Any]:
    rewards = session.execute(select(Reward.id).where(Reward.merchant_id == merchant_id)
                              .order_by(Reward.points_cost)).scalars().all()
    by_cost = dict(zip((300, 500, 1000), rewards, strict=False))
    return {
        "color": "#1f4f46", "position": "right",
        "texts": {lang: {"program_name": name, "rewards": {
            str(by_cost[500]): five, str(by_cost[1000]): ten, str(by_cost[300]): shipping}}
            for lang, (name, (five, ten, shipping)) in DEMO_TEXTS.items()},
    }


def open_demo_store(shopify: DemoShopify, *, reinstall: bool) -> int:
    """The demo shop with the app installed (through the real install routes) and the demo
    program; returns the merchant id. ``reinstall`` gets a token from this run's stand-in."""
    runtime = shopify.runtime
    with unit_of_work(runtime.database) as session:
        merchant = find_demo_merchant(session)
        installed = merchant is not None and merchant.status == "active"
    if reinstall or not installed:
        shopify.install()
        runtime.jobs.drain()
    with unit_of_work(runtime.database) as session:
        merchant = find_demo_merchant(session)
        assert merchant is not None
        seed_demo_program(session, merchant)
        return merchant.id


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


def push_orders(shopify: DemoShopify,
                deliveries: Iterator[tuple[str, str, dict[str, Any]]]) -> int:
    """Send each delivery as Shopify would: a signed POST /webhooks/shopify."""
    sent = 0
    for topic, event_id, body in deliveries:
        if shopify.deliver_order(topic, parse_order(body), event_id) == 200:
            sent += 1
    return sent


def seed_demo_history(shopify: DemoShopify, merchant_id: int) -> None:
    """A few months of orders from 40 shoppers, some redemptions through the storefront API
    and a goodwill adjustment, all through the real pipeline."""
    runtime = shopify.runtime
    history = OrderSimulator(seed=1, shoppers=40).orders(DEMO_HISTORY_ORDERS, "S-")
    push_orders(shopify, history)
    runtime.jobs.drain()
    with runtime.database.session() as session:
        reward = session.execute(
            select(Reward).where(Reward.merchant_id == merchant_id, Reward.points_cost == 500)
        ).scalar_one()
        richest = session.execute(
            select(Member).where(Member.merchant_id == merchant_id,
                                 Member.customer_id.is_not(None))
            .order_by(Member.balance.desc()).limit(4)
        ).scalars().all()
        reward_id = reward.id
        shoppers = [(member.id, member.customer_id) for member in richest]
    for member_id, customer_id in shoppers[:3]:
        shopify.storefront("POST", "/api/redeem", customer_id, {"reward_id": reward_id},
                           {"Idempotency-Key": f"demo-seed-{member_id}"})
    with runtime.database.session() as session, session.begin():
        adjust_points(session, merchant_id, shoppers[-1][0], 100,
                      reason="sorry for the late parcel", actor="demo merchant",
                      reference="demo-seed-goodwill")


def next_order_prefix() -> str:
    """A prefix that keeps each batch's order ids apart from earlier batches'."""
    return f"D{int(time.time())}-"
