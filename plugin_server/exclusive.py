"""At most one runner at a time for a named piece of work (a store's reconciliation), across
threads and worker processes: on PostgreSQL an advisory lock (across machines too), on a
SQLite file an ``flock`` on a lock file beside it (SQLite serves one machine). ``exclusive``
never waits: a second runner is told the work is in hand and goes away. Both kinds of lock
are released by the operating system or the server if the holder dies. ``wait_in_turn`` is
the waiting kind, for one transaction at a time (a second click on the same import)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .db import Database

_held: set[str] = set()
_guard = threading.Lock()


def _advisory_key(name: str) -> int:
    """A signed 64-bit key for pg_try_advisory_lock, stable across processes."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def _file_lock(database: Database, name: str) -> Iterator[bool]:
    """An exclusive ``flock`` on ``<database>.locks/<name's hash>``, or True alone for an
    in-memory database (one process by definition)."""
    path = database.engine.url.database
    if not path or path == ":memory:" or path.startswith("file::memory:"):
        yield True
        return
    folder = Path(f"{path}.locks")
    folder.mkdir(exist_ok=True)
    # flock, not fcntl record locks: closing another descriptor of the file in this process
    # would drop a record lock.
    descriptor = os.open(folder / f"{_advisory_key(name) & (2**64 - 1):016x}.lock",
                         os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            got = True
        except BlockingIOError:
            got = False
        yield got
    finally:
        os.close(descriptor)  # releases the lock with the last descriptor of the file


def wait_in_turn(session: Session, name: str) -> None:
    """Wait until no other transaction holds ``name``, and hold it until this one ends. On
    PostgreSQL a transaction-scoped advisory lock: unlike locking a row, it blocks nobody
    else (not the inserts that reference that row). SQLite runs one writing transaction at a
    time already (BEGIN IMMEDIATE), so there is nothing more to take."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(_advisory_key(name))))


@contextmanager
def exclusive(database: Database, name: str) -> Iterator[bool]:
    """Yields True to the one runner holding ``name``, False to any other meanwhile."""
    with _guard:
        if name in _held:
            mine = False
        else:
            _held.add(name)
            mine = True
    if not mine:
        yield False
        return
    try:
        if database.dialect != "postgresql":
            with _file_lock(database, name) as got:
                yield got
            return
        key = _advisory_key(name)
        # A session-level lock lives as long as this connection: held for the whole run,
        # released by the server if this process dies.
        with database.engine.connect() as connection:
            got = bool(connection.execute(select(func.pg_try_advisory_lock(key))).scalar())
            connection.commit()
            try:
                yield got
            finally:
                if got:
                    connection.execute(select(func.pg_advisory_unlock(key)))
                    connection.commit()
    finally:
        with _guard:
            _held.discard(name)
