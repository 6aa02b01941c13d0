"""GET /healthz: the database answers, or 503."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify

from .session import runtime

health = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@health.get("/healthz")
def healthz() -> tuple[Response, int]:
    try:
        runtime().database.ping()
    except Exception as error:  # any driver error means the database is not usable
        log.error("health check failed: %s", error)
        return jsonify({"status": "unavailable", "reason": "database unreachable"}), 503
    return jsonify({"status": "ok"}), 200
