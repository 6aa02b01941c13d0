"""``POST .../redeem`` for every storefront transport: parse, call the redemption service,
answer with what it decided (replayed as is for a repeated ``Idempotency-Key``, L8)."""

from __future__ import annotations

from flask import Response, jsonify, request

from integrations.base import Customer
from plugin_server.db import unit_of_work
from plugin_server.loyalty.members import member_for_customer
from plugin_server.loyalty.redeem import redeem_reward

from .errors import error_response
from .rate_limit import limiter
from .session import runtime

MAX_KEY_LENGTH = 200
# A shopper redeems a few times a day; more than this a minute is a script.
REDEEMS_PER_MINUTE = 10


def redeem_for_customer(merchant_id: int, platform: str, customer_id: str,
                        account_email: str | None = None) -> tuple[Response, int]:
    """``account_email``: the account's own email when the store signed it (WooCommerce's
    plugin signs the WordPress user's), so the member has one to restrict the code to even
    if no customer record reached us."""
    if not limiter("redeem", REDEEMS_PER_MINUTE).allow((merchant_id, customer_id)):
        return error_response("rate_limited", f"at most {REDEEMS_PER_MINUTE} redemptions a "
                              "minute; try again shortly", 429)
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        return error_response("idempotency_key_required",
                              f"send an Idempotency-Key header of 1 to {MAX_KEY_LENGTH} "
                              "characters, new for each redemption", 400)
    data = request.get_json(silent=True)
    reward_id = data.get("reward_id") if isinstance(data, dict) else None
    if isinstance(reward_id, str) and reward_id.isascii() and reward_id.isdigit():
        reward_id = int(reward_id)
    if isinstance(reward_id, bool) or not isinstance(reward_id, int) or not (
            0 < reward_id < 2**63):
        return error_response("invalid_argument",
                              'send JSON like {"reward_id": 12} with a reward id', 400)
    issuer = runtime().code_issuers.get(platform)
    if issuer is None:
        return error_response("not_configured", f"no discount codes on {platform}", 503)
    database = runtime().database
    with unit_of_work(database) as session:
        member = member_for_customer(session, merchant_id,
                                     Customer(customer_id=customer_id, email=account_email))
        assert member is not None
        member_id = member.id
    answer = redeem_reward(database, merchant_id, member_id, reward_id, key, issuer)
    return jsonify(answer.body), answer.status_code
