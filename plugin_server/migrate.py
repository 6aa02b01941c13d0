"""Running Alembic migrations from code (``loyalty db upgrade``, tests, the demo)."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config

from .db import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url",
                           database.engine.url.render_as_string(hide_password=False)
                           .replace("%", "%%"))
    return config


def upgrade(database: Database, revision: str = "head") -> None:
    logging.getLogger("alembic").setLevel(logging.WARNING)
    with database.engine.connect() as connection:
        config = alembic_config(database)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        connection.commit()
