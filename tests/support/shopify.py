"""A local fake Shopify on pytest-httpserver, and the app configured to talk to it; helpers to
install a shop and to send what Shopify sends (signed webhooks, App Proxy requests)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from integrations.shopify.simulator import (
    FakeShopify,
    install_query,
    proxy_query,
    webhook_headers,
)
from plugin_server.runtime import Runtime

API_KEY = "test-api-key"
API_SECRET = "test-api-secret"
SHOP = "tea-house.myshopify.com"


def serve_fake(httpserver: HTTPServer, fake: FakeShopify) -> None:
    def handler(request: Request) -> Response:
        status, document = fake.handle(request.method, request.path, dict(request.headers),
                                       request.get_data())
        if isinstance(document, str):
            return Response(document, status=status, content_type="application/jsonl")
        return Response(json.dumps(document), status=status, content_type="application/json")

    fake.base_url = httpserver.url_for("").rstrip("/")
    httpserver.expect_request("").respond_with_handler(handler)
    httpserver.no_handler_status_code = 500


@pytest.fixture
def fake_shopify(httpserver: HTTPServer) -> Iterator[FakeShopify]:
    fake = FakeShopify(api_key=API_KEY, api_secret=API_SECRET)
    fake.add_shop(SHOP, name="Tea House", currency="EUR", timezone="Europe/Paris")
    serve_fake(httpserver, fake)
    yield fake


@pytest.fixture(name="store")
def shopify_store(tmp_path: Path, httpserver: HTTPServer,
                  fake_shopify: FakeShopify) -> Iterator[ShopifyStore]:
    """The app on a fresh SQLite file, talking to the fake Shopify; nothing installed yet."""
    from tests.conftest import make_app

    app = make_app(f"sqlite:///{tmp_path / 'loyalty.sqlite3'}", **shopify_overrides(httpserver))
    yield ShopifyStore(app=app, client=app.test_client(), fake=fake_shopify)
    app.extensions["loyalty"].database.dispose()


def shopify_overrides(httpserver: HTTPServer, **extra: object) -> dict[str, object]:
    return {"SHOPIFY_API_KEY": API_KEY, "SHOPIFY_API_SECRET": API_SECRET,
            "SHOPIFY_ADMIN_URL_OVERRIDE": httpserver.url_for("").rstrip("/"),
            "APP_URL": "https://loyalty.test", **extra}


@dataclass
class ShopifyStore:
    """One installed shop, seen from the outside: what Shopify and the storefront send."""

    app: Flask
    client: FlaskClient
    fake: FakeShopify
    shop: str = SHOP
    secret: str = API_SECRET
    merchant_id: int = 0
    _events: int = 0

    @property
    def runtime(self) -> Runtime:
        return self.app.extensions["loyalty"]

    def install(self) -> int:
        started = self.client.get("/shopify/install?" + urlencode(install_query(self.shop,
                                                                               self.secret)))
        assert started.status_code == 302, started.get_data(as_text=True)
        state = parse_qs(urlparse(started.headers["Location"]).query)["state"][0]
        done = self.client.get("/shopify/callback?" + urlencode(install_query(
            self.shop, self.secret, code=f"code-{len(self.fake.used_codes)}", state=state)))
        assert done.status_code == 302, done.get_data(as_text=True)
        from plugin_server.db import unit_of_work
        from plugin_server.shopify.install import shopify_merchant

        with unit_of_work(self.runtime.database) as session:
            merchant = shopify_merchant(session, self.shop)
            assert merchant is not None
            self.merchant_id = merchant.id
        return self.merchant_id

    def webhook(self, topic: str, payload: dict[str, Any] | bytes, *,
                event_id: str | None = None, secret: str | None = None) -> Any:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self._events += 1
        headers = webhook_headers(body, secret or self.secret, topic=topic, shop=self.shop,
                                  event_id=event_id or f"event-{self._events}")
        return self.client.post("/webhooks/shopify", data=body, headers=headers)

    def proxy(self, method: str, path: str, customer: str | None, **kwargs: Any) -> Any:
        query = proxy_query(self.shop, customer, self.secret)
        return self.client.open(f"/proxy{path}?{query}", method=method, **kwargs)


# -- helpers for the install, webhook, proxy, privacy and token tests ---------------------------


def second_store(store: ShopifyStore, shop: str, **details: str) -> ShopifyStore:
    """Another shop in the same fake Shopify, installed on the same app (its own client)."""
    store.fake.add_shop(shop, **details)
    other = ShopifyStore(app=store.app, client=store.app.test_client(), fake=store.fake,
                         shop=shop, secret=store.secret)
    install_directly(other)
    return other


def token_grants(fake: FakeShopify, grant_type: str | None = None) -> list[dict[str, Any]]:
    """The bodies of the token requests the fake received (all, or one grant type)."""
    return [data for kind, _shop, data in list(fake.requests) if kind == "token"
            and (grant_type is None or data.get("grant_type") == grant_type)]


def stored_token(store: ShopifyStore, merchant_id: int | None = None) -> Any:
    """The merchant's Admin API token as stored (decrypted)."""
    from integrations.shopify.oauth import ShopToken
    from plugin_server.db import unit_of_work
    from plugin_server.loyalty.merchants import read_credentials
    from plugin_server.models import Merchant

    with unit_of_work(store.runtime.database) as session:
        merchant = session.get(Merchant, merchant_id or store.merchant_id)
        assert merchant is not None
        values = read_credentials(merchant, store.runtime.settings.ENCRYPTION_KEY)
        return ShopToken.from_dict(values["token"])


