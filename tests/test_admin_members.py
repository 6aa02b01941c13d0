"""The admin's members section: the list (search, tier filter, pages), a member's page, manual
adjustments with every refusal, CSRF, and tenant isolation."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from plugin_server.db import unit_of_work
from plugin_server.loyalty.ledger import post_entry
from plugin_server.loyalty.rewards import hold_redemption
from plugin_server.models import (
    AdminActivity,
    LedgerEntry,
    Member,
    Reward,
    Tier,
    utcnow,
)
from tests.support.admin import OTHER_SHOP, SHOP, csrf_token, merchant_named, signed_in_client


@dataclass(frozen=True)
class Shop:
    merchant_id: int
    other_merchant_id: int
    gold_tier: int
    members: list[int]  # index i is member{i:02}, created i minutes after the first
    other_member: int


def _seed(app: Flask) -> Shop:
    """30 members of SHOP (every third in Gold, member{i} has balance 100 + i), one member of
    OTHER_SHOP."""
    merchant_id = merchant_named(app, SHOP).id
    other_id = merchant_named(app, OTHER_SHOP).id
    start = utcnow() - timedelta(days=1)
    with unit_of_work(app.extensions["loyalty"].database) as session:
        gold = Tier(merchant_id=merchant_id, name="Gold", threshold=Decimal(1000))
        session.add(gold)
        session.flush()
        members = []
        for i in range(30):
            member = Member(merchant_id=merchant_id, customer_id=f"c{i:02}",
                            email=f"member{i:02}@example.com", first_name="Ann" if i == 7
                            else "Bob", last_name=f"Smith{i:02}",
                            tier_id=gold.id if i % 3 == 0 else None,
                            created_at=start + timedelta(minutes=i))
            session.add(member)
            session.flush()
            post_entry(session, member, kind="award", source_kind="test", source_id=f"seed{i}",
                       points=100 + i, reason="seed")
            members.append(member.id)
        other = Member(merchant_id=other_id, customer_id="x1", email="other@example.com")
        session.add(other)
        session.flush()
        post_entry(session, other, kind="award", source_kind="test", source_id="other",
                   points=500, reason="seed")
        return Shop(merchant_id, other_id, gold.id, members, other.id)


@pytest.fixture
def shop(admin_app: Flask) -> Shop:
    return _seed(admin_app)


@pytest.fixture
def client(admin_app: Flask) -> FlaskClient:
    return signed_in_client(admin_app, SHOP)


def _emails(html: str) -> list[str]:
    return re.findall(r'data-query="member=\d+">([^<]+)</a>', html)


def _db(app: Flask):  # type: ignore[no-untyped-def]
    return unit_of_work(app.extensions["loyalty"].database)


def _balance(app: Flask, member_id: int) -> int:
    with _db(app) as session:
        return session.get(Member, member_id).balance  # type: ignore[union-attr]


def _adjust(client: FlaskClient, member_id: int, points: str, reason: str, *,
            csrf: bool = True) -> TestResponse:
    """POST an adjustment of the member, with the page's CSRF token unless told not to."""
    data = {"points": points, "reason": reason}
    if csrf:
        data["csrf_token"] = csrf_token(client)
    return client.post(f"/admin/members/{member_id}/adjust", data=data)


def _counts(app: Flask) -> tuple[int, int]:
    with _db(app) as session:
        return (session.execute(select(func.count()).select_from(LedgerEntry)).scalar_one(),
                session.execute(select(func.count()).select_from(AdminActivity)).scalar_one())


# -- the list ----------------------------------------------------------------------------------

def test_the_list_shows_25_newest_first_then_the_rest(client: FlaskClient, shop: Shop) -> None:
    first = client.get("/admin/view/members").get_data(as_text=True)
    assert _emails(first) == [f"member{i:02}@example.com" for i in range(29, 4, -1)]
    assert "30 members" in first
    assert 'data-view="members" data-query="page=2"' in first
    row = re.search(rf'<tr data-member="{shop.members[27]}">(.*?)</tr>', first, re.S)
    assert row is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    assert cells[1:] == ["c27", "Gold", "127", "0"]
    second = client.get("/admin/view/members?page=2").get_data(as_text=True)
    assert _emails(second) == [f"member{i:02}@example.com" for i in range(4, -1, -1)]
    assert 'data-query="page=1"' in second and "page=3" not in second


