"""``POST /admin/redemptions/<id>/cancel`` on a Shopify shop played by the stand-in Shopify:
the code is deactivated in the shop first, and the points come back once, only when the shop
says the code was never used. Every refusal leaves the balance, the ledger and the code as
they were."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select, update

from integrations.shopify.oauth import ShopToken
from integrations.shopify.simulator import FakeShopify
from plugin_server.db import unit_of_work
from plugin_server.loyalty.audit import ledger_differences
from plugin_server.loyalty.ledger import post_entry
from plugin_server.loyalty.redeem import redeem_reward
from plugin_server.models import (
    AdminActivity,
    LedgerEntry,
    Member,
    Merchant,
    Order,
    Redemption,
    Reward,
    utcnow,
)
from plugin_server.shopify.install import save_token
from tests.support.admin import (
    API_KEY,
    API_SECRET,
    OTHER_SHOP,
    SHOP,
    csrf_token,
    signed_in_client,
)
from tests.support.shopify import serve_fake

START_BALANCE, COST = 100, 40


@dataclass(frozen=True)
class Issued:
    merchant_id: int
    member_id: int
    redemption_id: int
    code: str


def _db(app: Flask):  # type: ignore[no-untyped-def]
    return unit_of_work(app.extensions["loyalty"].database)


def _connect(app: Flask, fake: FakeShopify, shop: str) -> int:
    """The shop holds a token the stand-in honours (what an install leaves)."""
    access = "shpat_" + secrets.token_hex(8)
    fake.access_tokens[access] = shop
    now = utcnow()
    with _db(app) as session:
        merchant = session.query(Merchant).filter_by(shop=shop).one()
        save_token(merchant, app.extensions["loyalty"].settings.ENCRYPTION_KEY,
                   ShopToken(shop=shop, access_token=access, scope="write_discounts",
                             expires_at=now + timedelta(hours=1), refresh_token="shprt_x",
                             refresh_token_expires_at=now + timedelta(days=90)))
        return merchant.id


def _issue(app: Flask, merchant_id: int, customer: str = "6012345") -> Issued:
    """A member with 100 points who redeemed 40 for a code the shop created."""
    runtime = app.extensions["loyalty"]
    with _db(app) as session:
        member = Member(merchant_id=merchant_id, customer_id=customer,
                        email=f"{customer}@example.com")
        reward = Reward(merchant_id=merchant_id, name="5 EUR off", kind="fixed_amount",
                        points_cost=COST, value=Decimal(5), expires_days=30)
        session.add_all([member, reward])
        session.flush()
        post_entry(session, member, kind="award", source_kind="test", source_id=customer,
                   points=START_BALANCE, reason="seed")
        member_id, reward_id = member.id, reward.id
    answer = redeem_reward(runtime.database, merchant_id, member_id, reward_id,
                           f"key-{customer}", runtime.code_issuers["shopify"])
    assert answer.status_code == 200, answer.body
    redemption = answer.body["redemption"]
    return Issued(merchant_id, member_id, redemption["id"], redemption["code"])


@pytest.fixture
def fake(admin_app: Flask, httpserver: HTTPServer) -> FakeShopify:
    fake = FakeShopify(api_key=API_KEY, api_secret=API_SECRET)
    for shop in (SHOP, OTHER_SHOP):
        fake.add_shop(shop)
    serve_fake(httpserver, fake)
    runtime = admin_app.extensions["loyalty"]
    runtime.settings = replace(runtime.settings,
                               SHOPIFY_ADMIN_URL_OVERRIDE=httpserver.url_for("").rstrip("/"))
    return fake


@pytest.fixture
def issued(admin_app: Flask, fake: FakeShopify) -> Issued:
    return _issue(admin_app, _connect(admin_app, fake, SHOP))


@pytest.fixture
def client(admin_app: Flask) -> FlaskClient:
    return signed_in_client(admin_app, SHOP)


def _cancel(client: FlaskClient, redemption_id: int, *, csrf: bool = True):  # type: ignore[no-untyped-def]
    data = {"csrf_token": csrf_token(client)} if csrf else {}
    return client.post(f"/admin/redemptions/{redemption_id}/cancel", data=data)


def _state(app: Flask, issued: Issued) -> tuple[int, str, list[tuple[str, int]], int]:
    """Balance, redemption state, the member's ledger (kind, points), activity rows."""
    with _db(app) as session:
        member = session.get(Member, issued.member_id)
        redemption = session.get(Redemption, issued.redemption_id)
        assert member is not None and redemption is not None
        ledger = [tuple(row) for row in session.execute(
            select(LedgerEntry.kind, LedgerEntry.points)
            .where(LedgerEntry.member_id == issued.member_id).order_by(LedgerEntry.id))]
        activity = session.execute(
            select(func.count()).select_from(AdminActivity)).scalar_one()
        return member.balance, redemption.state, ledger, activity  # type: ignore[return-value]


