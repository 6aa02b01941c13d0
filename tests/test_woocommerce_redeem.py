"""Rewards as WooCommerce coupons when the store's answers go wrong: a creation whose answer
was lost is found again rather than made twice, and a code the merchant already uses is
replaced by a fresh one (DESIGN §8, "Coupons")."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from integrations.base import DiscountRequest
from integrations.woocommerce.coupons import coupon_redemption_id
from integrations.woocommerce.identity import signed_identity
from plugin_server.db import unit_of_work
from plugin_server.loyalty.widget_identity import widget_secret_for
from plugin_server.models import Merchant, utcnow
from plugin_server.woocommerce.coupons import woocommerce_code_issuer
from tests.support.woo_store import CUSTOMER, Woo, open_woo


@pytest.fixture
def woo(tmp_path: Path, httpserver: HTTPServer) -> Iterator[Woo]:
    yield from open_woo(tmp_path, httpserver)


def _request(woo: Woo, code: str, redemption_id: int = 41) -> DiscountRequest:
    now = utcnow()
    return DiscountRequest(merchant_id=woo.merchant().id, redemption_id=redemption_id,
                           code=code, kind="fixed_amount", value=Decimal("5.00"),
                           currency="USD", customer_id="7", email="ana@example.com",
                           starts_at=now, ends_at=now + timedelta(days=90),
                           minimum_subtotal=None, title="5 off")


def _lose_first_answer(woo: Woo, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The store creates the first coupon, but its answer never arrives (a gateway timeout)."""
    create = woo.fake._create_coupon
    calls: list[int] = []

    def lossy(document: dict[str, Any]) -> Any:
        answer = create(document)
        calls.append(answer[0])
        if len(calls) == 1:
            return 504, {}, {"code": "gateway_timeout", "message": "upstream timed out"}
        return answer

    monkeypatch.setattr(woo.fake, "_create_coupon", lossy)
    return calls


def test_a_lost_answer_finds_the_coupon_instead_of_making_a_second(
        woo: Woo, monkeypatch: pytest.MonkeyPatch) -> None:
    woo.connect()
    monkeypatch.setattr("integrations.woocommerce.client.BACKOFF_BASE", 0.01)
    calls = _lose_first_answer(woo, monkeypatch)
    issued = woocommerce_code_issuer(woo.runtime)(_request(woo, "LOYAL-AAAA-1111"))
    assert calls == [201, 400]  # created, then "already exists" on the repeat
    assert issued.code == "LOYAL-AAAA-1111"
    assert len(woo.fake.coupons) == 1
    assert issued.platform_discount_id == str(woo.fake.coupons[0]["id"])
    assert coupon_redemption_id(woo.fake.coupons[0]) == "41"


def test_a_code_the_merchant_uses_already_is_replaced(woo: Woo) -> None:
    woo.connect()
    woo.fake.coupons.append({"id": 900, "code": "loyal-bbbb-2222", "meta_data": []})
    issued = woocommerce_code_issuer(woo.runtime)(_request(woo, "LOYAL-BBBB-2222"))
    assert issued.code != "LOYAL-BBBB-2222"
    ours = [coupon for coupon in woo.fake.coupons if coupon_redemption_id(coupon) == "41"]
    assert [coupon["code"] for coupon in ours] == [issued.code.lower()]
    # Another redemption's coupon with the code is not ours either.
    issued_again = woocommerce_code_issuer(woo.runtime)(_request(woo, issued.code,
                                                                 redemption_id=42))
    assert issued_again.code != issued.code


def test_a_shopper_redeeming_through_a_lost_answer_gets_one_coupon(
        woo: Woo, monkeypatch: pytest.MonkeyPatch) -> None:
    woo.connect()
    monkeypatch.setattr("integrations.woocommerce.client.BACKOFF_BASE", 0.01)
    woo.deliver("order.created", woo.fake.add_order(status="processing", line_items=[
        {"name": "Kettle", "product_id": 5, "quantity": 1, "total": "800.00"}], **CUSTOMER))
    merchant = woo.merchant()
    with unit_of_work(woo.runtime.database) as session:
        found = session.get(Merchant, merchant.id)
        assert found is not None
        secret = widget_secret_for(session, found, woo.runtime.settings.ENCRYPTION_KEY)
    token = woo.client.post("/api/storefront/session", json=signed_identity(
        secret, merchant.store_id, "7", "ana@example.com")).json["token"]
    reward = woo.client.get(f"/api/storefront/program?store_id={merchant.store_id}"
                            ).json["rewards"][0]
    _lose_first_answer(woo, monkeypatch)
    redeemed = woo.client.post("/api/storefront/redeem", json={"reward_id": reward["id"]},
                               headers={"Authorization": f"Bearer {token}",
                                        "Idempotency-Key": "k1"})
    assert redeemed.status_code == 200, redeemed.json
    assert len(woo.fake.coupons) == 1
    assert woo.fake.coupons[0]["code"] == redeemed.json["redemption"]["code"].lower()
