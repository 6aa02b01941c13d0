"""A WooCommerce store for end-to-end tests: the app on a temporary SQLite database and a
stand-in store on pytest-httpserver, with the steps a test takes (connect, deliver, read
balances)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from flask import Flask
from flask.testing import FlaskClient
from pytest_httpserver import HTTPServer

from integrations.woocommerce.simulator import FakeWooCommerce
from plugin_server.db import unit_of_work
from plugin_server.models import InboxEvent, Member, Merchant
from tests.conftest import make_app

APP_URL = "https://loyalty.test"
CUSTOMER = {"customer_id": 7, "billing": {
    "first_name": "Ana", "last_name": "Silva", "email": "ana@example.com", "company": "",
    "address_1": "1 Rua", "address_2": "", "city": "Porto", "state": "", "postcode": "4000",
    "country": "PT", "phone": ""}}


@dataclass
class Woo:
    app: Flask
    client: FlaskClient
    fake: FakeWooCommerce
    store_url: str
    user_id: str = ""

    @property
    def runtime(self) -> Any:
        return self.app.extensions["loyalty"]

    def merchant(self) -> Merchant:
        with unit_of_work(self.runtime.database) as session:
            found = session.query(Merchant).filter_by(platform="woocommerce",
                                                      shop=self.store_url).one()
            session.expunge(found)
            return found

    def secret(self) -> str:
        """The webhook secret the server registered its subscriptions with."""
        secrets = set(self.fake.webhook_secrets.values())
        assert len(secrets) == 1
        return secrets.pop()

    def deliver(self, topic: str, order: dict[str, Any], secret: str | None = None) -> Any:
        body, headers = self.fake.signed_delivery(topic, order, secret or self.secret())
        return self.client.post(f"/webhooks/woocommerce/{self.merchant().store_id}",
                                data=body, headers=headers)

    def balance(self, customer_id: str = "7") -> int:
        with unit_of_work(self.runtime.database) as session:
            member = session.query(Member).filter_by(merchant_id=self.merchant().id,
                                                     customer_id=customer_id).one_or_none()
            return member.balance if member else 0

    def events(self) -> int:
        with unit_of_work(self.runtime.database) as session:
            return session.query(InboxEvent).count()

    def connect(self) -> None:
        started = self.client.get(f"/woocommerce/connect?store_url={self.store_url}")
        assert started.status_code == 302, started.get_data(as_text=True)
        target = urlparse(started.headers["Location"])
        assert f"{target.scheme}://{target.netloc}" == self.store_url
        assert target.path == "/wc-auth/v1/authorize"
        query = {key: values[0] for key, values in parse_qs(target.query).items()}
        assert query["scope"] == "read_write" and query["app_name"]
        assert query["callback_url"] == f"{APP_URL}/woocommerce/auth-callback"
        assert query["return_url"] == f"{APP_URL}/woocommerce/return"
        self.user_id = query["user_id"]
        keys = self.fake.issue_keys(user_id=self.user_id)
        answer = self.client.post("/woocommerce/auth-callback",
                                  data=self.fake.callback_body(keys),
                                  content_type="application/json")
        assert answer.status_code == 200, answer.get_data(as_text=True)


def open_woo(tmp_path: Path, httpserver: HTTPServer, **settings: Any) -> Iterator[Woo]:
    fake = FakeWooCommerce()
    store_url = fake.serve_with(httpserver)
    app = make_app(f"sqlite:///{tmp_path / 'loyalty.sqlite3'}", APP_URL=APP_URL, **settings)
    yield Woo(app, app.test_client(), fake, store_url)
    app.extensions["loyalty"].database.dispose()


