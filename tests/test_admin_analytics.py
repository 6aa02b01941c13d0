"""The admin dashboard: every figure on a small hand-computed dataset, other merchants' data
never counted, well-formed and labelled SVG charts, the view in English and Japanese, and
refusal without a sign-in."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from plugin_server.admin.analytics import (
    Dashboard,
    GroupOrders,
    LedgerFact,
    PointsFlow,
    TierShare,
    dashboard,
    point_value,
    weekly_trends,
)
from plugin_server.admin.charts import Series, bar_chart
from plugin_server.db import unit_of_work
from plugin_server.loyalty.ledger import post_entry
from plugin_server.loyalty.rewards import hold_redemption, void_redemption
from plugin_server.models import Member, Order, Reward, Tier
from tests.support.admin import OTHER_SHOP, SHOP, WOO_STORE, merchant_named, signed_in_client

# A Thursday; its week starts Monday 2026-11-16, the 12-week window on Monday 2026-08-31.
NOW = datetime(2026, 11, 19, 12, 0, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"


def at(month: int, day: int) -> datetime:
    return datetime(2026, month, day, 10, 0, tzinfo=UTC)


@pytest.fixture
def app(admin_app: Flask) -> Flask:
    return admin_app


def _order(session: Session, merchant_id: int, number: str, total: str, *,
           member: Member | None = None, email: str | None = None, refunded: str = "0",
           codes: str = "[]", cancelled: bool = False, test: bool = False) -> None:
    session.add(Order(merchant_id=merchant_id, platform_order_id=number, currency="EUR",
                      member_id=member.id if member else None, email=email,
                      placed_at=at(11, 17), platform_updated_at=at(11, 17),
                      total=Decimal(total), refunded_amount=Decimal(refunded),
                      discount_codes=codes, cancelled=cancelled, test=test))


def _award(session: Session, member: Member, points: int, when: datetime, source: str, *,
           kind: str = "award", source_kind: str = "order", pending: bool = False) -> None:
    post_entry(session, member, kind=kind, source_kind=source_kind, source_id=source,
               points=0 if pending else points, pending_points=points if pending else 0,
               now=when)


def build_shop(session: Session, merchant_id: int) -> None:
    """Three members, a dozen ledger entries, two redemptions (one voided), eight orders."""
    silver = Tier(merchant_id=merchant_id, name="Silver", threshold=Decimal(100))
    gold = Tier(merchant_id=merchant_id, name="Gold", threshold=Decimal(500))
    retired = Tier(merchant_id=merchant_id, name="Bronze", threshold=Decimal(0), active=False)
    session.add_all([silver, gold, retired])
    session.flush()
    alice = Member(merchant_id=merchant_id, customer_id="c-alice", email="alice@example.com",
                   tier_id=gold.id, created_at=at(11, 17))
    bob = Member(merchant_id=merchant_id, customer_id="c-bob", tier_id=silver.id,
                 created_at=at(10, 1))
    carol = Member(merchant_id=merchant_id, customer_id="c-carol", created_at=at(5, 1))
    five_off = Reward(merchant_id=merchant_id, name="5 off", kind="fixed_amount",
                      points_cost=100, value=Decimal(5))
    session.add_all([alice, bob, carol, five_off,
                     Reward(merchant_id=merchant_id, name="25 off", kind="fixed_amount",
                            points_cost=400, value=Decimal(25)),
                     Reward(merchant_id=merchant_id, name="10%", kind="percentage",
                            points_cost=50, value=Decimal(10)),
                     Reward(merchant_id=merchant_id, name="off", kind="fixed_amount",
                            points_cost=10, value=Decimal(5), enabled=False)])
    session.flush()
    _award(session, carol, 50, at(5, 2), "o-c1")  # before the window; Carol is inactive
    _award(session, bob, 200, at(10, 2), "o-b1")
    _award(session, bob, 80, at(10, 9), "o-b2", pending=True)
    post_entry(session, bob, kind="release", source_kind="release", source_id="o-b2",
               points=80, pending_points=-80, now=at(10, 20))
    _award(session, bob, -30, at(10, 21), "r-b1", kind="reversal", source_kind="refund")
    voided = hold_redemption(session, merchant_id, bob.id, five_off.id, now=at(10, 22))
    void_redemption(session, merchant_id, voided.id, "shopper changed their mind",
                    now=at(10, 23))
    _award(session, alice, 300, at(11, 17), "o-a1")
    _award(session, alice, 50, at(11, 17), "gold", kind="tier_reward", source_kind="tier_reward")
    _award(session, alice, -20, at(11, 18), "adj-1", kind="adjustment",
           source_kind="adjustment")
    _award(session, alice, 10, at(11, 18), "adj-2", kind="adjustment", source_kind="adjustment")
    # A transfer between members moves points; it issues nothing and takes nothing back.
    _award(session, bob, -40, at(11, 18), "move-1", kind="adjustment", source_kind="moved_out")
    _award(session, alice, 40, at(11, 18), "move-1", kind="adjustment", source_kind="moved_in")
    spent = hold_redemption(session, merchant_id, alice.id, five_off.id, now=at(11, 18))
    spent.code = "LOY-ALICE5"
    _order(session, merchant_id, "1", "40.00", member=alice)
    _order(session, merchant_id, "2", "60.00", member=alice, refunded="10.00",
           codes='["loy-alice5"]')
    _order(session, merchant_id, "3", "30.00", member=bob)
    _order(session, merchant_id, "4", "100.00", member=bob, cancelled=True)
    _order(session, merchant_id, "5", "20.00", email="Guest@Example.com")
    _order(session, merchant_id, "6", "25.00", email="guest@example.com", codes='["SUMMER10"]')
    _order(session, merchant_id, "7", "15.00")
    _order(session, merchant_id, "8", "500.00", member=alice, test=True)


def build_other_shop(session: Session, merchant_id: int) -> None:
    """Data that must never show in the first shop's figures."""
    tier = Tier(merchant_id=merchant_id, name="Gold", threshold=Decimal(1))
    session.add(tier)
    session.flush()
    stranger = Member(merchant_id=merchant_id, customer_id="c-alice", tier_id=tier.id,
                      created_at=at(11, 17))
    session.add_all([stranger, Reward(merchant_id=merchant_id, name="cheap", points_cost=1,
                                      kind="fixed_amount", value=Decimal(100))])
    session.flush()
    _award(session, stranger, 1000, at(11, 17), "o-x1")
    _order(session, merchant_id, "1", "70.00", member=stranger, codes='["LOY-ALICE5"]')
    _order(session, merchant_id, "2", "90.00", email="guest@example.com")


