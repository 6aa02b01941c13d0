"""The production WSGI entry point (``gunicorn plugin_server.wsgi:app``).

Without Redis the jobs run on a background thread of each web process, and the minute sweep
with them; with REDIS_URL the Celery worker (Procfile ``worker:``) does both."""

from __future__ import annotations

from . import create_app
from .sweeper import start_sweeper

app = create_app()
start_sweeper(app.extensions["loyalty"])