def test_search_by_email_or_name_any_case(client: FlaskClient, shop: Shop) -> None:
    by_email = client.get("/admin/view/members?q=MEMBER1").get_data(as_text=True)
    assert _emails(by_email) == [f"member{i:02}@example.com" for i in range(19, 9, -1)]
    by_name = client.get("/admin/view/members?q=ann%20smith").get_data(as_text=True)
    assert _emails(by_name) == ["member07@example.com"]
    # A % typed by the merchant is a character, not a wildcard.
    assert _emails(client.get("/admin/view/members?q=%25").get_data(as_text=True)) == []
    # The other merchant's member is never listed.
    assert _emails(client.get("/admin/view/members?q=other").get_data(as_text=True)) == []


def test_filter_by_tier_and_search_keeps_the_filter_in_page_links(client: FlaskClient,
                                                                 shop: Shop) -> None:
    gold = client.get(f"/admin/view/members?tier={shop.gold_tier}").get_data(as_text=True)
    assert _emails(gold) == [f"member{i:02}@example.com" for i in range(27, -1, -3)]
    both = client.get(f"/admin/view/members?tier={shop.gold_tier}&q=member2")
    assert _emails(both.get_data(as_text=True)) == ["member27@example.com",
                                                    "member24@example.com",
                                                    "member21@example.com"]
    paged = client.get("/admin/view/members?q=smith").get_data(as_text=True)
    assert 'data-query="q=smith&amp;page=2"' in paged


# -- a member's page ---------------------------------------------------------------------------

def test_the_member_page_shows_balance_ledger_and_redemptions(admin_app: Flask,
                                                             client: FlaskClient,
                                                             shop: Shop) -> None:
    member_id = shop.members[5]
    with _db(admin_app) as session:
        reward = Reward(merchant_id=shop.merchant_id, name="5 EUR off", kind="fixed_amount",
                        points_cost=40, value=Decimal(5))
        session.add(reward)
        session.flush()
        code = hold_redemption(session, shop.merchant_id, member_id, reward.id).code
    html = client.get(f"/admin/view/members?member={member_id}").get_data(as_text=True)
    assert "member05@example.com" in html
    assert re.search(r"data-balance>65<", html)  # 105 - 40
    entries = re.findall(r'<tr data-entry="\d+">(.*?)</tr>', html, re.S)
    assert len(entries) == 2
    assert "Redeemed" in entries[0] and "-40" in entries[0] and "redeemed for 5 EUR off" \
        in entries[0]
    assert "Earned" in entries[1] and "105" in entries[1] and "seed" in entries[1]
    assert code is not None and code in html and "Being issued" in html


def test_another_merchants_member_is_not_found(client: FlaskClient, shop: Shop) -> None:
    assert client.get(f"/admin/view/members?member={shop.other_member}").status_code == 404
    assert client.get("/admin/view/members?member=abc").status_code == 404


# -- adjustments -------------------------------------------------------------------------------

def test_an_adjustment_moves_the_balance_and_is_logged(admin_app: Flask, client: FlaskClient,
                                                       shop: Shop) -> None:
    member_id = shop.members[3]
    token = csrf_token(client)
    for points, reason in ((25, "goodwill"), (-3, "typo fix")):
        answer = client.post(f"/admin/members/{member_id}/adjust",
                             data={"points": str(points), "reason": reason,
                                   "csrf_token": token})
        assert answer.status_code == 200
        assert reason in answer.get_data(as_text=True)
    assert _balance(admin_app, member_id) == 103 + 25 - 3
    with _db(admin_app) as session:
        rows = session.execute(
            select(LedgerEntry.kind, LedgerEntry.points, LedgerEntry.reason,
                   LedgerEntry.source_kind)
            .where(LedgerEntry.member_id == member_id).order_by(LedgerEntry.id)).all()
        assert [tuple(row) for row in rows[1:]] == [
            ("adjustment", 25, "goodwill", "adjustment"),
            ("adjustment", -3, "typo fix", "adjustment")]
        logged = session.execute(
            select(AdminActivity.action, AdminActivity.detail_json)
            .where(AdminActivity.merchant_id == shop.merchant_id)
            .order_by(AdminActivity.id)).all()
    assert [(action, json.loads(detail)) for action, detail in logged] == [
        ("member.adjust", {"member": member_id, "points": 25, "reason": "goodwill"}),
        ("member.adjust", {"member": member_id, "points": -3, "reason": "typo fix"})]


