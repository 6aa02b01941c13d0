"""Shared fixtures: an app on a fresh SQLite file, and (with LOYALTY_TEST_POSTGRES_URL) the
same on a real PostgreSQL server. ``any_database`` runs a test on both."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, text

from plugin_server import create_app
from plugin_server.db import Database, unit_of_work
from plugin_server.migrate import upgrade
from plugin_server.runtime import Runtime

POSTGRES_URL = os.environ.get("LOYALTY_TEST_POSTGRES_URL", "")


def require_test_server(variable: str, server: str) -> str:
    """The URL of a server scripts/test.sh started. Locally a test without it is skipped;
    in CI it fails, so a missing server can never pass as a skip."""
    url = os.environ.get(variable, "")
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{variable} is not set: run the tests with scripts/test.sh, which "
                        f"starts {server}")
        pytest.skip(f"{server} tests need {variable} (scripts/test.sh sets it)")
    return url


def _require_postgres() -> str:
    return require_test_server("LOYALTY_TEST_POSTGRES_URL", "PostgreSQL")


def _fresh_postgres_database() -> str:
    """A new empty database on the test server, so tests never see each other's rows."""
    base = _require_postgres()
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.rsplit("/", 1)[0] + f"/{name}"


def _drop_postgres_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def make_app(database_url: str, **overrides: object) -> Flask:
    app = create_app({"LOYALTY_ENV": "test", "DATABASE_URL": database_url,
                      "SECRET_KEY": "test-secret", "ENCRYPTION_KEY": "test-encryption-key",
                      "JOBS_MODE": "eager", **overrides})
    upgrade(app.extensions["loyalty"].database)
    return app


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL: a SQLite file, then a PostgreSQL database (both migrated by make_app)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'loyalty.sqlite3'}"
        return
    url = _fresh_postgres_database()
    yield url
    _drop_postgres_database(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'loyalty.sqlite3'}"


@pytest.fixture
def app(sqlite_url: str) -> Iterator[Flask]:
    app = make_app(sqlite_url)
    yield app
    app.extensions["loyalty"].database.dispose()


@pytest.fixture
def any_app(any_database: str) -> Iterator[Flask]:
    app = make_app(any_database)
    yield app
    app.extensions["loyalty"].database.dispose()


@pytest.fixture
def runtime(app: Flask) -> Runtime:
    return app.extensions["loyalty"]


@pytest.fixture
def any_runtime(any_app: Flask) -> Runtime:
    return any_app.extensions["loyalty"]


@pytest.fixture
def database(runtime: Runtime) -> Database:
    return runtime.database


@pytest.fixture
def merchant_id(runtime: Runtime) -> int:
    return seed_merchant(runtime.database)


@pytest.fixture
def any_merchant_id(any_runtime: Runtime) -> int:
    return seed_merchant(any_runtime.database)


def seed_merchant(database: Database, shop: str = "test-shop.example") -> int:
    """A demo-platform merchant with the default program (1 point per 1 unit, round down)."""
    from plugin_server.loyalty.merchants import create_merchant

    with unit_of_work(database) as session:
        return create_merchant(session, "demo", shop, name="Test shop").id


# Fixtures shared by the admin's test modules (imported last: they use make_app above).
from tests.support.admin import admin_app  # noqa: E402, F401
