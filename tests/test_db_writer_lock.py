"""SQLite writers of one process queue on a lock of their own (plugin_server/db.py): it is
released on commit, on rollback and when BEGIN fails, and readers never take it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from plugin_server.db import Database, unit_of_work


@pytest.fixture
def database(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'lock.sqlite3'}")
    with db.engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (n INTEGER)")
    return db


def _write_in_thread(database: Database, value: int) -> float:
    took: list[float] = []

    def write() -> None:
        started = time.monotonic()
        with unit_of_work(database) as session:
            session.execute(text("INSERT INTO t VALUES (:n)"), {"n": value})
        took.append(time.monotonic() - started)

    thread = threading.Thread(target=write)
    thread.start()
    thread.join(timeout=10)
    assert took, "the writer never finished: the lock was not released"
    return took[0]


def test_commit_and_rollback_release_the_lock(database: Database) -> None:
    with unit_of_work(database) as session:
        session.execute(text("INSERT INTO t VALUES (1)"))
    with pytest.raises(RuntimeError), unit_of_work(database) as session:
        session.execute(text("INSERT INTO t VALUES (2)"))
        raise RuntimeError("roll back")
    assert _write_in_thread(database, 3) < 1.0
    with database.engine.connect() as connection:
        assert [row[0] for row in connection.exec_driver_sql("SELECT n FROM t ORDER BY n")] == [
            1, 3]


def test_a_writer_waits_for_the_one_holding_the_lock_then_goes(database: Database) -> None:
    session = database.session()
    session.execute(text("INSERT INTO t VALUES (1)"))  # holds the write lock
    finished = threading.Event()

    def write() -> None:
        with unit_of_work(database) as other:
            other.execute(text("INSERT INTO t VALUES (2)"))
        finished.set()

    thread = threading.Thread(target=write)
    thread.start()
    assert not finished.wait(0.3)  # queued behind the first writer
    session.commit()
    session.close()
    assert finished.wait(5)
    thread.join()


def test_readers_do_not_take_the_writers_lock(database: Database) -> None:
    writer = database.session()
    writer.execute(text("INSERT INTO t VALUES (1)"))
    reader = database.read_session()
    started = time.monotonic()
    assert reader.execute(text("SELECT count(*) FROM t")).scalar_one() == 0
    assert time.monotonic() - started < 1.0
    reader.close()
    writer.rollback()
    writer.close()
