"""The merchant admin's members section: ``GET /admin/view/members`` (the list, or one
member with ``?member=<id>``), ``POST /admin/members/<id>/adjust`` and
``POST /admin/redemptions/<id>/cancel``. Handlers parse, call one service of
plugin_server.admin (member_admin, code_cancel), and map its errors to status codes."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, make_response, request
from markupsafe import escape
from sqlalchemy.orm import Session

from plugin_server.admin.code_cancel import CancelFailed, CancelRefused, cancel_reward_code
from plugin_server.admin.member_admin import (
    FieldError,
    MemberPage,
    adjust_member,
    list_members,
    member_detail,
    parse_adjustment,
    tier_names,
)
from plugin_server.loyalty.errors import NotFound

from .admin import admin_view, render_fragment, translator
from .admin_context import AdminUser, admin_required, current_admin
from .session import db_read_session, db_session, release_read_session, runtime

admin_members = Blueprint("admin_members", __name__)


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name, "").strip()
    return int(raw) if raw.isdigit() else None


def _page_query(search: str, tier_id: int | None, page: int) -> str:
    """The query string of a pager link, keeping the search and the filter."""
    values: dict[str, Any] = {}
    if search:
        values["q"] = search
    if tier_id is not None:
        values["tier"] = tier_id
    values["page"] = page
    return urlencode(values)


def _not_found(message_key: str) -> Response:
    text = escape(translator()(message_key))
    return make_response(f'<p class="errors" role="alert">{text}</p>', 404)


def _member_page(session: Session, user: AdminUser, member_id: int, *,
                 errors: dict[str, str] | None = None, notice: str = "", problem: str = "",
                 form: dict[str, str] | None = None) -> str:
    detail = member_detail(session, user.merchant_id, member_id)
    return render_fragment("admin/member.html", detail=detail, errors=errors or {},
                           notice=notice, problem=problem, form=form or {})


@admin_view("members")
def members_view(user: AdminUser) -> str:
    raw_member = request.args.get("member")
    if raw_member is not None:
        member_id = _int_arg("member")
        try:
            if member_id is None:
                raise NotFound(f"no member {raw_member!r}")
            return _member_page(db_read_session(), user, member_id)
        except NotFound:
            abort(_not_found("members.not_found"))
    search = request.args.get("q", "").strip()[:200]
    tier_id = _int_arg("tier")
    page: MemberPage = list_members(db_read_session(), user.merchant_id, search=search,
                                    tier_id=tier_id, page=_int_arg("page") or 1)
    return render_fragment(
        "admin/members.html", listing=page, search=search, tier_id=tier_id,
        tiers=tier_names(db_read_session(), user.merchant_id),
        previous_query=_page_query(search, tier_id, page.page - 1),
        next_query=_page_query(search, tier_id, page.page + 1))


@admin_members.post("/admin/members/<int:member_id>/adjust")
@admin_required()
def adjust(member_id: int) -> Response:
    user = current_admin()
    session = db_session()
    form = {"points": request.form.get("points", ""), "reason": request.form.get("reason", "")}
    try:
        adjustment = parse_adjustment(form["points"], form["reason"])
        entry = adjust_member(session, user.merchant_id, member_id, adjustment, user.actor)
    except NotFound:
        return _not_found("members.not_found")
    except FieldError as error:
        t = translator()
        message = t(error.key, **error.values)
        # The member page again, with the field's reason and what was typed; the 400
        # makes the request boundary roll back, so nothing is saved.
        session.rollback()
        page = _member_page(session, user, member_id, form=form,
                            errors={error.field: message})
        return make_response(page, 400)
    notice = translator()("members.adjusted", points=entry.points)
    return make_response(_member_page(session, user, member_id, notice=notice))


@admin_members.post("/admin/redemptions/<int:redemption_id>/cancel")
@admin_required()
def cancel_code(redemption_id: int) -> Response:
    user = current_admin()
    t = translator()
    disabler = runtime().code_disablers.get(user.platform)
    if disabler is None:
        text = escape(t("members.cancel.unavailable"))
        return make_response(f'<p class="errors" role="alert">{text}</p>', 503)
    # The store is asked with no transaction open: signing in left a read one.
    release_read_session()
    try:
        cancelled = cancel_reward_code(runtime().database, user.merchant_id, redemption_id,
                                       user.actor, disabler)
    except NotFound:
        return _not_found("members.redemption_not_found")
    except CancelRefused as error:
        page = _member_page(db_read_session(), user, error.member_id,
                            problem=t(error.key, **error.values))
        return make_response(page, 409)
    except CancelFailed as error:
        page = _member_page(db_read_session(), user, error.member_id,
                            problem=t("members.cancel.failed", detail=str(error)))
        return make_response(page, 502)
    notice = t("members.cancel.cancelled", code=cancelled.code,
               points=t.number(cancelled.points))
    return make_response(_member_page(db_read_session(), user, cancelled.member_id,
                                      notice=notice))
