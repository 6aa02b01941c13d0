"""HTTP entry points: parse, call one service, map errors to status codes."""

from __future__ import annotations

from flask import Flask

from .errors import register_error_handlers
from .health import health
from .home import home
from .session import register_session


def register_web(app: Flask) -> None:
    register_session(app)
    register_error_handlers(app)
    app.register_blueprint(health)
    app.register_blueprint(home)
