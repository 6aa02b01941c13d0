"""``POST /webhooks/shopify`` when the delivery is not a good one: bad or missing signatures
(privacy topics included), secret rotation, signed bodies that cannot be parsed, and many
copies of one delivery at once (DESIGN §5 L1, §6)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select

from integrations.shopify.simulated_payloads import rest_order
from integrations.shopify.simulator import FakeShopify, webhook_headers, webhook_signature
from plugin_server.db import unit_of_work
from plugin_server.loyalty.audit import ledger_differences
from plugin_server.loyalty.inbox import list_events
from plugin_server.models import InboxEvent, LedgerEntry, Member, utcnow
from tests.conftest import make_app
from tests.support.builders import customer, line, order
from tests.support.fixtures import fixture_bytes
from tests.support.shopify import (
    SHOP,
    ShopifyStore,
    fake_shopify,
    install_directly,
    shopify_overrides,
)

__all__ = ["fake_shopify"]  # the fixture, for pytest

OLD_SECRET = "the-secret-before-rotation"
PRIVACY_TOPICS = ("customers/data_request", "customers/redact", "shop/redact")


def _store(tmp_path: Path, httpserver: HTTPServer, fake: FakeShopify,
           **overrides: object) -> ShopifyStore:
    app = make_app(f"sqlite:///{tmp_path / 'loyalty.sqlite3'}",
                   **shopify_overrides(httpserver, **overrides))
    return ShopifyStore(app=app, client=app.test_client(), fake=fake)


@pytest.fixture
def store(tmp_path: Path, httpserver: HTTPServer,
          fake_shopify: FakeShopify) -> Iterator[ShopifyStore]:
    installed = _store(tmp_path, httpserver, fake_shopify)
    install_directly(installed)
    yield installed
    installed.runtime.database.dispose()


@pytest.fixture
def any_store(any_database: str, httpserver: HTTPServer,
              fake_shopify: FakeShopify) -> Iterator[ShopifyStore]:
    """An installed shop on SQLite, then on PostgreSQL."""
    app = make_app(any_database, **shopify_overrides(httpserver))
    installed = ShopifyStore(app=app, client=app.test_client(), fake=fake_shopify)
    install_directly(installed)
    yield installed
    installed.runtime.database.dispose()


@pytest.fixture
def rotating(tmp_path: Path, httpserver: HTTPServer,
             fake_shopify: FakeShopify) -> Iterator[ShopifyStore]:
    installed = _store(tmp_path, httpserver, fake_shopify, SHOPIFY_API_SECRET_OLD=OLD_SECRET)
    install_directly(installed)
    yield installed
    installed.runtime.database.dispose()


def _paid_body(order_id: str = "5001", amount: str = "80.00",
               customer_id: str = "7001") -> dict[str, Any]:
    now = utcnow()
    return rest_order(order(order_id, line("11", amount), line("12", "20.00"),
                            who=customer(customer_id, "ana@example.com"),
                            created_at=now, updated_at=now, currency="EUR"))


def _inbox(store: ShopifyStore) -> list[InboxEvent]:
    with unit_of_work(store.runtime.database) as session:
        rows = list(session.execute(select(InboxEvent).order_by(InboxEvent.id)).scalars())
        session.expunge_all()
        return rows


def _balance(store: ShopifyStore, customer_id: str = "7001") -> int:
    with unit_of_work(store.runtime.database) as session:
        balance = session.execute(select(Member.balance).where(
            Member.merchant_id == store.merchant_id, Member.customer_id == customer_id)).scalar()
        return int(balance or 0)


def _privacy_body(topic: str) -> bytes:
    return fixture_bytes(f"shopify/webhooks/{topic.replace('/', '__')}.json")


# -- signatures --------------------------------------------------------------------------------

BAD_SIGNATURES = {
    "wrong secret": lambda body: webhook_signature(body, "not-the-secret"),
    "other body": lambda body: webhook_signature(body + b" ", "test-api-secret"),
    "hex instead of base64": lambda body: webhook_signature(body, "test-api-secret").encode()
    .hex(),
    "empty": lambda body: "",
    "garbage": lambda body: "%%%not base64%%%",
    "missing": None,
}


def test_bad_or_missing_signature_is_401_and_stores_nothing(store: ShopifyStore) -> None:
    # Every topic, the privacy ones included; one installed shop for all cases (fast).
    for topic in ("orders/paid", "app/uninstalled", *PRIVACY_TOPICS):
        body = (_privacy_body(topic) if topic in PRIVACY_TOPICS
                else json.dumps(_paid_body()).encode())
        for kind, sign in BAD_SIGNATURES.items():
            headers = webhook_headers(body, store.secret, topic=topic, shop=SHOP,
                                      event_id=f"evt-{topic}-{kind}")
            if sign is None:
                del headers["X-Shopify-Hmac-Sha256"]
            else:
                headers["X-Shopify-Hmac-Sha256"] = sign(body)
            answer = store.client.post("/webhooks/shopify", data=body, headers=headers)
            assert answer.status_code == 401, (topic, kind, answer.get_data(as_text=True))
    assert _inbox(store) == []
    assert _balance(store) == 0
    with unit_of_work(store.runtime.database) as session:
        assert session.execute(select(func.count()).select_from(Member)).scalar_one() == 0
    # Nothing happened to the shop either (app/uninstalled and shop/redact were refused).
    assert store.proxy("GET", "/api/program", None).status_code == 200


def test_a_tampered_body_is_refused(store: ShopifyStore) -> None:
    body = json.dumps(_paid_body()).encode()
    headers = webhook_headers(body, store.secret, topic="orders/paid", shop=SHOP,
                              event_id="evt-tampered")
    richer = body.replace(b'"80.00"', b'"8000.00"')
    assert richer != body
    answer = store.client.post("/webhooks/shopify", data=richer, headers=headers)
    assert answer.status_code == 401
    assert _inbox(store) == []


def test_signature_from_the_old_secret_is_accepted_during_rotation(
        rotating: ShopifyStore) -> None:
    body = _paid_body()
    answer = rotating.webhook("orders/paid", body, event_id="evt-old", secret=OLD_SECRET)
    assert answer.status_code == 200, answer.json
    assert answer.json["status"] == "stored"
    assert _balance(rotating) == 100
    # The current secret works too, and a third one does not.
    assert rotating.webhook("orders/paid", _paid_body("5002"), event_id="evt-new").json[
        "status"] == "stored"
    assert rotating.webhook("orders/paid", _paid_body("5003"), event_id="evt-x",
                            secret="neither").status_code == 401


def test_signature_from_the_old_secret_is_refused_without_rotation(store: ShopifyStore) -> None:
    answer = store.webhook("orders/paid", _paid_body(), event_id="evt-old", secret=OLD_SECRET)
    assert answer.status_code == 401
    assert [e.event_id for e in _inbox(store)] == []


def test_privacy_topics_signed_with_the_old_secret_are_accepted_during_rotation(
        rotating: ShopifyStore) -> None:
    answer = rotating.webhook("customers/data_request", _privacy_body("customers/data_request"),
                              secret=OLD_SECRET)
    assert answer.status_code == 200
    assert [e.topic for e in _inbox(rotating)] == ["customers/data_request"]


# -- signed but unusable bodies ----------------------------------------------------------------

def _without_line_items() -> bytes:
    body = _paid_body()
    del body["line_items"]
    return json.dumps(body).encode()


UNPARSABLE = {
    "not json": (b"this is not json {{{", "orders/paid"),
    "truncated json": (json.dumps(_paid_body()).encode()[:-20], "orders/paid"),
    "json array": (b"[1, 2, 3]", "orders/paid"),
    "json string": (b'"an order"', "orders/paid"),
    "json number": (b"42", "orders/paid"),
    "json null": (b"null", "orders/paid"),
    "empty body": (b"", "orders/paid"),
    "order without line_items": (_without_line_items(), "orders/paid"),
    "order id is an object": (b'{"id": {"a": 1}}', "orders/create"),
    "refund not an object": (b"[]", "refunds/create"),
    "redact not an object": (b'"customer"', "customers/redact"),
    "redact without customer": (b'{"shop_id": 1}', "customers/redact"),
    "data request garbage": (b"\x00\x01garbage", "customers/data_request"),
}


def test_signed_unparsable_bodies_are_stored_as_failed(store: ShopifyStore) -> None:
    for case, (body, topic) in UNPARSABLE.items():
        answer = store.webhook(topic, body, event_id=f"evt-{case}")
        assert answer.status_code == 200, (case, answer.get_data(as_text=True))
    with unit_of_work(store.runtime.database) as session:
        failed = {e.event_id: e for e in list_events(session, failed_only=True)}
        for case, (body, topic) in UNPARSABLE.items():
            event = failed.get(f"evt-{case}")
            assert event is not None, (case, [(e.event_id, e.state, e.reason)
                                              for e in list_events(session)])
            assert event.topic == topic, case
            assert event.reason, f"{case}: a failed delivery says why"
            assert event.payload == body, case  # kept as received, for the operator
        assert session.execute(select(func.count()).select_from(LedgerEntry)).scalar_one() == 0


def test_order_without_line_items_names_the_field(store: ShopifyStore) -> None:
    store.webhook("orders/paid", _without_line_items(), event_id="evt-lines")
    with unit_of_work(store.runtime.database) as session:
        (failed,) = list_events(session, failed_only=True)
        assert "line_items" in failed.reason and "PayloadError" in failed.reason


def test_non_object_json_says_so(store: ShopifyStore) -> None:
    store.webhook("orders/paid", b"[1, 2, 3]", event_id="evt-array")
    store.webhook("customers/redact", b'"customer"', event_id="evt-str")
    with unit_of_work(store.runtime.database) as session:
        reasons = {e.event_id: e.reason for e in list_events(session, failed_only=True)}
    assert "object" in reasons["evt-array"]
    assert "object" in reasons["evt-str"]


def test_signed_body_that_is_not_utf8_is_stored_as_failed(store: ShopifyStore) -> None:
    """DESIGN §6: an unparsable body with a valid signature is stored as failed, 200 (Shopify
    cannot fix it; a 401 only makes it retry and eventually drop the subscription)."""
    body = b"\xff\xfe\x00 not utf-8 \xc3\x28"
    answer = store.webhook("orders/paid", body, event_id="evt-bytes")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    with unit_of_work(store.runtime.database) as session:
        failed = [e for e in list_events(session, failed_only=True) if e.event_id == "evt-bytes"]
        assert len(failed) == 1 and failed[0].reason


def test_unparsable_delivery_does_not_block_the_next_one(store: ShopifyStore) -> None:
    store.webhook("orders/paid", b"[]", event_id="evt-bad")
    store.webhook("orders/paid", _paid_body(), event_id="evt-good")
    assert _balance(store) == 100
    states = {e.event_id: e.state for e in _inbox(store)}
    assert states["evt-bad"] == "failed" and states["evt-good"] == "processed"


def test_unknown_topic_is_stored_and_answered(store: ShopifyStore) -> None:
    answer = store.webhook("products/update", {"id": 1}, event_id="evt-product")
    assert answer.status_code == 200
    (event,) = [e for e in _inbox(store) if e.event_id == "evt-product"]
    assert event.state == "ignored" and "products/update" in event.reason


def test_delivery_for_a_shop_that_never_installed_stores_nothing(store: ShopifyStore) -> None:
    body = json.dumps(_paid_body()).encode()
    headers = webhook_headers(body, store.secret, topic="orders/paid",
                              shop="stranger.myshopify.com", event_id="evt-stranger")
    answer = store.client.post("/webhooks/shopify", data=body, headers=headers)
    assert answer.status_code == 200
    assert [e for e in _inbox(store) if e.event_id == "evt-stranger"] == []


def test_signed_delivery_with_a_bad_shop_header_is_refused(store: ShopifyStore) -> None:
    body = json.dumps(_paid_body()).encode()
    for domain in ("evil.com", "tea-house.myshopify.com.evil.com", "TEA-HOUSE.MYSHOPIFY.COM",
                   "tea-house.myshopify.com:443", ""):
        headers = webhook_headers(body, store.secret, topic="orders/paid", shop=domain,
                                  event_id="evt-domain")
        answer = store.client.post("/webhooks/shopify", data=body, headers=headers)
        assert answer.status_code in (400, 401), domain
    assert [e for e in _inbox(store) if e.event_id == "evt-domain"] == []


# -- one delivery, many times at once (L1) -----------------------------------------------------

def test_twenty_concurrent_copies_of_one_delivery_award_once(any_store: ShopifyStore) -> None:
    store = any_store
    body = json.dumps(_paid_body("7777", "80.00")).encode()
    headers = webhook_headers(body, store.secret, topic="orders/paid", shop=SHOP,
                              event_id="evt-burst")
    copies = 20
    barrier = threading.Barrier(copies)
    answers: list[tuple[int, str]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def deliver() -> None:
        client = store.app.test_client()
        try:
            barrier.wait(timeout=10)
            answer = client.post("/webhooks/shopify", data=body, headers=headers)
            with lock:
                answers.append((answer.status_code, (answer.json or {}).get("status", "")))
        except BaseException as error:  # reported below
            with lock:
                errors.append(error)

    threads = [threading.Thread(target=deliver) for _ in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(answers) == copies
    assert all(status == 200 for status, _ in answers), answers
    assert sorted(state for _, state in answers) == ["duplicate"] * (copies - 1) + ["stored"]
    rows = [e for e in _inbox(store) if e.event_id == "evt-burst"]
    assert len(rows) == 1 and rows[0].state == "processed"
    assert _balance(store) == 100
    with unit_of_work(store.runtime.database) as session:
        awards = session.execute(select(func.count()).select_from(LedgerEntry).where(
            LedgerEntry.merchant_id == store.merchant_id)).scalar_one()
        assert awards == 1
        assert ledger_differences(session) == []


def test_a_chunked_body_past_the_limit_is_413_and_stores_nothing(store: ShopifyStore) -> None:
    import io

    big = b'{"id": 1, "pad": "' + b"x" * (6 * 1024 * 1024) + b'"}'
    headers = webhook_headers(big, store.secret, topic="orders/paid", shop=SHOP,
                              event_id="evt-huge")
    headers["Transfer-Encoding"] = "chunked"
    answer = store.client.post("/webhooks/shopify", input_stream=io.BytesIO(big),
                               headers=headers,
                               environ_overrides={"wsgi.input_terminated": True})
    assert answer.status_code == 413
    assert [e for e in _inbox(store) if e.event_id == "evt-huge"] == []
