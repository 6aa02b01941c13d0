"""A first end-to-end pass through the engine: award, refund, cancel, redeem."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from plugin_server.db import unit_of_work
from plugin_server.loyalty.audit import ledger_differences
from plugin_server.loyalty.orders import sync_order
from plugin_server.models import Member, Reward
from tests.support.builders import line, order, refund, with_refunds


def test_award_refund_cancel_nets_zero(runtime, merchant_id):
    placed = order("1001", line("1", "40.00"), line("2", "10.50"))
    with unit_of_work(runtime.database) as session:
        outcome = sync_order(session, merchant_id, placed)
        assert outcome.awarded == 50
    partial = with_refunds(placed, refund("r1", ("1", 1, "40.00")))
    with unit_of_work(runtime.database) as session:
        outcome = sync_order(session, merchant_id, partial)
        assert outcome.reversed == 40
    cancelled = with_refunds(partial, later=timedelta(days=2))
    from dataclasses import replace

    cancelled = replace(cancelled, cancelled=True)
    with unit_of_work(runtime.database) as session:
        sync_order(session, merchant_id, cancelled)
        member = session.query(Member).one()
        assert (member.balance, member.pending) == (0, 0)
        assert ledger_differences(session) == []


def test_redeem_through_demo_issuer(runtime, merchant_id):
    from plugin_server.loyalty.redeem import redeem_reward

    with unit_of_work(runtime.database) as session:
        sync_order(session, merchant_id, order("1", line("1", "700.00")))
        reward = Reward(merchant_id=merchant_id, name="$5 off", kind="fixed_amount",
                        points_cost=500, value=Decimal(5))
        session.add(reward)
        session.flush()
        member_id = session.query(Member).one().id
        reward_id = reward.id
    issuer = runtime.code_issuers["demo"]
    first = redeem_reward(runtime.database, merchant_id, member_id, reward_id, "k1", issuer)
    assert first.status_code == 200
    again = redeem_reward(runtime.database, merchant_id, member_id, reward_id, "k1", issuer)
    assert again == first
    broke = redeem_reward(runtime.database, merchant_id, member_id, reward_id, "k2", issuer)
    assert broke.status_code == 409
    with unit_of_work(runtime.database) as session:
        assert session.query(Member).one().balance == 200