@pytest.fixture
def figures(app: Flask) -> Dashboard:
    database = app.extensions["loyalty"].database
    shop, other = merchant_named(app, SHOP), merchant_named(app, OTHER_SHOP)
    with unit_of_work(database) as session:
        build_shop(session, shop.id)
        build_other_shop(session, other.id)
    with unit_of_work(database) as session:
        return dashboard(session, shop.id, "EUR", now=NOW)


def test_member_and_points_figures(figures: Dashboard) -> None:
    assert (figures.members, figures.active_members) == (3, 2)
    # Issued: 50 + 200 + 80 (pending award) + 300 + 50 (tier) + 10 (adjustment); the release
    # and the transfer count for nothing. Taken back: the refund (30) and the adjustment (20).
    # Redeemed: Alice's 100; Bob's 100 was voided.
    assert figures.points == PointsFlow(issued=690, taken_back=50, redeemed=100)
    assert figures.outstanding == 540  # Carol 50 + Bob 210 + Alice 280
    assert figures.points.issued - figures.points.taken_back - figures.points.redeemed == 540
    assert figures.points.redemption_rate == Decimal(100) / Decimal(690)
    # The cheapest enabled fixed-amount reward: 5 EUR for 100 points.
    assert figures.point_value == Decimal("0.05")
    assert figures.liability == Decimal("27.00")


def test_order_figures(figures: Dashboard) -> None:
    # Members: orders 1, 2 (60 - 10 refunded) and 3; 4 is cancelled, 8 a test.
    assert figures.orders.members == GroupOrders(orders=3, customers=2, repeat_customers=1,
                                                 revenue=Decimal("120.00"))
    assert figures.orders.members.average_order_value == Decimal(40)
    assert figures.orders.members.repeat_rate == Decimal("0.5")
    # Non-members: the same email twice (any case) and an anonymous order.
    assert figures.orders.non_members == GroupOrders(orders=3, customers=2, repeat_customers=1,
                                                     revenue=Decimal("60.00"))
    assert figures.orders.non_members.average_order_value == Decimal(20)
    assert figures.orders.non_members.repeat_rate == Decimal("0.5")
    assert (figures.orders.loyalty_code_orders, figures.orders.loyalty_code_revenue) == (
        1, Decimal("50.00"))


def test_order_figures_are_the_same_on_every_database(any_runtime: Any,
                                                      any_merchant_id: int) -> None:
    """The order figures are summed by the database: the same hand-computed values on SQLite
    and PostgreSQL."""
    with unit_of_work(any_runtime.database) as session:
        build_shop(session, any_merchant_id)
    with unit_of_work(any_runtime.database) as session:
        orders = dashboard(session, any_merchant_id, "EUR", now=NOW).orders
    assert orders.members == GroupOrders(3, 2, 1, Decimal("120.00"))
    assert orders.non_members == GroupOrders(3, 2, 1, Decimal("60.00"))
    assert (orders.loyalty_code_orders, orders.loyalty_code_revenue) == (1, Decimal("50.00"))