def rewrite_token(store: ShopifyStore, merchant_id: int | None = None, **changes: Any) -> Any:
    """Store the merchant's token with some fields changed (e.g. ``expires_at``)."""
    from dataclasses import replace

    from plugin_server.db import unit_of_work
    from plugin_server.models import Merchant
    from plugin_server.shopify.install import save_token

    token = replace(stored_token(store, merchant_id), **changes)
    with unit_of_work(store.runtime.database) as session:
        merchant = session.get(Merchant, merchant_id or store.merchant_id)
        assert merchant is not None
        save_token(merchant, store.runtime.settings.ENCRYPTION_KEY, token)
    return token


def merchant_rows(store: ShopifyStore, merchant_id: int | None = None) -> dict[str, int]:
    """How many rows each table holding ``merchant_id`` has for the merchant."""
    from sqlalchemy import func, select

    from plugin_server.db import unit_of_work
    from plugin_server.models import Base

    wanted = merchant_id or store.merchant_id
    with unit_of_work(store.runtime.database) as session:
        return {table.name: int(session.execute(
            select(func.count()).select_from(table).where(table.c.merchant_id == wanted)
        ).scalar_one()) for table in Base.metadata.sorted_tables if "merchant_id" in table.c}


def install_directly(store: ShopifyStore, *, currency: str = "EUR",
                     expires_in: int = 3600) -> int:
    """What a finished install leaves behind, without the OAuth round trip and the
    after-install job: an active merchant holding a token the fake honours. Faster than
    :meth:`ShopifyStore.install` for tests about what happens after the install."""
    import secrets
    from datetime import timedelta

    from integrations.shopify.oauth import ShopToken
    from plugin_server.db import unit_of_work
    from plugin_server.models import Merchant, utcnow
    from plugin_server.shopify.install import finish_install

    access, refresh = "shpat_" + secrets.token_hex(16), "shprt_" + secrets.token_hex(16)
    store.fake.access_tokens[access] = store.shop
    store.fake.refresh_tokens[refresh] = store.shop
    now = utcnow()
    token = ShopToken(shop=store.shop, access_token=access,
                      scope="read_orders,read_customers,write_discounts,write_app_proxy",
                      expires_at=now + timedelta(seconds=expires_in), refresh_token=refresh,
                      refresh_token_expires_at=now + timedelta(days=90))
    with unit_of_work(store.runtime.database) as session:
        installed = finish_install(session, store.shop, token,
                                   store.runtime.settings.ENCRYPTION_KEY)
        merchant = session.get(Merchant, installed.merchant_id)
        assert merchant is not None
        merchant.currency = currency
        merchant.sync_checkpoint = merchant.installed_at
        store.merchant_id = installed.merchant_id
    return store.merchant_id
