"""The merchant admin's program section: ``GET /admin/view/program`` and the forms that
change earning, tiers, rewards and the widget. Earning and tier forms answer a preview
(``mode=preview``: the last 12 months under the change, nothing written) or save
(``mode=save``). A refused field answers 400 with the page, the field's reason and what was
typed; the 400 rolls the request back, so nothing is saved."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Any

from flask import Blueprint, Response, make_response, request
from markupsafe import Markup
from sqlalchemy.orm import Session

from plugin_server.admin.charts import Series, bar_chart
from plugin_server.admin.i18n import Translator
from plugin_server.admin.member_admin import FieldError
from plugin_server.admin.program_preview import (
    ProgramPreview,
    preview_program,
    proposed_program,
)
from plugin_server.admin.program_settings import (
    check_ladder,
    program_state,
    save_earning,
    save_ladder,
    save_reward,
    save_widget,
)
from plugin_server.admin.settings_forms import (
    parse_earning,
    parse_ladder,
    parse_program_name,
    parse_reward,
)
from plugin_server.loyalty.errors import NotFound
from plugin_server.loyalty.widget_settings import (
    LANGUAGES,
    InvalidWidgetSettings,
    storefront_widget,
    validate_widget_settings,
)
from plugin_server.models import utcnow
from storefront_widget import WIDGET_DIR

from .admin import admin_view, not_found_fragment, render_fragment, translator
from .admin_context import AdminUser, admin_required, current_admin
from .session import db_read_session, db_session, runtime

admin_program = Blueprint("admin_program", __name__)
WIDGET_TEXTS = ("program_name", "explainer", "launcher")


def preview_chart(preview: ProgramPreview, t: Translator) -> Markup:
    return bar_chart(
        "chart-preview", t("program.preview.chart.title"), t("program.preview.chart.desc"),
        [month.month for month in preview.months],
        [Series(t("program.preview.series.now"), "series-1",
                [month.issued for month in preview.months]),
         Series(t("program.preview.series.proposed"), "series-2",
                [month.proposed for month in preview.months])], t.number)


@cache
def widget_defaults(language: str) -> dict[str, str]:
    """The widget's own texts in a language (what shoppers see where the merchant set none)."""
    catalog = json.loads((WIDGET_DIR / "i18n" / f"{language}.json").read_text("utf-8"))
    return {"launcher": catalog.get("launcher", ""), "explainer": catalog.get("explainer", "")}


def _page(session: Session, user: AdminUser, *, section: str = "", form: Any = None,
          errors: dict[str, str] | None = None, notice: str = "",
          preview: ProgramPreview | None = None) -> str:
    state = program_state(session, user.merchant_id)
    return render_fragment(
        "admin/program.html", state=state, section=section, form=form, errors=errors or {},
        notice=notice, preview=preview, languages=LANGUAGES, widget_texts=WIDGET_TEXTS,
        defaults=widget_defaults("en"),
        chart=preview_chart(preview, translator()) if preview else None)


@admin_view("program")
def program_view(user: AdminUser) -> str:
    return _page(db_read_session(), user)


def _refused(session: Session, user: AdminUser, section: str, error: FieldError) -> Response:
    session.rollback()
    message = translator()(error.key, **error.values)
    page = _page(session, user, section=section, form=request.form,
                 errors={error.field: message, "_section": message})
    return make_response(page, 400)


def _handle(section: str, change: Callable[[Session, AdminUser], str | ProgramPreview], *,
            preview: bool = False) -> Response:
    """Run one change for the signed-in merchant and answer the re-rendered section. A
    preview only reads: it runs on the read session, so its scan holds no write lock."""
    user = current_admin()
    session = db_read_session() if preview else db_session()
    try:
        outcome = change(session, user)
    except NotFound:
        session.rollback()
        return not_found_fragment("program.not_found")
    except FieldError as error:
        return _refused(session, user, section, error)
    if isinstance(outcome, ProgramPreview):
        # Read only: drop anything the preview's reads set up (a settings row, say).
        session.rollback()
        return make_response(_page(session, user, section=section, form=request.form,
                                   preview=outcome))
    return make_response(_page(session, user, section=section, notice=outcome))


