"""The demo served for real on a loopback port (the app, its stand-in Shopify, the demo store
page), with one member whose balance and tier are known, for real-browser tests."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from integrations.base import Customer, LineItem, Order
from plugin_server.db import unit_of_work
from plugin_server.demo import open_demo_store
from plugin_server.demo_shopify import DemoShopify
from plugin_server.models import Member, Reward
from plugin_server.web.demo_store import register_demo_store
from tests.conftest import make_app

CHROMIUM = os.environ.get("LOYALTY_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("LOYALTY_TEST_ARTIFACTS",
                                Path(__file__).resolve().parents[2] / "test-artifacts"))
MEMBER_ID = "7001"
# A paid $400 order: 400 points and Silver (from 300) with its 50 entry points; Gold (800)
# is next.
MEMBER_ORDER = Decimal(400)


@dataclass
class LiveDemo:
    url: str
    app: Flask
    shopify: DemoShopify
    merchant_id: int

    def member(self, customer_id: str = MEMBER_ID) -> Member:
        with unit_of_work(self.shopify.runtime.database) as session:
            found = session.query(Member).filter_by(merchant_id=self.merchant_id,
                                                     customer_id=customer_id).one()
            session.expunge(found)
            return found

    def rename_reward(self, old: str, new: str) -> None:
        with unit_of_work(self.shopify.runtime.database) as session:
            reward = session.query(Reward).filter_by(merchant_id=self.merchant_id,
                                                     name=old).one()
            reward.name = new

    def place_order(self, customer_id: str, amount: Decimal, number: str) -> None:
        now = datetime.now(UTC)
        order = Order(order_id=number, name=f"#{number}", created_at=now, updated_at=now,
                      currency="USD", customer=Customer(customer_id=customer_id,
                                                        email=email_of(customer_id)),
                      line_items=(LineItem(line_id="1", quantity=1, unit_price=amount,
                                           product_id="tea-matcha", title="Matcha"),),
                      total=amount, paid=True)
        assert self.shopify.deliver_order("orders/paid", order, f"{number}:paid") == 200
        self.shopify.runtime.jobs.drain()


def email_of(customer_id: str) -> str:
    return f"shopper{customer_id}@example.com"


def require_chromium() -> str:
    """Debian's chromium (scripts/test.sh installs it). Locally a missing browser skips;
    in CI it fails, so browser tests can never pass as skips."""
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: run the tests with scripts/test.sh")
        pytest.skip(f"real-browser tests need {CHROMIUM} (scripts/test.sh installs chromium)")
    return CHROMIUM


@pytest.fixture(scope="module")
def live_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDemo]:
    folder = tmp_path_factory.mktemp("live-demo")
    app = make_app(f"sqlite:///{folder / 'loyalty.sqlite3'}")
    shopify = DemoShopify(app)
    shopify.start()
    register_demo_store(app, shopify)
    merchant_id = open_demo_store(shopify, reinstall=True)
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-demo", daemon=True)
    thread.start()
    demo = LiveDemo(url=f"http://127.0.0.1:{server.server_port}", app=app, shopify=shopify,
                    merchant_id=merchant_id)
    demo.place_order(MEMBER_ID, MEMBER_ORDER, "LIVE-1")
    try:
        yield demo
    finally:
        server.shutdown()
        shopify.stop()


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


def console_problems(messages: list[Any]) -> list[str]:
    return [f"{kind}: {text}" for kind, text in messages if kind in ("error", "pageerror")]
