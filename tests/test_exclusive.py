"""``exclusive``: one runner per name across threads and, on PostgreSQL, across processes
(an advisory lock held by another connection stands for another worker)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from plugin_server.db import Database
from plugin_server.exclusive import _advisory_key, exclusive
from plugin_server.runtime import Runtime


def test_one_runner_per_name_in_one_process(any_runtime: Runtime) -> None:
    database = any_runtime.database
    with exclusive(database, "job:1") as first:
        assert first
        with exclusive(database, "job:1") as second:
            assert not second
        with exclusive(database, "job:2") as other:
            assert other
        seen: list[bool] = []
        worker = threading.Thread(target=lambda: seen.append(
            exclusive(database, "job:1").__enter__()))
        worker.start()
        worker.join()
        assert seen == [False]
    with exclusive(database, "job:1") as again:
        assert again


_HOLD_IN_ANOTHER_PROCESS = """
import sys, time
from plugin_server.db import Database
from plugin_server.exclusive import exclusive
with exclusive(Database(sys.argv[1]), sys.argv[2]) as mine:
    print("held" if mine else "refused", flush=True)
    sys.stdin.readline()
"""


def test_a_sqlite_lock_is_held_across_processes(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'locks.sqlite3'}")
    worker = subprocess.Popen([sys.executable, "-c", _HOLD_IN_ANOTHER_PROCESS, database.url,
                               "job:3"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "held"
        with exclusive(database, "job:3") as mine:
            assert not mine
        with exclusive(database, "job:4") as other:
            assert other
    finally:
        worker.communicate("done\n", timeout=30)
    with exclusive(database, "job:3") as mine:  # released when the other process let go
        assert mine
    database.dispose()


def test_a_lock_held_by_another_worker_is_respected(any_runtime: Runtime) -> None:
    database: Database = any_runtime.database
    if database.dialect != "postgresql":
        pytest.skip("PostgreSQL's advisory lock; SQLite's file lock is tested above")
    key = _advisory_key("job:7")
    with database.engine.connect() as elsewhere:  # another worker's session
        assert elsewhere.execute(select(func.pg_try_advisory_lock(key))).scalar()
        with exclusive(database, "job:7") as mine:
            assert not mine
        elsewhere.execute(select(func.pg_advisory_unlock(key)))
    with exclusive(database, "job:7") as mine:
        assert mine
