"""Changing a test merchant's program settings."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin_server.db import Database, unit_of_work
from plugin_server.models import ProgramSettings


def set_program(session: Session, merchant_id: int, **values: Any) -> ProgramSettings:
    """Set fields of the merchant's ProgramSettings row within the caller's transaction."""
    settings = session.execute(
        select(ProgramSettings).where(ProgramSettings.merchant_id == merchant_id)
    ).scalar_one()
    for name, value in values.items():
        setattr(settings, name, value)
    return settings


def configure(database: Database, merchant_id: int, **values: Any) -> None:
    """Change the merchant's program settings in a transaction of its own."""
    with unit_of_work(database) as session:
        set_program(session, merchant_id, **values)