BEFORE = (START_BALANCE - COST, "issued", [("award", START_BALANCE), ("redemption", -COST)], 0)


def _deactivations(fake: FakeShopify) -> int:
    return sum(1 for kind, _shop, data in fake.requests
               if kind == "graphql" and "discountCodeDeactivate" in data["query"])


def test_the_page_offers_cancel_for_an_unused_code(client: FlaskClient, issued: Issued) -> None:
    html = client.get(f"/admin/view/members?member={issued.member_id}").get_data(as_text=True)
    assert f'action="/admin/redemptions/{issued.redemption_id}/cancel"' in html
    assert f'data-cancel-code="{issued.redemption_id}"' in html and ">Cancel code<" in html
    japanese = client.get(f"/admin/view/members?member={issued.member_id}&lang=ja")
    assert "コードを取り消す" in japanese.get_data(as_text=True)


def test_cancel_disables_the_code_and_returns_the_points_once(
        admin_app: Flask, client: FlaskClient, fake: FakeShopify, issued: Issued) -> None:
    assert fake.code_applies(issued.code)

    answer = _cancel(client, issued.redemption_id)

    html = answer.get_data(as_text=True)
    assert answer.status_code == 200, html
    assert f"Code {issued.code} was cancelled in the store and 40 points were returned" in html
    assert re.search(r"data-balance>100<", html)
    assert "data-cancel-code" not in html  # nothing left to cancel
    assert not fake.code_applies(issued.code)
    balance, state, ledger, _ = _state(admin_app, issued)
    assert (balance, state) == (START_BALANCE, "cancelled")
    assert ledger == [("award", 100), ("redemption", -40), ("redemption_void", 40)]
    assert sum(points for _kind, points in ledger) == balance
    with _db(admin_app) as session:
        assert ledger_differences(session) == []  # `loyalty check-ledger` (L4)
        actor, action, detail = session.execute(
            select(AdminActivity.actor, AdminActivity.action, AdminActivity.detail_json)).one()
    assert (action, actor) == ("redemption.cancel", "signed-in link")
    with _db(admin_app) as session:
        void = session.execute(select(LedgerEntry).where(
            LedgerEntry.kind == "redemption_void")).scalar_one()
        assert (void.actor, void.source_kind, void.source_id, void.redemption_id) == (
            "signed-in link", "redemption_void", str(issued.redemption_id),
            issued.redemption_id)
    assert json.loads(detail) == {"member": issued.member_id, "redemption": issued.redemption_id,
                                  "code": issued.code, "points": COST}


def test_a_second_cancel_credits_nothing(admin_app: Flask, client: FlaskClient,
                                         fake: FakeShopify, issued: Issued) -> None:
    assert _cancel(client, issued.redemption_id).status_code == 200
    after_first = _state(admin_app, issued)

    again = _cancel(client, issued.redemption_id)

    assert again.status_code == 409
    assert "already cancelled" in again.get_data(as_text=True)
    assert _state(admin_app, issued) == after_first
    assert after_first[0] == START_BALANCE and after_first[3] == 1


def test_signed_out_is_refused(admin_app: Flask, fake: FakeShopify, issued: Issued) -> None:
    answer = admin_app.test_client().post(f"/admin/redemptions/{issued.redemption_id}/cancel")
    assert answer.status_code == 401
    assert _state(admin_app, issued) == BEFORE and _deactivations(fake) == 0


