"""GET /: what is running on this server, and, with a demo merchant, the program moving."""

from __future__ import annotations

from flask import Blueprint, render_template

from plugin_server.demo import find_demo_merchant
from plugin_server.loyalty.overview import program_overview

from .session import db_read_session, runtime

home = Blueprint("home", __name__)


@home.get("/")
def index() -> str:
    settings = runtime().settings
    session = db_read_session()
    # Shoppers' names are shown: only for the demo store, never on a production server.
    demo = None if settings.is_production else find_demo_merchant(session)
    overview = program_overview(session, demo.id) if demo else None
    return render_template("home.html", demo=demo, overview=overview, settings=settings)
