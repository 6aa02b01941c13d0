"""GET /: what is running on this server, and, with a demo merchant, the program moving."""

from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy import select

from plugin_server.loyalty.overview import program_overview
from plugin_server.models import Merchant

from .session import db_session, runtime

home = Blueprint("home", __name__)


@home.get("/")
def index() -> str:
    session = db_session()
    merchants = list(session.execute(select(Merchant).order_by(Merchant.id)).scalars())
    demo = next((m for m in merchants if m.platform == "demo"), None)
    overview = program_overview(session, demo.id) if demo else None
    return render_template("home.html", merchants=merchants, demo=demo, overview=overview,
                           settings=runtime().settings)
