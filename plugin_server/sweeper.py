"""The minute sweep on a background thread (in-process mode); Celery beat does it otherwise."""

from __future__ import annotations

import logging
import threading

from .jobs import sweep
from .runtime import Runtime

log = logging.getLogger(__name__)


def start_sweeper(runtime: Runtime) -> threading.Thread | None:
    """Sweep now, then every SWEEP_INTERVAL_SECONDS, until the process exits."""
    if runtime.settings.REDIS_URL:
        return None
    interval = runtime.settings.SWEEP_INTERVAL_SECONDS

    def loop() -> None:
        stop = threading.Event()
        while True:
            try:
                report = sweep(runtime)
                if any(report.as_dict().values()):
                    log.info("sweep: %s", report.as_dict())
            except Exception:
                log.exception("sweep failed; trying again in %s s", interval)
            stop.wait(interval)

    thread = threading.Thread(target=loop, name="loyalty-sweeper", daemon=True)
    thread.start()
    return thread
