"""Celery worker entry point for the distributed mode (REDIS_URL set).

Run with ``celery -A plugin_server.celery_app worker -B`` (``-B`` runs the minute sweep)."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from celery import Celery

celery = Celery("loyalty", broker=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
celery.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=4,
    beat_schedule={"sweep": {"task": "loyalty.run_job", "schedule": 60.0, "args": ("sweep", [])}},
)


@cache
def _runtime() -> Any:
    from plugin_server import create_app

    return create_app().extensions["loyalty"]


@celery.task(name="loyalty.run_job")
def run_job(name: str, args: list[Any]) -> None:
    _runtime().jobs.run(name, *args)
