"""Signing in to the merchant admin: Shopify session tokens (signature, audience, expiry, the
shop), one-time links for WooCommerce, operators and the demo, the session cookie, CSRF on
changes, frame policies, tenant isolation, and ``loyalty admin-link``."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

import pytest
from click.testing import CliRunner
from flask import Flask

from integrations.woocommerce.identity import admin_link_signature
from plugin_server.admin.activity import record_activity
from plugin_server.admin.login_links import issue_login_token, spend_login_token
from plugin_server.cli_admin import admin_link
from plugin_server.db import unit_of_work
from plugin_server.loyalty.widget_identity import widget_secret_for
from plugin_server.models import Merchant, utcnow
from tests.conftest import make_app
from tests.support.admin import (
    API_KEY,
    OTHER_SHOP,
    SHOP,
    WOO_STORE,
    csrf_token,
    merchant_named,
    session_token,
    signed_in_client,
)


@pytest.fixture
def app(admin_app: Flask) -> Flask:
    return admin_app


# -- refusals ----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/admin", "/admin/view/activity", "/admin/view/dashboard"])
def test_nobody_signed_in_is_refused(app: Flask, path: str) -> None:
    answer = app.test_client().get(path)
    assert answer.status_code == 401
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    assert "loyalty admin-link" in answer.get_data(as_text=True)


def test_a_forged_or_expired_cookie_is_refused(app: Flask) -> None:
    client = app.test_client()
    client.set_cookie("loyalty_admin", "forged.value", path="/admin")
    assert client.get("/admin").status_code == 401


# -- Shopify session tokens --------------------------------------------------------------------

def test_a_session_token_opens_the_embedded_admin(app: Flask) -> None:
    client = app.test_client()
    page = client.get(f"/admin?shop={SHOP}&embedded=1&id_token={session_token()}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'<meta name="shopify-api-key" content="{API_KEY}">' in html
    assert "cdn.shopify.com/shopifycloud/app-bridge.js" in html
    policy = page.headers["Content-Security-Policy"]
    assert f"frame-ancestors https://{SHOP} https://admin.shopify.com" in policy
    fragment = client.get("/admin/view/activity",
                          headers={"Authorization": f"Bearer {session_token()}"})
    assert fragment.status_code == 200


@pytest.mark.parametrize("token, why", [
    (lambda: session_token(expires_in=-120), "expired"),
    (lambda: session_token(aud="another-app"), "wrong audience"),
    (lambda: session_token(secret="not-our-secret"), "wrong signature"),
    (lambda: session_token(nbf=int(time.time()) + 600), "not valid yet"),
    (lambda: session_token("stranger.myshopify.com"), "shop never installed"),
])
def test_bad_session_tokens_are_refused_on_fetches(app: Flask, token: Any, why: str) -> None:
    answer = app.test_client().get("/admin/view/activity",
                                   headers={"Authorization": f"Bearer {token()}"})
    assert answer.status_code == 401, why


def test_a_token_for_another_shop_than_the_page_names_is_refused(app: Flask) -> None:
    answer = app.test_client().get(
        f"/admin?shop={SHOP}&id_token={session_token(OTHER_SHOP)}")
    assert answer.status_code == 401
    assert "another shop" in answer.get_data(as_text=True)


def test_an_expired_token_on_the_page_asks_shopify_for_a_fresh_one(app: Flask) -> None:
    answer = app.test_client().get(
        f"/admin?shop={SHOP}&id_token={session_token(expires_in=-120)}")
    assert answer.status_code == 302
    assert urlparse(answer.headers["Location"]).path == "/shopify/patch-id-token"


def test_session_tokens_need_no_csrf_token(app: Flask) -> None:
    # The browser never adds a bearer token by itself: a forged cross-site request has none.
    answer = app.test_client().post("/admin/logout",
                                    headers={"Authorization": f"Bearer {session_token()}"})
    assert answer.status_code == 303


# -- one-time links and the cookie -------------------------------------------------------------

def test_a_login_link_works_once_and_sets_a_safe_cookie(app: Flask) -> None:
    client = app.test_client()
    with unit_of_work(app.extensions["loyalty"].database) as session:
        token = issue_login_token(session, merchant_named(app, WOO_STORE).id)
    signed_in = client.get(f"/admin/login?token={token}")
    assert signed_in.status_code == 303 and signed_in.headers["Location"].endswith("/admin")
    cookie = signed_in.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "Path=/admin" in cookie
    page = client.get("/admin")
    assert page.status_code == 200 and WOO_STORE in page.get_data(as_text=True)
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    again = app.test_client().get(f"/admin/login?token={token}")
    assert again.status_code == 400 and "used already" in again.get_data(as_text=True)


def test_a_login_link_expires_after_five_minutes(app: Flask) -> None:
    from plugin_server.admin.login_links import LoginRefused

    database = app.extensions["loyalty"].database
    issued = utcnow() - timedelta(minutes=6)
    with unit_of_work(database) as session:
        token = issue_login_token(session, merchant_named(app, WOO_STORE).id, now=issued)
    with unit_of_work(database) as session, pytest.raises(LoginRefused, match="expired"):
        spend_login_token(session, token)
    for bad in ("", "x" * 300, "not-a-token-we-made"):
        assert app.test_client().get(f"/admin/login?token={bad}").status_code == 400


def test_changes_without_the_csrf_token_are_refused(app: Flask) -> None:
    client = signed_in_client(app, WOO_STORE)
    assert client.post("/admin/logout").status_code == 403
    assert client.post("/admin/logout", headers={"X-CSRF-Token": "guess"}).status_code == 403
    assert client.post("/admin/logout", data={"csrf_token": "guess"}).status_code == 403
    assert client.get("/admin").status_code == 200  # still signed in
    signed_out = client.post("/admin/logout", data={"csrf_token": csrf_token(client)})
    assert signed_out.status_code == 303
    assert client.get("/admin").status_code == 401


def test_each_merchant_sees_only_its_own_activity(app: Flask) -> None:
    database = app.extensions["loyalty"].database
    with unit_of_work(database) as session:
        record_activity(session, merchant_named(app, WOO_STORE).id, "someone", "settings.earning",
                        {"rate": "2"})
        record_activity(session, merchant_named(app, SHOP).id, "someone", "secret.shopify.change",
                        {})
    page = signed_in_client(app, WOO_STORE).get("/admin/view/activity").get_data(as_text=True)
    assert "settings.earning" in page and "secret.shopify.change" not in page


def test_the_demo_sign_in_is_refused_in_production(tmp_path: Any) -> None:
    production = make_app(f"sqlite:///{tmp_path / 'p.sqlite3'}", LOYALTY_ENV="production",
                          APP_URL="https://loyalty.test", SHOPIFY_API_KEY="k",
                          SHOPIFY_API_SECRET="s")
    assert production.test_client().post("/admin/demo-login").status_code == 404
    production.extensions["loyalty"].database.dispose()


# -- the WordPress plugin's link and the operator's command ------------------------------------

def test_the_plugin_gets_a_link_with_the_widget_secret(app: Flask) -> None:
    database = app.extensions["loyalty"].database
    merchant = merchant_named(app, WOO_STORE)
    with unit_of_work(database) as session:
        secret = widget_secret_for(session, session.get(Merchant, merchant.id),
                                   app.extensions["loyalty"].settings.ENCRYPTION_KEY)
    now = int(time.time())
    body = {"store_id": merchant.store_id, "ts": now,
            "sig": admin_link_signature(secret, merchant.store_id, now)}
    client = app.test_client()
    answer = client.post("/api/woocommerce/admin-link", json=body)
    assert answer.status_code == 200
    url = urlparse(answer.json["url"])
    assert (url.scheme, url.netloc, url.path) == ("https", "loyalty.test", "/admin/login")
    assert client.get(f"{url.path}?{url.query}").status_code == 303
    forged = {**body, "sig": admin_link_signature("guess", merchant.store_id, now)}
    assert client.post("/api/woocommerce/admin-link", json=forged).status_code == 401
    stale = {**body, "ts": now - 3600,
             "sig": admin_link_signature(secret, merchant.store_id, now - 3600)}
    assert client.post("/api/woocommerce/admin-link", json=stale).status_code == 401
    unknown = {**body, "store_id": "nobody"}
    assert client.post("/api/woocommerce/admin-link", json=unknown).status_code == 404
    assert client.post("/api/woocommerce/admin-link", data=b"[").status_code == 400


def test_admin_link_prints_a_one_time_link(app: Flask) -> None:
    runner = CliRunner()
    with app.app_context():
        result = runner.invoke(admin_link, [WOO_STORE])
        missing = runner.invoke(admin_link, ["nobody.example.com"])
    assert result.exit_code == 0, result.output
    url = urlparse(result.stdout.strip())
    assert (url.netloc, url.path) == ("loyalty.test", "/admin/login")
    client = app.test_client()
    assert client.get(f"{url.path}?{url.query}").status_code == 303
    assert WOO_STORE in client.get("/admin").get_data(as_text=True)
    assert missing.exit_code != 0
