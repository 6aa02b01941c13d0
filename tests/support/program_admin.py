"""The admin's program section under test: signed-in clients with a settings row for both
shops, form posts with the CSRF token, and readers of what was saved and logged."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from plugin_server.db import unit_of_work
from plugin_server.loyalty.storefront import public_program
from plugin_server.models import (
    AdminActivity,
    EarningRule,
    ProgramSettings,
    Reward,
    Tier,
)
from tests.support.admin import OTHER_SHOP, SHOP, csrf_token, merchant_named, signed_in_client

EARNING = {"points_per_unit": "1", "rounding": "down", "award_on": "payment",
           "pending_days": "0"}


@pytest.fixture
def app(admin_app: Flask) -> Flask:
    return admin_app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    with unit_of_work(database(app)) as session:
        for shop in (SHOP, OTHER_SHOP):
            session.add(ProgramSettings(merchant_id=merchant_named(app, shop).id))
    return signed_in_client(app, SHOP)


def post(client: FlaskClient, path: str, data: dict[str, str]) -> tuple[int, str]:
    answer = client.post(path, data={"csrf_token": csrf_token(client), **data})
    return answer.status_code, answer.get_data(as_text=True)


def database(app: Flask) -> Any:
    return app.extensions["loyalty"].database


def settings_of(app: Flask, shop: str = SHOP) -> dict[str, Any]:
    with unit_of_work(database(app)) as session:
        row = session.execute(select(ProgramSettings).where(
            ProgramSettings.merchant_id == merchant_named(app, shop).id)).scalar_one_or_none()
        if row is None:
            return {}
        return {column.name: getattr(row, column.name)
                for column in ProgramSettings.__table__.columns if column.name != "updated_at"}


def activity(app: Flask, action: str | None = None) -> list[dict[str, Any]]:
    with unit_of_work(database(app)) as session:
        query = select(AdminActivity).order_by(AdminActivity.id)
        if action:
            query = query.where(AdminActivity.action == action)
        return [{"action": row.action, "actor": row.actor, **json.loads(row.detail_json)}
                for row in session.execute(query).scalars()]


def tiers_of(app: Flask, shop: str = SHOP, *, active: bool | None = True) -> list[Tier]:
    with unit_of_work(database(app)) as session:
        query = select(Tier).where(Tier.merchant_id == merchant_named(app, shop).id)
        if active is not None:
            query = query.where(Tier.active.is_(active))
        found = list(session.execute(query.order_by(Tier.threshold)).scalars())
        session.expunge_all()
        return found


def ladder(*rows: tuple[str, str, str] | tuple[str, str, str, dict[str, str]],
           basis: str = "points_earned", window: str = "lifetime") -> dict[str, str]:
    """Form fields for rows of (id or "", name, threshold[, more fields]) in this order."""
    form = {"tier_basis": basis, "tier_window": window}
    for number, row in enumerate(rows):
        tier_id, name, threshold = row[:3]
        more = row[3] if len(row) > 3 else {}
        form.update({f"tiers-{number}-id": tier_id, f"tiers-{number}-name": name,
                     f"tiers-{number}-threshold": threshold})
        form.update({f"tiers-{number}-{key}": value for key, value in more.items()})
    return form


REWARD = {"name": "5 off", "kind": "fixed_amount", "points_cost": "500", "value": "5",
          "enabled": "on"}


def storefront_program(app: Flask, shop: str = SHOP) -> dict[str, Any]:
    with unit_of_work(database(app)) as session:
        return public_program(session, merchant_named(app, shop).id)


def rewards_of(app: Flask, shop: str = SHOP) -> list[Reward]:
    with unit_of_work(database(app)) as session:
        found = list(session.execute(select(Reward).where(
            Reward.merchant_id == merchant_named(app, shop).id).order_by(Reward.id)).scalars())
        session.expunge_all()
        return found


def multipliers_of(app: Flask, shop: str = SHOP) -> list[tuple[str, str, Decimal, str]]:
    with unit_of_work(database(app)) as session:
        return [(rule.target, rule.target_id, rule.factor, rule.label)
                for rule in session.execute(select(EarningRule).where(
                    EarningRule.merchant_id == merchant_named(app, shop).id)
                    .order_by(EarningRule.target, EarningRule.target_id)).scalars()]


def rules(*rows: tuple[str, str, str, str]) -> dict[str, str]:
    form = {"multipliers_shown": "1"}
    for number, (target, target_id, factor, label) in enumerate(rows):
        form.update({f"multipliers-{number}-target": target,
                     f"multipliers-{number}-target_id": target_id,
                     f"multipliers-{number}-factor": factor,
                     f"multipliers-{number}-label": label})
    return form