@admin_program.post("/admin/program/earning")
@admin_required()
def earning() -> Response:
    def change(session: Session, user: AdminUser) -> str | ProgramPreview:
        form = parse_earning(request.form)
        if request.form.get("mode") == "preview":
            return preview_program(session, proposed_program(
                session, user.merchant_id, form, None), utcnow(), tiers_changed=False)
        changed = save_earning(session, user.merchant_id, form, user.actor)
        return translator()("program.saved" if changed else "program.unchanged")

    return _handle("earning", change, preview=request.form.get("mode") == "preview")


@admin_program.post("/admin/program/tiers")
@admin_required()
def tiers() -> Response:
    def change(session: Session, user: AdminUser) -> str | ProgramPreview:
        ladder = parse_ladder(request.form)
        if request.form.get("mode") == "preview":
            check_ladder(session, user.merchant_id, ladder)
            return preview_program(session, proposed_program(
                session, user.merchant_id, None, ladder), utcnow(), tiers_changed=True)
        changed = save_ladder(session, user.merchant_id, ladder, user.actor,
                              runtime().jobs.enqueue_committed)
        return translator()("program.tiers_saved" if changed else "program.unchanged")

    return _handle("tiers", change, preview=request.form.get("mode") == "preview")


@admin_program.post("/admin/program/rewards", defaults={"reward_id": None})
@admin_program.post("/admin/program/rewards/<int:reward_id>")
@admin_required()
def reward(reward_id: int | None) -> Response:
    def change(session: Session, user: AdminUser) -> str:
        saved = save_reward(session, user.merchant_id, reward_id, parse_reward(request.form),
                            user.actor)
        return translator()("program.reward_saved", name=saved.name)

    return _handle("rewards" if reward_id is None else f"reward-{reward_id}", change)


def widget_from_form(form: Any) -> dict[str, Any]:
    """The widget settings a form sent: empty fields are left out (the widget's defaults)."""
    widget: dict[str, Any] = {}
    for key in ("color", "position", "launcher", "launcher_label", "explainer",
                "sign_in_url", "join_url"):
        value = form.get(key, "").strip()
        if value:
            widget[key] = value
    for language in LANGUAGES:
        texts = {key: form.get(f"texts-{language}-{key}", "").strip() for key in WIDGET_TEXTS}
        texts = {key: value for key, value in texts.items() if value}
        if texts:
            widget.setdefault("texts", {})[language] = texts
    return widget


@admin_program.post("/admin/program/widget")
@admin_required()
def widget() -> Response:
    def change(session: Session, user: AdminUser) -> str:
        changed = save_widget(session, user.merchant_id, parse_program_name(request.form),
                              widget_from_form(request.form), user.actor)
        return translator()("program.saved" if changed else "program.unchanged")

    return _handle("widget", change)


@admin_program.post("/admin/program/widget/preview")
@admin_required()
def widget_preview() -> Response:
    """The live preview as the merchant types: what the widget would show, or why not."""
    sent = widget_from_form(request.form)
    try:
        shown = storefront_widget(validate_widget_settings(sent))
        problem = ""
    except InvalidWidgetSettings as error:
        shown = storefront_widget(json.dumps(sent))
        problem = str(error)
    language = request.form.get("preview_language", "en")
    language = language if language in LANGUAGES else "en"
    state = program_state(db_read_session(), current_admin().merchant_id)
    if not request.form.get("program_name", "").strip():
        problem = problem or translator()("program.widget.name_required")
    return make_response(render_fragment(
        "admin/widget_preview.html", widget=shown, problem=problem, language=language,
        program_name=request.form.get("program_name", "").strip()[:60]
        or state.settings.program_name, defaults=widget_defaults(language)))
