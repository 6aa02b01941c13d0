"""The merchant admin's shell: ``GET /admin`` (the page, with its first section already
rendered) and ``GET /admin/view/<name>`` (a section as an HTML fragment, which the page's
script swaps in). Each section registers its renderer with ``admin_view``; its changes are
routes of its own blueprint under ``/admin/``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, g, make_response, render_template, request
from markupsafe import Markup, escape

from plugin_server.admin.activity import recent_activity
from plugin_server.admin.i18n import Translator, pick_language
from plugin_server.loyalty.program import get_merchant

from .admin_context import AdminUser, admin_required, current_admin
from .session import db_read_session, runtime

admin = Blueprint("admin", __name__)

# name → renders the section's fragment for the signed-in merchant.
ViewRenderer = Callable[[AdminUser], str]
VIEWS: dict[str, ViewRenderer] = {}
# The sections, in the navigation's order; only those with a renderer are shown.
NAV = ("dashboard", "program", "members", "data", "activity", "connection")


def available_views() -> list[str]:
    return [name for name in NAV if name in VIEWS]


def admin_view(name: str) -> Callable[[ViewRenderer], ViewRenderer]:
    def register(render: ViewRenderer) -> ViewRenderer:
        VIEWS[name] = render
        return render

    return register


def translator() -> Translator:
    """The admin's language for this request: ``?lang=``, Shopify's ``locale``, the browser."""
    if "admin_translator" not in g:
        g.admin_translator = Translator(pick_language(
            request.args.get("lang"), request.cookies.get("loyalty_admin_lang"),
            request.args.get("locale"), request.headers.get("Accept-Language")))
    translate: Translator = g.admin_translator
    return translate


def render_fragment(template: str, **context: Any) -> str:
    """A section's template with what every section uses: ``t`` (texts and formats), the
    signed-in ``user`` and its ``merchant``, and the CSRF token for forms."""
    user = current_admin()
    merchant = get_merchant(db_read_session(), user.merchant_id)
    return render_template(template, t=translator(), user=user, merchant=merchant,
                           csrf=user.csrf, **context)


def not_found_fragment(message_key: str) -> Response:
    """A 404 for an id this merchant does not have (or another merchant's)."""
    text = escape(translator()(message_key))
    return make_response(f'<p class="errors" role="alert">{text}</p>', 404)


def _view_html(name: str) -> str:
    render = VIEWS.get(name)
    if render is None:
        return render_fragment("admin/missing.html", name=name)
    return render(current_admin())


@admin.get("/admin")
@admin_required()
def shell() -> Response:
    user = current_admin()
    shown = available_views()
    name = request.args.get("view", "")
    name = name if name in VIEWS else shown[0]
    settings = runtime().settings
    response = make_response(render_template(
        "admin/shell.html", t=translator(), user=user, view=name, nav=shown,
        # The fragment comes from our own autoescaped templates.
        content=Markup(_view_html(name)),
        merchant=get_merchant(db_read_session(), user.merchant_id),
        api_key=settings.SHOPIFY_API_KEY, csrf=user.csrf))
    if request.args.get("lang") in ("en", "ja"):
        response.set_cookie("loyalty_admin_lang", request.args["lang"], max_age=365 * 86400,
                            samesite="Lax", path="/admin",
                            secure=settings.APP_URL.startswith("https://"))
    return response


@admin.get("/admin/view/<name>")
@admin_required()
def view(name: str) -> Response | tuple[str, int]:
    if name not in VIEWS:
        return render_fragment("admin/missing.html", name=name), 404
    return make_response(_view_html(name))


@admin_view("activity")
def activity_view(user: AdminUser) -> str:
    before = request.args.get("before", type=int)
    entries = recent_activity(db_read_session(), user.merchant_id, before_id=before)
    return render_fragment("admin/activity.html", entries=entries)
