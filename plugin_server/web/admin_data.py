"""The merchant admin's data section (being written)."""

from __future__ import annotations

from flask import Blueprint

admin_data = Blueprint("admin_data", __name__)
