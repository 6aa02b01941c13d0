"""Installing the app over HTTP when the request is not what Shopify sends: hostile shop
domains, bad or stale signatures, and every way the callback's ``state`` can be wrong. Each is
refused with a 400 page before any redirect or call to Shopify (DESIGN §7, §11)."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from integrations.shopify.simulator import FakeShopify, install_query
from plugin_server.db import unit_of_work
from plugin_server.models import Merchant, OAuthNonce, utcnow
from plugin_server.shopify.install import InstallError, consume_state, issue_state
from plugin_server.web.shopify_auth import STATE_COOKIE
from tests.conftest import make_app
from tests.support.shopify import (
    API_SECRET,
    SHOP,
    ShopifyStore,
    fake_shopify,
    shopify_overrides,
    shopify_store,
    token_grants,
)

__all__ = ["fake_shopify", "shopify_store"]  # fixtures, for pytest

OTHER_SHOP = "other-shop.myshopify.com"


def _refused(answer: TestResponse, fake: FakeShopify, label: str = "") -> str:
    """A 400 page, no redirect, no cookie, and Shopify never heard of it."""
    text = answer.get_data(as_text=True)
    assert answer.status_code == 400, (label, text)
    assert "Location" not in answer.headers, label
    assert STATE_COOKIE not in answer.headers.get("Set-Cookie", ""), label
    assert answer.mimetype == "text/html", label
    assert "could not be installed" in text, label
    assert fake.requests == [], label
    return text


def _nonces(store: ShopifyStore) -> int:
    with unit_of_work(store.runtime.database) as session:
        return int(session.execute(select(func.count()).select_from(OAuthNonce)).scalar_one())


def _merchants(store: ShopifyStore) -> int:
    with unit_of_work(store.runtime.database) as session:
        return int(session.execute(select(func.count()).select_from(Merchant)).scalar_one())


def _start(store: ShopifyStore, client: FlaskClient | None = None, shop: str = SHOP) -> str:
    """GET /shopify/install as Shopify sends it; the ``state`` of the authorize redirect."""
    client = client or store.client
    started = client.get("/shopify/install?" + urlencode(install_query(shop, API_SECRET)))
    assert started.status_code == 302, started.get_data(as_text=True)
    return parse_qs(urlparse(started.headers["Location"]).query)["state"][0]


def _callback(store: ShopifyStore, state: str, client: FlaskClient | None = None,
              shop: str = SHOP, code: str = "code-1", secret: str = API_SECRET,
              **extra: str) -> TestResponse:
    client = client or store.client
    query = install_query(shop, secret, code=code, state=state, **extra)
    return client.get("/shopify/callback?" + urlencode(query))


# -- the shop domain ---------------------------------------------------------------------------

HOSTILE_SHOPS = [
    "evil.com", "a.myshopify.com.evil.com", "a.myshopify.com@evil.com", "a.myshopify.com:8080",
    "127.0.0.1", "[::1]", "2130706433", "a.MYSHOPIFY.com", "A.MyShopify.Com", "", " ",
    "https://a.myshopify.com", "a.myshopify.com/admin", "a.myshopify.com\n", "-a.myshopify.com",
    ".myshopify.com", "a.myshopify.com.", "a.myshopify.com%2eevil.com", "evil.com#.myshopify.com",
    "a.myshopify.com\\@evil.com", "xn--80ak6aa92e.com",
]


def test_hostile_shops_are_refused_before_any_redirect_or_call(store: ShopifyStore) -> None:
    # Correctly signed each time: the shop alone is what is wrong. (One app for all values
    # keeps this fast; the failure names the value.)
    for shop in HOSTILE_SHOPS:
        started = store.client.get("/shopify/install?" + urlencode(install_query(shop,
                                                                                 API_SECRET)))
        _refused(started, store.fake, shop)
        _refused(_callback(store, "some-state", shop=shop), store.fake, shop)
    assert _nonces(store) == 0
    assert _merchants(store) == 0


def test_install_without_shop_or_with_two_shops_is_refused(store: ShopifyStore) -> None:
    query = install_query(SHOP, API_SECRET)
    del query["shop"]
    _refused(store.client.get("/shopify/install?" + urlencode(query)), store.fake)
    doubled = urlencode(install_query(SHOP, API_SECRET)) + "&shop=evil.myshopify.com"
    _refused(store.client.get("/shopify/install?" + doubled), store.fake)


# -- the query's signature and age -------------------------------------------------------------

def test_install_with_a_bad_or_missing_hmac_is_refused(store: ShopifyStore) -> None:
    wrong = install_query(SHOP, "not-the-secret")
    text = _refused(store.client.get("/shopify/install?" + urlencode(wrong)), store.fake)
    assert "hmac" in text
    missing = install_query(SHOP, API_SECRET)
    del missing["hmac"]
    _refused(store.client.get("/shopify/install?" + urlencode(missing)), store.fake)
    tampered = install_query(SHOP, API_SECRET)
    tampered["shop"] = "tea-house2.myshopify.com"
    _refused(store.client.get("/shopify/install?" + urlencode(tampered)), store.fake)
    assert _nonces(store) == 0


@pytest.mark.parametrize("age", [24 * 3600 + 60, 30 * 24 * 3600, -(5 * 60 + 60)])
def test_install_with_a_stale_or_future_timestamp_is_refused(store: ShopifyStore,
                                                             age: int) -> None:
    query = install_query(SHOP, API_SECRET, timestamp=str(int(time.time()) - age))
    text = _refused(store.client.get("/shopify/install?" + urlencode(query)), store.fake)
    assert "too old" in text


def test_install_with_a_non_numeric_timestamp_is_refused(store: ShopifyStore) -> None:
    query = install_query(SHOP, API_SECRET, timestamp="yesterday")
    _refused(store.client.get("/shopify/install?" + urlencode(query)), store.fake)


def test_a_good_install_sets_a_bound_state_cookie(store: ShopifyStore) -> None:
    answer = store.client.get("/shopify/install?" + urlencode(install_query(SHOP, API_SECRET)))
    assert answer.status_code == 302
    target = urlparse(answer.headers["Location"])
    params = parse_qs(target.query)
    assert target.path == "/admin/oauth/authorize"
    assert params["redirect_uri"] == ["https://loyalty.test/shopify/callback"]
    state = params["state"][0]
    assert len(state) >= 22  # at least 128 random bits, URL-safe base64
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith(STATE_COOKIE + "=") and "HttpOnly" in cookie
    assert "Path=/shopify" in cookie
    assert store.fake.requests == []  # the redirect itself calls nobody


# -- the callback ------------------------------------------------------------------------------

def test_callback_without_the_state_cookie_is_refused(store: ShopifyStore) -> None:
    state = _start(store)
    stranger = store.app.test_client()  # another browser: no cookie
    text = _refused(_callback(store, state, client=stranger), store.fake)
    assert "state cookie" in text
    # The nonce was not spent by the refused attempt: the real browser still finishes.
    assert _callback(store, state).status_code == 302


def test_callback_with_an_altered_state_cookie_is_refused(store: ShopifyStore) -> None:
    state = _start(store)
    cookie = store.client.get_cookie(STATE_COOKIE, path="/shopify")
    assert cookie is not None
    value = cookie.value
    altered = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
    store.client.set_cookie(STATE_COOKIE, altered, path="/shopify")
    _refused(_callback(store, state), store.fake)
    store.client.set_cookie(STATE_COOKIE, "garbage", path="/shopify")
    _refused(_callback(store, state), store.fake)


def test_callback_with_a_cookie_signed_by_another_key_is_refused(store: ShopifyStore) -> None:
    state = _start(store)
    forged = URLSafeTimedSerializer("another-secret", salt="shopify-install-state").dumps(
        {"shop": SHOP, "state": state})
    store.client.set_cookie(STATE_COOKIE, forged, path="/shopify")
    _refused(_callback(store, state), store.fake)


def test_callback_with_a_foreign_state_is_refused(store: ShopifyStore) -> None:
    ours = _start(store)
    other_browser = store.app.test_client()
    theirs = _start(store, client=other_browser)
    # This browser's cookie with the other install's state, and the other way round.
    _refused(_callback(store, theirs), store.fake)
    _refused(_callback(store, ours, client=other_browser), store.fake)
    # A state nobody issued.
    _refused(_callback(store, "x" * 43), store.fake)
    assert _merchants(store) == 0


def test_callback_with_a_state_that_was_never_stored_is_refused(store: ShopifyStore) -> None:
    """Even a cookie that signs the state correctly needs the server-side nonce."""
    forged = URLSafeTimedSerializer("test-secret", salt="shopify-install-state").dumps(
        {"shop": SHOP, "state": "made-up-state-value"})
    store.client.set_cookie(STATE_COOKIE, forged, path="/shopify")
    text = _refused(_callback(store, "made-up-state-value"), store.fake)
    assert "expired or was already used" in text


def test_callback_with_a_cookie_for_another_shop_is_refused(store: ShopifyStore) -> None:
    store.fake.add_shop(OTHER_SHOP)
    state = _start(store, shop=OTHER_SHOP)
    # The cookie and nonce are for other-shop; the callback claims tea-house.
    _refused(_callback(store, state, shop=SHOP), store.fake)
    assert _merchants(store) == 0


def test_replayed_callback_is_refused(store: ShopifyStore) -> None:
    state = _start(store)
    cookie = store.client.get_cookie(STATE_COOKIE, path="/shopify")
    assert cookie is not None
    kept = cookie.value
    assert _callback(store, state, code="code-first").status_code == 302
    grants = len(token_grants(store.fake))
    assert grants == 1
    # The success cleared the cookie; an attacker who kept it replays with a fresh code.
    assert store.client.get_cookie(STATE_COOKIE, path="/shopify") is None
    store.client.set_cookie(STATE_COOKIE, kept, path="/shopify")
    replay = _callback(store, state, code="code-second")
    assert replay.status_code == 400
    assert "Location" not in replay.headers
    assert "already used" in replay.get_data(as_text=True)
    assert len(token_grants(store.fake)) == grants


def test_callback_with_a_bad_hmac_is_refused_and_keeps_the_state(store: ShopifyStore) -> None:
    state = _start(store)
    _refused(_callback(store, state, secret="not-the-secret"), store.fake)
    query = install_query(SHOP, API_SECRET, code="code-1", state=state)
    query["code"] = "code-2"  # signed for code-1
    _refused(store.client.get("/shopify/callback?" + urlencode(query)), store.fake)
    assert _callback(store, state).status_code == 302


def test_callback_older_than_a_day_is_refused(store: ShopifyStore) -> None:
    state = _start(store)
    old = str(int(time.time()) - 24 * 3600 - 5)
    text = _refused(_callback(store, state, timestamp=old), store.fake)
    assert "too old" in text


def test_callback_without_code_or_state_is_refused(store: ShopifyStore) -> None:
    state = _start(store)
    no_code = install_query(SHOP, API_SECRET, state=state)
    _refused(store.client.get("/shopify/callback?" + urlencode(no_code)), store.fake)
    no_state = install_query(SHOP, API_SECRET, code="code-1")
    _refused(store.client.get("/shopify/callback?" + urlencode(no_state)), store.fake)
    two_states = urlencode(install_query(SHOP, API_SECRET, code="c", state=state)) + (
        "&state=" + state)
    _refused(store.client.get("/shopify/callback?" + two_states), store.fake)


def test_a_refused_code_grant_is_a_502_page_and_installs_nothing(store: ShopifyStore) -> None:
    store.fake.used_codes.add("code-1")
    state = _start(store)
    answer = _callback(store, state, code="code-1")
    assert answer.status_code == 502
    assert "already used" in answer.get_data(as_text=True)
    assert "Location" not in answer.headers
    assert _merchants(store) == 0


# -- the nonce itself --------------------------------------------------------------------------

def test_state_expires_after_ten_minutes_and_is_bound_to_its_shop(store: ShopifyStore) -> None:
    database = store.runtime.database
    with unit_of_work(database) as session:
        old = issue_state(session, SHOP, now=utcnow() - timedelta(minutes=11))
        fresh = issue_state(session, SHOP)
    with unit_of_work(database) as session, pytest.raises(InstallError):
        consume_state(session, old, SHOP)
    with unit_of_work(database) as session, pytest.raises(InstallError):
        consume_state(session, fresh, OTHER_SHOP)
    with unit_of_work(database) as session:
        consume_state(session, fresh, SHOP)
    with unit_of_work(database) as session, pytest.raises(InstallError):
        consume_state(session, fresh, SHOP)


def test_rotated_secret_signs_installs_only_while_configured(
        tmp_path: Path, httpserver: HTTPServer, fake_shopify: FakeShopify) -> None:
    rotating = make_app(f"sqlite:///{tmp_path / 'a.sqlite3'}",
                        **shopify_overrides(httpserver, SHOPIFY_API_SECRET_OLD="old-secret"))
    plain = make_app(f"sqlite:///{tmp_path / 'b.sqlite3'}", **shopify_overrides(httpserver))
    try:
        query = urlencode(install_query(SHOP, "old-secret"))
        assert rotating.test_client().get("/shopify/install?" + query).status_code == 302
        answer = plain.test_client().get("/shopify/install?" + query)
        assert answer.status_code == 400 and "Location" not in answer.headers
        assert fake_shopify.requests == []
    finally:
        rotating.extensions["loyalty"].database.dispose()
        plain.extensions["loyalty"].database.dispose()
