"""Expiring offline tokens in use: a redemption on an expired token refreshes it first, the new
pair replaces the old one (whose refresh token is then dead), eight threads at once refresh
once, and a revoked refresh token gives the shopper a clear 502 and their points back
(DESIGN §7)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select

from integrations.shopify.oauth import ShopToken, TokenRevoked, refresh_if_needed
from integrations.shopify.simulated_payloads import rest_order
from integrations.shopify.simulator import FakeShopify
from plugin_server.db import unit_of_work
from plugin_server.loyalty.audit import ledger_differences
from plugin_server.models import Merchant, Redemption, utcnow
from plugin_server.runtime import Runtime
from plugin_server.shopify import tokens as tokens_module
from plugin_server.shopify.settings import shopify_config
from plugin_server.shopify.tokens import NotConnected, access_token
from tests.conftest import make_app
from tests.support.builders import customer, line, order
from tests.support.shopify import (
    ShopifyStore,
    fake_shopify,
    install_directly,
    rewrite_token,
    shopify_overrides,
    stored_token,
    token_grants,
)

__all__ = ["fake_shopify"]  # the fixture, for pytest


@pytest.fixture
def store(tmp_path: Path, httpserver: HTTPServer,
          fake_shopify: FakeShopify) -> Iterator[ShopifyStore]:
    app = make_app(f"sqlite:///{tmp_path / 'loyalty.sqlite3'}", **shopify_overrides(httpserver))
    installed = ShopifyStore(app=app, client=app.test_client(), fake=fake_shopify)
    install_directly(installed)  # an expiring pair the fake issued (see the first test)
    yield installed
    app.extensions["loyalty"].database.dispose()


def _earn(store: ShopifyStore, amount: str = "1000.00") -> None:
    now = utcnow()
    body = rest_order(order("5001", line("11", amount), who=customer("7001", "ana@example.com"),
                            created_at=now, updated_at=now, currency="EUR"))
    assert store.webhook("orders/paid", body).status_code == 200


def _fixed_amount(store: ShopifyStore) -> int:
    rewards = store.proxy("GET", "/api/program", None).json["rewards"]
    return next(r["id"] for r in rewards if r["kind"] == "fixed_amount")


def _redeem(store: ShopifyStore, key: str) -> Any:
    return store.proxy("POST", "/api/redeem", "7001", json={"reward_id": _fixed_amount(store)},
                       headers={"Idempotency-Key": key})


def _balance(store: ShopifyStore) -> int:
    return int(store.proxy("GET", "/api/me", "7001").json["balance"])


def test_the_install_stored_an_expiring_pair(store: ShopifyStore) -> None:
    # The real code grant: after an uninstall, the direct install's pair is gone.
    assert store.webhook("app/uninstalled", {"id": 1}).status_code == 200
    store.install()
    token = stored_token(store)
    assert token.access_token in store.fake.access_tokens
    assert token.refresh_token in store.fake.refresh_tokens
    assert token.expires_at is not None and token.expires_at > utcnow() + timedelta(minutes=50)
    assert token_grants(store.fake, "refresh_token") == []


@pytest.mark.parametrize("expires_in", [timedelta(minutes=-5), timedelta(seconds=30)])
def test_redeem_on_an_expiring_token_refreshes_it_first(store: ShopifyStore,
                                                        expires_in: timedelta) -> None:
    _earn(store)
    old = rewrite_token(store, expires_at=utcnow() + expires_in)
    answer = _redeem(store, "k-1")
    assert answer.status_code == 200, answer.json

    (grant,) = token_grants(store.fake, "refresh_token")
    assert grant["refresh_token"] == old.refresh_token
    new = stored_token(store)
    assert new.access_token != old.access_token and new.refresh_token != old.refresh_token
    assert new.expires_at is not None and new.expires_at > utcnow() + timedelta(minutes=50)
    assert new.refresh_token in store.fake.refresh_tokens
    # The old refresh token is dead at Shopify: using it again is refused.
    assert old.refresh_token not in store.fake.refresh_tokens
    config = shopify_config(store.runtime.settings)
    with pytest.raises(TokenRevoked):
        refresh_if_needed(config, old)
    # The discount was created with the new access token (the fake checks it).
    assert len(store.fake.discounts) == 1
    assert _balance(store) == 500


def test_a_token_good_for_a_while_is_not_refreshed(store: ShopifyStore) -> None:
    _earn(store)
    before = stored_token(store)
    assert _redeem(store, "k-1").status_code == 200
    assert token_grants(store.fake, "refresh_token") == []
    assert stored_token(store) == before


def test_eight_threads_on_an_expired_token_refresh_once(store: ShopifyStore) -> None:
    old = rewrite_token(store, expires_at=utcnow() - timedelta(minutes=1))
    threads_count = 8
    barrier = threading.Barrier(threads_count)
    results: list[ShopToken] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def fetch() -> None:
        try:
            barrier.wait(timeout=10)
            token = access_token(store.runtime, store.merchant_id)
            with lock:
                results.append(token)
        except BaseException as error:  # reported below
            with lock:
                errors.append(error)

    threads = [threading.Thread(target=fetch) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(results) == threads_count
    assert len(token_grants(store.fake, "refresh_token")) == 1
    assert {token.access_token for token in results} == {stored_token(store).access_token}
    assert {token.refresh_token for token in results} == {stored_token(store).refresh_token}
    assert results[0].access_token != old.access_token
    assert results[0].access_token in store.fake.access_tokens


def test_a_second_process_that_lost_the_race_uses_the_winners_pair(store: ShopifyStore) -> None:
    """Another process refreshed with the same old pair and stored the new one: this one's
    refresh is refused (invalid_grant), and it takes the pair now stored."""
    old = rewrite_token(store, expires_at=utcnow() - timedelta(minutes=1))
    config = shopify_config(store.runtime.settings)
    winner = refresh_if_needed(config, old)
    assert winner is not None
    real_stored = tokens_module._stored
    calls = {"n": 0}

    def stored_then_winner(runtime: Runtime, merchant_id: int) -> Any:
        # The first two reads see the old pair (before the other process stored its pair).
        calls["n"] += 1
        if calls["n"] == 3:
            rewrite_token(store, **{field: getattr(winner, field) for field in (
                "access_token", "expires_at", "refresh_token", "refresh_token_expires_at")})
        return real_stored(runtime, merchant_id)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tokens_module, "_stored", stored_then_winner)
        token = access_token(store.runtime, store.merchant_id)
    assert token.access_token == winner.access_token
    assert stored_token(store).access_token == winner.access_token


def test_a_revoked_refresh_token_is_a_clear_502_and_the_points_come_back(
        store: ShopifyStore) -> None:
    _earn(store)
    old = rewrite_token(store, expires_at=utcnow() - timedelta(minutes=1))
    del store.fake.refresh_tokens[old.refresh_token]  # the merchant revoked the app's access
    answer = _redeem(store, "k-1")
    assert answer.status_code == 502
    body = answer.json
    assert body["error"] == "platform_refused"
    assert "install" in body["message"] and "shpat_" not in body["message"]
    assert old.refresh_token not in body["message"]
    assert _balance(store) == 1000
    assert store.fake.discounts == []
    with unit_of_work(store.runtime.database) as session:
        (redemption,) = session.execute(select(Redemption)).scalars()
        assert redemption.state == "voided"
        assert ledger_differences(session) == []
    # The dead pair is forgotten, so that opening the app runs the code grant again.
    with unit_of_work(store.runtime.database) as session:
        merchant = session.get(Merchant, store.merchant_id)
        assert merchant is not None and merchant.credentials is None
    from urllib.parse import urlencode

    from integrations.shopify.simulator import install_query

    opened = store.client.get("/shopify/install?" + urlencode(install_query(store.shop,
                                                                            store.secret)))
    assert opened.status_code == 302 and "/admin/oauth/authorize" in opened.headers["Location"]
    # Asking again gives the same clear answer (the key replays it), a new key tries again.
    assert _redeem(store, "k-1").status_code == 502
    assert _redeem(store, "k-2").status_code == 502
    assert _balance(store) == 1000


def test_access_token_after_uninstall_is_not_connected(store: ShopifyStore) -> None:
    store.webhook("app/uninstalled", {"id": 1})
    with pytest.raises(NotConnected):
        access_token(store.runtime, store.merchant_id)
    assert token_grants(store.fake, "refresh_token") == []