def test_the_csrf_token_is_required(admin_app: Flask, client: FlaskClient, fake: FakeShopify,
                                    issued: Issued) -> None:
    answer = _cancel(client, issued.redemption_id, csrf=False)
    assert answer.status_code == 403
    assert _state(admin_app, issued) == BEFORE
    assert _deactivations(fake) == 0 and fake.code_applies(issued.code)


def test_another_merchants_redemption_is_not_found(admin_app: Flask, client: FlaskClient,
                                                   fake: FakeShopify) -> None:
    theirs = _issue(admin_app, _connect(admin_app, fake, OTHER_SHOP), customer="777")

    answer = _cancel(client, theirs.redemption_id)

    assert answer.status_code == 404
    assert "does not exist in your store" in answer.get_data(as_text=True)
    assert _state(admin_app, theirs) == BEFORE
    assert _deactivations(fake) == 0 and fake.code_applies(theirs.code)
    assert _cancel(client, 987654).status_code == 404


def test_a_code_the_shop_reports_used_is_refused(admin_app: Flask, client: FlaskClient,
                                                 fake: FakeShopify, issued: Issued) -> None:
    fake.use_code(issued.code)

    answer = _cancel(client, issued.redemption_id)

    html = answer.get_data(as_text=True)
    assert answer.status_code == 409
    assert re.search(r'data-problem>Code \S+ was not cancelled: the store reports it was used',
                     html)
    assert _state(admin_app, issued)[:3] == BEFORE[:3]
    assert not fake.code_applies(issued.code)
    with _db(admin_app) as session:
        action, detail = session.execute(
            select(AdminActivity.action, AdminActivity.detail_json)).one()
    assert action == "redemption.cancel_refused"  # the store's code was deactivated
    assert json.loads(detail)["usage_count"] == 1


def test_a_code_on_a_stored_order_is_refused_without_asking_the_shop(
        admin_app: Flask, client: FlaskClient, fake: FakeShopify, issued: Issued) -> None:
    now = utcnow()
    with _db(admin_app) as session:
        session.add(Order(merchant_id=issued.merchant_id, platform_order_id="820982911946154508",
                          name="#1001", member_id=issued.member_id, currency="EUR",
                          placed_at=now, platform_updated_at=now,
                          discount_codes=json.dumps([issued.code.lower()])))

    answer = _cancel(client, issued.redemption_id)

    assert answer.status_code == 409
    assert "it was used on order #1001" in answer.get_data(as_text=True)
    assert _state(admin_app, issued) == BEFORE and _deactivations(fake) == 0
    page = client.get(f"/admin/view/members?member={issued.member_id}").get_data(as_text=True)
    assert "data-cancel-code" not in page


def test_an_expired_code_is_refused(admin_app: Flask, client: FlaskClient, fake: FakeShopify,
                                    issued: Issued) -> None:
    with _db(admin_app) as session:
        session.execute(update(Redemption).where(Redemption.id == issued.redemption_id)
                        .values(expires_at=utcnow() - timedelta(minutes=1)))

    answer = _cancel(client, issued.redemption_id)

    assert answer.status_code == 409 and "has expired" in answer.get_data(as_text=True)
    assert _state(admin_app, issued) == BEFORE and _deactivations(fake) == 0


def test_the_shop_down_changes_nothing(admin_app: Flask, client: FlaskClient,
                                       fake: FakeShopify, issued: Issued,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("integrations.shopify.admin.BACKOFF_BASE", 0.001)
    fake.fail_next = [500] * 10

    answer = _cancel(client, issued.redemption_id)

    html = answer.get_data(as_text=True)
    assert answer.status_code == 502
    assert "the code is disabled and unused, so no points were returned" in html
    assert "Shopify could not deactivate the code" in html
    assert _state(admin_app, issued) == BEFORE
    fake.fail_next = []
    assert fake.code_applies(issued.code)
    # Once the shop answers again, the same click works.
    assert _cancel(client, issued.redemption_id).status_code == 200
    assert _state(admin_app, issued)[:2] == (START_BALANCE, "cancelled")
