"""The merchant admin's import & export section: streamed CSV exports of members and the
ledger, and the import of starting balances (dry run, then apply)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from flask import Blueprint, Response, jsonify, request, stream_with_context
from markupsafe import escape
from werkzeug.exceptions import RequestEntityTooLarge

from plugin_server.admin.csv_export import (
    LEDGER_COLUMNS,
    MEMBER_COLUMNS,
    Cell,
    ledger_rows,
    member_rows,
    stream_csv,
)
from plugin_server.admin.csv_import import (
    MAX_BYTES,
    MAX_LINES,
    ImportRefused,
    ImportReport,
    apply_import,
    parse_balances,
    plan_import,
)
from plugin_server.models import utcnow

from .admin import admin_view, render_fragment, translator
from .admin_context import AdminUser, admin_required, current_admin, frame_policy
from .session import db_read_session, db_session

admin_data = Blueprint("admin_data", __name__)

MODES = ("dry_run", "apply")
# Room for the multipart envelope and the form's other fields around the file.
UPLOAD_OVERHEAD = 64 * 1024


@admin_data.before_request
def _limit_uploads() -> None:
    # Before the sign-in guard reads the form (its CSRF field): a huge body is refused
    # while it is parsed rather than spooled to disk first.
    if request.endpoint == "admin_data.import_balances":
        request.max_content_length = MAX_BYTES + UPLOAD_OVERHEAD


@admin_data.errorhandler(RequestEntityTooLarge)
def _too_large(_error: RequestEntityTooLarge) -> Response:
    if _wants_json():
        response = jsonify({"problem": "too_big"})
    else:
        text = translator()("data.problem.too_big")
        response = Response(f'<p class="errors" role="alert">{escape(text)}</p>')
    response.status_code = 413
    return frame_policy(response, None)


def _filename(kind: str, shop: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9.-]+", "-", shop.removeprefix("https://")).strip("-")
    return f"{kind}-{slug}-{utcnow():%Y%m%d}.csv"


def _csv_response(kind: str, header: tuple[str, ...],
                  batches: Iterable[list[tuple[Cell, ...]]]) -> Response:
    # stream_with_context keeps the request (and its read session) alive while the body
    # is written, a batch at a time.
    response = Response(stream_with_context(stream_csv(header, batches)),
                        content_type="text/csv; charset=utf-8")
    filename = _filename(kind, current_admin().shop)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@admin_data.get("/admin/export/members.csv")
@admin_required()
def export_members() -> Response:
    merchant_id = current_admin().merchant_id
    return _csv_response("members", MEMBER_COLUMNS,
                         member_rows(db_read_session(), merchant_id))


@admin_data.get("/admin/export/ledger.csv")
@admin_required()
def export_ledger() -> Response:
    merchant_id = current_admin().merchant_id
    return _csv_response("ledger", LEDGER_COLUMNS,
                         ledger_rows(db_read_session(), merchant_id))


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def _answer(report: ImportReport | None, status: int, problem: str = "") -> Response:
    if _wants_json():
        body = report.as_dict() if report is not None else {}
        if problem:
            body["problem"] = problem
        response = jsonify(body)
    else:
        response = Response(render_fragment("admin/data.html", report=report, problem=problem,
                                            max_mb=MAX_BYTES // (1024 * 1024),
                                            max_lines=MAX_LINES))
    response.status_code = status
    return response


@admin_data.post("/admin/import/balances")
@admin_required()
def import_balances() -> Response:
    mode = request.form.get("mode", "")
    if mode not in MODES:
        return _answer(None, 400, "bad_mode")
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _answer(None, 400, "no_file")
    content = upload.stream.read(MAX_BYTES + 1)
    if len(content) > MAX_BYTES:
        return _answer(None, 413, "too_big")
    parsed = parse_balances(content)
    user = current_admin()
    if any(error.reason == "too_many_lines" for error in parsed.errors):
        return _answer(plan_import(db_read_session(), user.merchant_id, parsed, mode), 400,
                       "too_many_lines")
    if mode == "dry_run":
        return _answer(plan_import(db_read_session(), user.merchant_id, parsed), 200)
    try:
        report = apply_import(db_session(), user.merchant_id, user.actor, parsed)
    except ImportRefused as refused:
        return _answer(refused.report, 400, "has_errors")
    return _answer(report, 200)


@admin_view("data")
def data_view(user: AdminUser) -> str:
    return render_fragment("admin/data.html", report=None, problem="",
                           max_mb=MAX_BYTES // (1024 * 1024), max_lines=MAX_LINES)
