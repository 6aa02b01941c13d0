"""Tier windows follow the calendar: twelve months back, and years in the merchant's zone."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from plugin_server.db import unit_of_work
from plugin_server.loyalty.orders import sync_order
from plugin_server.loyalty.program import load_program
from plugin_server.loyalty.rules import TierWindow, window_start
from plugin_server.loyalty.tiers import reevaluate_member_tier
from plugin_server.models import Member, Merchant, Tier
from tests.support.builders import line, order
from tests.support.program import set_program


def test_rolling_window_is_twelve_calendar_months() -> None:
    now = datetime(2026, 7, 15, 9, 30, tzinfo=UTC)
    assert window_start(TierWindow.ROLLING_12_MONTHS, now) == datetime(2025, 7, 15, 9, 30,
                                                                      tzinfo=UTC)
    leap = datetime(2028, 2, 29, tzinfo=UTC)
    assert window_start(TierWindow.ROLLING_12_MONTHS, leap) == datetime(2027, 2, 28, tzinfo=UTC)


def test_calendar_year_starts_at_the_merchants_local_midnight(runtime, merchant_id) -> None:
    """An order placed at 20:00 UTC on 31 December is already 1 January in Tokyo: it counts
    for a Tokyo shop's new year, and not for a UTC shop's."""
    new_year_in_tokyo = datetime(2026, 12, 31, 20, 0, tzinfo=UTC)
    now = datetime(2027, 3, 1, tzinfo=UTC)
    with unit_of_work(runtime.database) as session:
        session.get(Merchant, merchant_id).timezone = "Asia/Tokyo"
        set_program(session, merchant_id, tier_window="calendar_year")
        session.add(Tier(merchant_id=merchant_id, name="Silver", threshold=Decimal(10)))
    with unit_of_work(runtime.database) as session:
        placed = order("1", line("1", "50.00"))
        sync_order(session, merchant_id, replace(placed, created_at=new_year_in_tokyo,
                                                 updated_at=new_year_in_tokyo), now=now)
    with unit_of_work(runtime.database) as session:
        member = session.query(Member).one()
        assert (member.tier_progress, member.tier_id is not None) == (Decimal(50), True)
        program = load_program(session, merchant_id)
        assert program.local(now).utcoffset() == timedelta(hours=9)
    with unit_of_work(runtime.database) as session:
        session.get(Merchant, merchant_id).timezone = "UTC"
    with unit_of_work(runtime.database) as session:
        member = session.query(Member).one()
        reevaluate_member_tier(session, load_program(session, merchant_id), member, now)
        assert (member.tier_progress, member.tier_id) == (Decimal(0), None)


def test_an_unknown_timezone_falls_back_to_utc(runtime, merchant_id) -> None:
    with unit_of_work(runtime.database) as session:
        session.get(Merchant, merchant_id).timezone = "Mars/Olympus_Mons"
    with unit_of_work(runtime.database) as session:
        moment = datetime(2026, 1, 1, tzinfo=UTC)
        assert load_program(session, merchant_id).local(moment) == moment
