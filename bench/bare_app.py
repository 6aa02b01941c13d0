"""The baseline of bench/webhook_ack.py: a bare Flask app with one JSON endpoint, served by
gunicorn with the same settings as the product (``gunicorn ... bench.bare_app:app``).

``POST /json`` reads the body (the webhook endpoint has to) and answers a small JSON document;
``GET /json`` answers the same document. Nothing else: no database, no signature."""

from __future__ import annotations

from flask import Flask, Response, jsonify, request

app = Flask(__name__)


@app.post("/json")
def post_json() -> Response:
    request.get_data(cache=False)
    return jsonify({"status": "ok"})


@app.get("/json")
def get_json() -> Response:
    return jsonify({"status": "ok"})
