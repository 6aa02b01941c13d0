"""The merchant admin's dashboard section: headline figures as cards, and charts (SVG drawn
on the server) each with its data as a table. The figures are defined in
``plugin_server.admin.analytics``."""

from __future__ import annotations

from babel.dates import format_skeleton
from flask import Blueprint
from markupsafe import Markup

from plugin_server.admin.analytics import Dashboard, dashboard
from plugin_server.admin.charts import Series, bar_chart
from plugin_server.admin.i18n import Translator
from plugin_server.loyalty.program import get_merchant

from .admin import admin_view, render_fragment, translator
from .admin_context import AdminUser
from .session import db_read_session

admin_dashboard = Blueprint("admin_dashboard", __name__)


def _charts(figures: Dashboard, t: Translator) -> dict[str, Markup]:
    weeks = [format_skeleton("MMMd", week.starts, locale=t.language) for week in figures.weeks]
    points = bar_chart(
        "chart-points", t("dashboard.chart.points.title"), t("dashboard.chart.points.desc"),
        weeks, [Series(t("dashboard.issued"), "series-1",
                       [week.issued for week in figures.weeks]),
                Series(t("dashboard.redeemed"), "series-2",
                       [week.redeemed for week in figures.weeks])], t.number)
    members = bar_chart(
        "chart-members", t("dashboard.chart.members.title"), t("dashboard.chart.members.desc"),
        weeks, [Series(t("dashboard.new_members"), "series-1",
                       [week.new_members for week in figures.weeks])], t.number)
    tiers = bar_chart(
        "chart-tiers", t("dashboard.chart.tiers.title"), t("dashboard.chart.tiers.desc"),
        [share.name or t("dashboard.no_tier") for share in figures.tiers],
        [Series(t("dashboard.members"), "series-1",
                [share.members for share in figures.tiers])], t.number)
    return {"points": points, "members": members, "tiers": tiers}


@admin_view("dashboard")
def dashboard_view(user: AdminUser) -> str:
    session = db_read_session()
    merchant = get_merchant(session, user.merchant_id)
    figures = dashboard(session, user.merchant_id, merchant.currency)
    t = translator()
    week_labels = [format_skeleton("yMMMd", week.starts, locale=t.language)
                   for week in figures.weeks]
    return render_fragment("admin/dashboard.html", figures=figures,
                           charts=_charts(figures, t), week_labels=week_labels)