def test_tiers_and_weekly_trends(figures: Dashboard) -> None:
    # The retired tier nobody holds is left out.
    assert figures.tiers == [TierShare(None, 1), TierShare("Silver", 1), TierShare("Gold", 1)]
    assert len(figures.weeks) == 12
    assert figures.weeks[0].starts == datetime(2026, 8, 31, tzinfo=UTC)
    assert figures.weeks[-1].starts == datetime(2026, 11, 16, tzinfo=UTC)
    by_week = {week.starts.date().isoformat(): (week.issued, week.redeemed, week.new_members)
               for week in figures.weeks if (week.issued, week.redeemed, week.new_members)
               != (0, 0, 0)}
    assert by_week == {"2026-09-28": (200, 0, 1), "2026-10-05": (80, 0, 0),
                       "2026-11-16": (360, 100, 1)}


def test_pure_rules_edge_cases() -> None:
    assert point_value([]) is None
    assert point_value([(100, Decimal(0))]) is None
    # Same cost: the better value per point wins.
    assert point_value([(200, Decimal(10)), (200, Decimal(12))]) == Decimal("0.06")
    assert PointsFlow(0, 0, 0).redemption_rate is None
    assert GroupOrders(0, 0, 0, Decimal(0)).average_order_value is None
    weeks = weekly_trends([LedgerFact("award", "order", 5, datetime(2026, 8, 30, tzinfo=UTC)),
                           LedgerFact("award", "order", 7, datetime(2026, 8, 31, tzinfo=UTC)),
                           LedgerFact("award", "order", 9, datetime(2026, 11, 23, tzinfo=UTC))],
                          [], NOW)
    assert [week.issued for week in weeks] == [7] + [0] * 11


def test_an_empty_shop_has_figures_too(app: Flask) -> None:
    store = merchant_named(app, WOO_STORE)
    with unit_of_work(app.extensions["loyalty"].database) as session:
        empty = dashboard(session, store.id, "EUR", now=NOW)
    assert (empty.members, empty.outstanding, empty.point_value, empty.liability) == (
        0, 0, None, None)
    assert empty.tiers == [TierShare(None, 0)]


def test_a_chart_is_well_formed_svg_with_titles() -> None:
    svg = bar_chart("c1", "Points <per> week", "Issued & redeemed", ["a", "b"],
                    [Series("Issued", "series-1", [3, 0]),
                     Series("Redeemed", "series-2", [1, 2])], str)
    root = ET.fromstring(str(svg))
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img" and root.get("aria-labelledby") == "c1-title c1-desc"
    assert root.find(f"{SVG}title").text == "Points <per> week"
    assert root.find(f"{SVG}desc").text == "Issued & redeemed"
    bars = [bar.find(f"{SVG}title").text for bar in root.iter(f"{SVG}rect")
            if bar.find(f"{SVG}title") is not None]
    assert bars == ["a · Issued: 3", "a · Redeemed: 1", "b · Issued: 0", "b · Redeemed: 2"]


def _charts(html: str) -> list[ET.Element]:
    return [ET.fromstring(found) for found in re.findall(r"<svg .*?</svg>", html, re.S)]


@pytest.mark.parametrize("lang, expected", [
    ("en", ["Points per week", "Members per tier", "Outstanding liability", "50.0%",
            "Show the data", "€40.00"]),
    ("ja", ["週ごとのポイント", "ランク別の会員数", "未使用ポイントの負債額", "50.0%",
            "データを表示", "€40.00"]),
])
def test_the_dashboard_renders(app: Flask, lang: str, expected: list[str]) -> None:
    database = app.extensions["loyalty"].database
    shop, other = merchant_named(app, SHOP), merchant_named(app, OTHER_SHOP)
    with unit_of_work(database) as session:
        build_shop(session, shop.id)
        build_other_shop(session, other.id)
    client = signed_in_client(app, SHOP)
    page = client.get(f"/admin?view=dashboard&lang={lang}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for text in expected:
        assert text in html
    charts = _charts(html)
    assert len(charts) == 3
    for chart in charts:
        assert chart.find(f"{SVG}title").text and chart.find(f"{SVG}desc").text
    assert html.count('<details class="table">') == 3
    fragment = client.get(f"/admin/view/dashboard?lang={lang}")
    assert fragment.status_code == 200
    assert len(_charts(fragment.get_data(as_text=True))) == 3


def test_the_dashboard_needs_a_sign_in(app: Flask) -> None:
    assert app.test_client().get("/admin/view/dashboard").status_code == 401
    assert app.test_client().get("/admin?view=dashboard").status_code == 401
