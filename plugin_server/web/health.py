"""GET /healthz: the database answers, or 503."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from .session import runtime

health = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@health.get("/healthz")
def healthz() -> tuple[Response, int]:
    try:
        with runtime().database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        log.error("health check failed: %s", error)
        return jsonify({"status": "unavailable", "reason": "database unreachable"}), 503
    return jsonify({"status": "ok"}), 200
