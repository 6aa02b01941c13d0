"""Changing a test merchant's program settings."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin_server.db import Database, unit_of_work
from plugin_server.models import EarningRule, ProgramSettings


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


def add_multipliers(session: Session, merchant_id: int,
                    *rules: tuple[str, str, str | int]) -> None:
    """EarningRule rows from (target, target id, factor) triples."""
    session.add_all([EarningRule(merchant_id=merchant_id, target=target, target_id=target_id,
                                 factor=Decimal(factor)) for target, target_id, factor in rules])
