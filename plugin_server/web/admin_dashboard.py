"""The merchant admin's dashboard section (being written)."""

from __future__ import annotations

from flask import Blueprint

admin_dashboard = Blueprint("admin_dashboard", __name__)
