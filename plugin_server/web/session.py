"""One database session per request; the request boundary commits (or rolls back)."""

from __future__ import annotations

from flask import Flask, Response, current_app, g
from sqlalchemy.orm import Session

from plugin_server.runtime import Runtime


def runtime() -> Runtime:
    return current_app.extensions["loyalty"]


def db_session() -> Session:
    if "db_session" not in g:
        g.db_session = runtime().database.session()
    return g.db_session


def db_read_session() -> Session:
    """A session for a request that only reads; closed, never committed, at the end."""
    if "db_read_session" not in g:
        g.db_read_session = runtime().database.read_session()
    return g.db_read_session


def release_read_session() -> None:
    """End the request's read transaction now (before a slow outbound call, say)."""
    _close_reader()


def _close_reader() -> None:
    reader = g.pop("db_read_session", None)
    if reader is not None:
        reader.rollback()
        reader.close()


def register_session(app: Flask) -> None:
    @app.after_request
    def _commit(response: Response) -> Response:
        """Commit what a successful request changed; an error answer changes nothing."""
        session = g.pop("db_session", None)
        if session is not None:
            try:
                if response.status_code < 400:
                    session.commit()
                else:
                    session.rollback()
            finally:
                session.close()
        return response

    @app.teardown_request
    def _close(_error: BaseException | None) -> None:
        _close_reader()
        session = g.pop("db_session", None)
        if session is not None:
            session.rollback()
            session.close()
