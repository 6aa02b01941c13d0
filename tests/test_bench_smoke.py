"""bench/webhook_ack.py's request builders make requests the app accepts: signed webhooks are
answered 200 and stored (and processed), signed App Proxy ``me`` queries answer the member's
history, also as the raw bytes the load generators send. No gunicorn, no wrk, no timing."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from bench import webhook_ack as bench


@pytest.fixture
def prepared(tmp_path: Path) -> tuple[Path, Any]:
    database = tmp_path / "bench.sqlite3"
    setup = bench.prepare_database(database, members=2, orders_each=3)
    assert setup.history_deliveries == 6
    return database, bench.make_app(database)  # JOBS_MODE=eager: processed after each commit


@pytest.fixture
def served(prepared: tuple[Path, Any]) -> Iterator[tuple[Path, int]]:
    database, app = prepared
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield database, server.server_port
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_signed_webhooks_are_stored_once_and_processed(prepared: tuple[Path, Any]) -> None:
    database, app = prepared
    client = app.test_client()
    requests = bench.webhook_requests(5, "smoke-")
    assert len({request.event_id for request in requests}) == 5
    assert all(4_000 < len(request.body) < 8_000 for request in requests)
    for request in requests:
        answer = bench.send(client, request)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        assert answer.get_json()["status"] == "stored"
    again = bench.send(client, requests[0])
    assert again.status_code == 200 and again.get_json()["status"] == "duplicate"
    rows = bench.inbox_rows(database, "smoke-")
    assert set(rows) == {request.event_id for request in requests}
    assert set(rows.values()) == {"processed"}


def test_signed_me_queries_show_the_members_history(prepared: tuple[Path, Any]) -> None:
    _database, app = prepared
    client = app.test_client()
    customers = bench.me_customers(2)
    for request in bench.me_requests(4, customers):
        answer = bench.send(client, request)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        document = answer.get_json()
        assert document["customer_id"] in customers
        assert len(document["history"]) >= 3 and document["balance"] > 0


def test_raw_requests_through_the_open_loop_generator(served: tuple[Path, int]) -> None:
    database, port = served
    webhooks = bench.webhook_requests(6, "raw-")
    report = asyncio.run(bench.open_loop("127.0.0.1", port, [r.raw() for r in webhooks],
                                         rate=60, seconds=0.1))
    assert [(status, kind) for status, kind, _ in report["results"]] == [(200, "stored")] * 6
    assert set(bench.inbox_rows(database, "raw-")) == {r.event_id for r in webhooks}

    me = bench.me_requests(3, bench.me_customers(2))
    report = asyncio.run(bench.open_loop("127.0.0.1", port, [r.raw() for r in me], rate=60,
                                         seconds=0.05, reuse=False))
    assert [status for status, _, _ in report["results"]] == [200] * 3


def test_the_bare_app_and_the_bench_settings() -> None:
    from bench.bare_app import app

    client = app.test_client()
    assert client.post("/json", data=b"{}").get_json() == {"status": "ok"}
    assert client.get("/json").get_json() == {"status": "ok"}
    settings = bench.gunicorn_settings()
    assert settings.workers >= 1 and "--bind" not in settings.args
    script = bench.WRK_SCRIPT % {"pool": '"/tmp/pool"'}
    assert 'local pool = "/tmp/pool"' in script and "i = offset % n" in script
