"""The merchant admin under test: an app with two Shopify shops and one WooCommerce store
(all active, currency EUR), signed-in clients, CSRF tokens, and Shopify session tokens."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from plugin_server.admin.login_links import issue_login_token
from plugin_server.db import unit_of_work
from plugin_server.models import Merchant, utcnow

API_KEY, API_SECRET = "admin-test-key", "admin-test-secret"
SHOP, OTHER_SHOP = "tea-house.myshopify.com", "coffee-bar.myshopify.com"
WOO_STORE = "https://shop.example.com"


@pytest.fixture
def admin_app(tmp_path: Path) -> Iterator[Flask]:
    from tests.conftest import make_app  # conftest imports this module

    app = make_app(f"sqlite:///{tmp_path / 'admin.sqlite3'}", SHOPIFY_API_KEY=API_KEY,
                   SHOPIFY_API_SECRET=API_SECRET, APP_URL="https://loyalty.test")
    with unit_of_work(app.extensions["loyalty"].database) as session:
        now = utcnow()
        for number, (platform, shop) in enumerate((("shopify", SHOP), ("shopify", OTHER_SHOP),
                                                   ("woocommerce", WOO_STORE))):
            session.add(Merchant(platform=platform, shop=shop, name=shop, status="active",
                                 currency="EUR", store_id=f"store{number}",
                                 installed_at=now, created_at=now, updated_at=now))
    yield app
    app.extensions["loyalty"].database.dispose()


def merchant_named(app: Flask, shop: str) -> Merchant:
    with unit_of_work(app.extensions["loyalty"].database) as session:
        found = session.query(Merchant).filter_by(shop=shop).one()
        session.expunge(found)
        return found


def session_token(shop: str = SHOP, *, aud: str = API_KEY, secret: str = API_SECRET,
                  expires_in: int = 60, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": f"https://{shop}/admin", "dest": f"https://{shop}", "aud": aud,
            "sub": "42", "exp": now + expires_in, "nbf": now - 5, "iat": now - 5,
            "jti": f"jti-{now}-{expires_in}", "sid": "session", **claims}
    return jwt.encode(body, secret, algorithm="HS256")


def signed_in_client(app: Flask, shop: str) -> FlaskClient:
    client = app.test_client()
    with unit_of_work(app.extensions["loyalty"].database) as session:
        token = issue_login_token(session, merchant_named(app, shop).id)
    assert client.get(f"/admin/login?token={token}").status_code == 303
    return client


def csrf_token(client: FlaskClient) -> str:
    page = client.get("/admin").get_data(as_text=True)
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert found is not None
    return found.group(1)


