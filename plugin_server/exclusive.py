"""At most one runner at a time for a named piece of work (a store's reconciliation), across
threads and, on PostgreSQL, across worker processes and machines. Never waits: a second
runner is told the work is in hand and goes away."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import func, select

from .db import Database

_held: set[str] = set()
_guard = threading.Lock()


def _advisory_key(name: str) -> int:
    """A signed 64-bit key for pg_try_advisory_lock, stable across processes."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


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
            yield True  # SQLite serves one process: the set above is the whole lock
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
