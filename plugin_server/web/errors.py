"""Engine errors become JSON answers with a stable code and a clear message."""

from __future__ import annotations

from flask import Flask, Response, jsonify

from plugin_server.loyalty.errors import LoyaltyError
from plugin_server.loyalty.redeem import ERROR_STATUS


def error_response(code: str, message: str, status: int) -> tuple[Response, int]:
    return jsonify({"error": code, "message": message}), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(LoyaltyError)
    def _loyalty_error(error: LoyaltyError) -> tuple[Response, int]:
        return error_response(error.code, str(error), ERROR_STATUS.get(error.code, 400))
