"""``plugin_server.wsgi`` with the processing left out, for bench/webhook_ack.py's information
row "ack alone": a delivery is verified, stored and answered exactly as in production, but the
job it enqueues after the commit is dropped, so the row stays in the inbox (``received``) and no
processing competes with the acknowledgement. No sweeper either (it would re-dispatch them).

This wraps the product from the outside; it changes nothing in plugin_server. Settings come from
the environment, as for ``plugin_server.wsgi``."""

from __future__ import annotations

from typing import Any

from plugin_server import create_app

app = create_app()
_jobs = app.extensions["loyalty"].jobs


def _leave_in_inbox(name: str, *args: Any) -> None:
    """Drop the job: the delivery stays stored, unprocessed."""


_jobs.enqueue = _leave_in_inbox  # type: ignore[method-assign]