@pytest.mark.parametrize(("points", "reason", "field", "message"), [
    ("10", "", "reason", "Reason: say why"),
    ("10", "   ", "reason", "Reason: say why"),
    ("10", "x" * 201, "reason", "at most 200 characters"),
    ("0", "zero", "points", "0 changes nothing"),
    ("ten", "words", "points", "whole number"),
    ("1.5", "fraction", "points", "whole number"),
    ("", "empty", "points", "enter the number"),
    ("1000001", "too big", "points", "at most 1000000"),
    ("-1000001", "too small", "points", "at most 1000000"),
    ("-104", "overdraw", "points", "has only 103 points"),
])
def test_a_refused_adjustment_changes_nothing(admin_app: Flask, client: FlaskClient,
                                              shop: Shop, points: str, reason: str,
                                              field: str, message: str) -> None:
    member_id = shop.members[3]
    before = _counts(admin_app)
    answer = _adjust(client, member_id, points, reason)
    assert answer.status_code == 400
    html = answer.get_data(as_text=True)
    assert re.search(rf'data-field="{field}">[^<]*{re.escape(message)}', html)
    assert _balance(admin_app, member_id) == 103
    assert _counts(admin_app) == before


def test_a_deduction_of_the_whole_balance_is_allowed(admin_app: Flask, client: FlaskClient,
                                                     shop: Shop) -> None:
    answer = _adjust(client, shop.members[3], "-103", "closing")
    assert answer.status_code == 200
    assert _balance(admin_app, shop.members[3]) == 0


def test_an_adjustment_without_the_csrf_token_is_refused(admin_app: Flask, client: FlaskClient,
                                                         shop: Shop) -> None:
    before = _counts(admin_app)
    answer = _adjust(client, shop.members[3], "10", "no token", csrf=False)
    assert answer.status_code == 403
    assert _balance(admin_app, shop.members[3]) == 103
    assert _counts(admin_app) == before


def test_another_merchants_member_cannot_be_adjusted(admin_app: Flask, client: FlaskClient,
                                                     shop: Shop) -> None:
    answer = _adjust(client, shop.other_member, "10", "nope")
    assert answer.status_code == 404
    assert _balance(admin_app, shop.other_member) == 500


def test_an_adjustment_reevaluates_the_tier(admin_app: Flask, client: FlaskClient,
                                            shop: Shop) -> None:
    # member03 was put in Gold (threshold 1000) with no orders: tier progress counts orders,
    # not adjustments, so re-evaluation after the adjustment moves them out, with history.
    answer = _adjust(client, shop.members[3], "5", "check")
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert "Tier history" in html
    history = re.search(r"Tier history.*?<tbody>(.*?)</tbody>", html, re.S)
    assert history is not None
    assert re.findall(r"<td>([^<]*)</td>", history.group(1))[1:] == ["Gold", "—", "adjustment"]
    with _db(admin_app) as session:
        assert session.get(Member, shop.members[3]).tier_id is None  # type: ignore[union-attr]


def test_the_full_page_and_japanese(client: FlaskClient, shop: Shop) -> None:
    page = client.get(f"/admin?view=members&member={shop.members[2]}&lang=ja")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "member02@example.com" in html and "ポイントの調整" in html and "獲得" in html
    listing = client.get("/admin/view/members?q=member0").get_data(as_text=True)
    assert "会員 10 人" in listing
