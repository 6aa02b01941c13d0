"""The demo plays a Shopify store: a stand-in Shopify (``integrations.shopify.simulator``)
serves OAuth and the Admin API on a loopback port, the demo shop installs the app through
the real install routes, its orders arrive as signed ``POST /webhooks/shopify`` deliveries and
its storefront reaches the API through App Proxy-signed requests. Development only."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from flask import Flask
from sqlalchemy import select
from werkzeug import Request, Response
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.test import Client

from integrations.base import Order
from integrations.shopify.oauth import ShopToken
from integrations.shopify.simulated_payloads import rest_order, rest_refund
from integrations.shopify.simulator import (
    FakeShopify,
    install_query,
    proxy_query,
    webhook_headers,
)

from .db import unit_of_work
from .loyalty.merchants import read_credentials
from .models import Merchant
from .runtime import Runtime

DEMO_SHOPIFY_SHOP = "demo-tea-house.myshopify.com"
DEMO_API_KEY = "demo-api-key"
DEMO_API_SECRET = "demo-api-secret-not-for-production"


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """The stand-in's traffic is not the demo's news."""


class DemoShopify:
    """The stand-in Shopify and a client that speaks to the app the way Shopify does."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.fake = FakeShopify(api_key=DEMO_API_KEY, api_secret=DEMO_API_SECRET)
        self.fake.add_shop(DEMO_SHOPIFY_SHOP, name="Demo Tea House", currency="USD",
                           timezone="America/New_York")
        self._server: BaseWSGIServer | None = None
        self._events = 0
        self._lock = threading.Lock()

    @property
    def runtime(self) -> Runtime:
        return self.app.extensions["loyalty"]

    def start(self) -> str:
        """Serve the stand-in on a free loopback port and point the app at it."""
        server = make_server("127.0.0.1", 0, self._wsgi, threaded=True,
                             request_handler=_QuietHandler)
        threading.Thread(target=server.serve_forever, name="demo-shopify", daemon=True).start()
        self._server = server
        base = f"http://127.0.0.1:{server.server_port}"
        self.fake.base_url = base
        settings = replace(self.runtime.settings, SHOPIFY_API_KEY=DEMO_API_KEY,
                           SHOPIFY_API_SECRET=DEMO_API_SECRET, SHOPIFY_ADMIN_URL_OVERRIDE=base)
        self.runtime.settings = settings
        self.app.config.update(settings.as_flask_config())
        return base

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        status, document = self.fake.handle(request.method, request.path,
                                            dict(request.headers), request.get_data())
        body = document if isinstance(document, str) else json.dumps(document)
        return Response(body, status=status, content_type="application/json")(
            environ, start_response)

    def _client(self) -> Client:
        return Client(self.app)

    def install(self) -> None:
        """Install the app in the demo shop through /shopify/install and /shopify/callback."""
        client = self._client()
        started = client.get("/shopify/install?" + urlencode(
            install_query(DEMO_SHOPIFY_SHOP, DEMO_API_SECRET)))
        if started.status_code == 200:
            # Installed by an earlier run (the app says so and grants nothing new): this
            # run's stand-in honours the token that run issued, as the real Shopify would.
            self._honour_stored_token()
            return
        if started.status_code != 302:
            raise RuntimeError(f"demo install refused: {started.get_data(as_text=True)[:300]}")
        state = parse_qs(urlparse(started.headers["Location"]).query)["state"][0]
        done = client.get("/shopify/callback?" + urlencode(install_query(
            DEMO_SHOPIFY_SHOP, DEMO_API_SECRET, code=f"demo-{state[:12]}", state=state)))
        if done.status_code != 302:
            raise RuntimeError(f"demo callback refused: {done.get_data(as_text=True)[:300]}")

    def _honour_stored_token(self) -> None:
        runtime = self.runtime
        with unit_of_work(runtime.database) as session:
            merchant = session.execute(select(Merchant).where(
                Merchant.platform == "shopify", Merchant.shop == DEMO_SHOPIFY_SHOP)
            ).scalar_one()
            token = ShopToken.from_dict(read_credentials(
                merchant, runtime.settings.ENCRYPTION_KEY)["token"])
        self.fake.access_tokens[token.access_token] = DEMO_SHOPIFY_SHOP
        if token.refresh_token:
            self.fake.refresh_tokens[token.refresh_token] = DEMO_SHOPIFY_SHOP

    def deliver(self, topic: str, payload: dict[str, Any], event_id: str | None = None) -> int:
        """Send one webhook, signed as Shopify signs it; returns the HTTP status."""
        with self._lock:
            self._events += 1
            number = self._events
        body = json.dumps(payload).encode()
        headers = webhook_headers(body, DEMO_API_SECRET, topic=topic, shop=DEMO_SHOPIFY_SHOP,
                                  event_id=event_id or f"demo-event-{number}")
        return self._client().post("/webhooks/shopify", data=body, headers=headers).status_code

    def deliver_order(self, topic: str, order: Order, event_id: str) -> int:
        if topic == "refunds/create" and order.refunds:
            return self.deliver(topic, rest_refund(order.refunds[-1], order.currency), event_id)
        return self.deliver(topic, rest_order(order), event_id)

    def storefront(self, method: str, path: str, customer_id: str | None,
                   body: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """A storefront call through the App Proxy: ``/apps/loyalty{path}`` on the shop."""
        query = proxy_query(DEMO_SHOPIFY_SHOP, customer_id, DEMO_API_SECRET)
        answer = self._client().open(f"/proxy{path}?{query}", method=method, json=body,
                                     headers=headers or {})
        return answer.status_code, answer.get_json(silent=True)
