"""The merchant admin's connection section: ``GET /admin/view/connection`` (the store's
status, webhook deliveries and failures over 24 hours, the last reconciliation) and
``POST /admin/connection/resync`` (read the platform's orders again now)."""

from __future__ import annotations

from flask import Blueprint, Response, make_response

from plugin_server.admin.connection import connection_health, request_resync
from plugin_server.loyalty.errors import InvalidState

from .admin import admin_view, render_fragment, translator
from .admin_context import AdminUser, admin_required, current_admin
from .session import db_read_session, db_session, runtime

admin_connection = Blueprint("admin_connection", __name__)


def _page(*, notice: str = "", problem: str = "") -> str:
    user = current_admin()
    health = connection_health(db_read_session(), user.merchant_id)
    return render_fragment("admin/connection.html", health=health, notice=notice,
                           problem=problem)


@admin_view("connection")
def connection_view(user: AdminUser) -> str:
    return _page()


@admin_connection.post("/admin/connection/resync")
@admin_required()
def resync() -> Response:
    user = current_admin()
    try:
        request_resync(db_session(), user.merchant_id, user.actor,
                       runtime().jobs.enqueue_committed)
    except InvalidState as error:
        return make_response(_page(problem=str(error)), 409)
    return make_response(_page(notice=translator()("connection.resync_queued")))
