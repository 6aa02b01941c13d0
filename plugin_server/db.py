"""Engine and session handling. Services only change the session; the request, job or
command boundary commits (``unit_of_work``), and jobs are dispatched only after commit."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

AFTER_COMMIT_KEY = "after_commit_callbacks"
READ_ONLY = "loyalty_read_only"
WRITER_LOCK = "loyalty_writer_lock"
WRITER_LOCK_TIMEOUT = 30.0


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide how transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    # Writers of this process queue on a lock of our own before asking SQLite: a thread
    # waiting on it wakes the moment the lock is free, where SQLite's busy handler would
    # sleep in growing steps (up to 100 ms) and let a busy writer take the lock again first.
    writers = threading.Lock()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            # A reader sees a snapshot and never waits behind a writer (WAL).
            connection.exec_driver_sql("BEGIN DEFERRED")
            return
        # Never wait forever: past the busy timeout, SQLite's own locking decides.
        connection.info[WRITER_LOCK] = writers.acquire(timeout=WRITER_LOCK_TIMEOUT)
        try:
            # Take the write lock up front: a deferred transaction that reads, then writes,
            # can fail with SQLITE_BUSY when another writer got in between (no retry).
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _release(connection)
            raise

    def _release(connection: Any) -> None:
        if connection.info.pop(WRITER_LOCK, False):
            writers.release()

    event.listen(engine, "commit", _release)
    event.listen(engine, "rollback", _release)


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_size=10, max_overflow=40, pool_pre_ping=True)


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.session_factory = sessionmaker(self.engine, expire_on_commit=False)
        self.read_session_factory = sessionmaker(
            self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> Session:
        return self.session_factory()

    def read_session(self) -> Session:
        """A session for requests that only read (the storefront's balance): on SQLite it
        neither takes nor waits for the write lock. Never commit through it."""
        return self.read_session_factory()

    def ping(self) -> None:
        """Raise unless the database answers. A bare DB-API connection, outside any
        transaction: on SQLite it never queues behind a writer (ORM transactions there
        begin IMMEDIATE)."""
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute("SELECT 1")
            cursor.fetchone()
            cursor.close()
        finally:
            connection.close()

    def dispose(self) -> None:
        self.engine.dispose()


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the session's current transaction commits; drop it on rollback."""
    session.info.setdefault(AFTER_COMMIT_KEY, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    callbacks = session.info.pop(AFTER_COMMIT_KEY, [])
    for callback in callbacks:
        callback()


@event.listens_for(Session, "after_rollback")
def _drop_after_commit(session: Session) -> None:
    session.info.pop(AFTER_COMMIT_KEY, None)


@contextmanager
def unit_of_work(database: Database) -> Iterator[Session]:
    """One transaction: commit when the block succeeds, roll back when it raises."""
    session = database.session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
