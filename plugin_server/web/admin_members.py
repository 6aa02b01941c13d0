"""The merchant admin's members section (being written)."""

from __future__ import annotations

from flask import Blueprint

admin_members = Blueprint("admin_members", __name__)
