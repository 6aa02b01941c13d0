"""``exclusive``: one runner per name across threads and, on PostgreSQL, across processes
(an advisory lock held by another connection stands for another worker)."""

from __future__ import annotations

import threading

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


def test_a_lock_held_by_another_worker_is_respected(any_runtime: Runtime) -> None:
    database: Database = any_runtime.database
    if database.dialect != "postgresql":
        pytest.skip("one SQLite process: the in-process lock is the whole lock (tested above)")
    key = _advisory_key("job:7")
    with database.engine.connect() as elsewhere:  # another worker's session
        assert elsewhere.execute(select(func.pg_try_advisory_lock(key))).scalar()
        with exclusive(database, "job:7") as mine:
            assert not mine
        elsewhere.execute(select(func.pg_advisory_unlock(key)))
    with exclusive(database, "job:7") as mine:
        assert mine
