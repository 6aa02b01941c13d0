"""The whole redemption use case across its transactions: claim the idempotency key and hold
the points; call the platform outside any transaction; confirm, or void the hold."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from plugin_server.db import Database, unit_of_work
from plugin_server.models import IdempotencyRecord, Redemption, utcnow

from .errors import InsufficientPoints, LoyaltyError, PlatformRefused
from .idempotency import IN_PROGRESS, StoredAnswer, claim_key, request_hash, store_answer
from .program import get_merchant
from .rewards import (
    CodeIssuer,
    confirm_redemption,
    discount_request,
    hold_redemption,
    stale_holds,
    void_redemption,
)

log = logging.getLogger(__name__)

ERROR_STATUS = {
    "not_found": 404,
    "invalid_argument": 400,
    "insufficient_points": 409,
    "reward_unavailable": 409,
    "invalid_state": 409,
    "platform_refused": 502,
    "idempotency_conflict": 409,
}


def redemption_json(redemption: Redemption) -> dict[str, Any]:
    return {
        "id": redemption.id,
        "reward_id": redemption.reward_id,
        "reward_name": redemption.reward_name,
        "kind": redemption.reward_kind,
        "value": str(redemption.reward_value),
        "points_cost": redemption.points_cost,
        "state": redemption.state,
        "code": redemption.code,
        "expires_at": redemption.expires_at.isoformat() if redemption.expires_at else None,
        "created_at": redemption.created_at.isoformat(),
    }


def error_answer(error: LoyaltyError) -> StoredAnswer:
    body: dict[str, Any] = {"error": error.code, "message": str(error)}
    if isinstance(error, InsufficientPoints) and error.shortfall is not None:
        body["shortfall"] = error.shortfall
    return StoredAnswer(ERROR_STATUS.get(error.code, 400), body)


def redeem_reward(database: Database, merchant_id: int, member_id: int, reward_id: int,
                  idempotency_key: str, issuer: CodeIssuer) -> StoredAnswer:
    scope = f"redeem:{member_id}"
    digest = request_hash({"reward_id": reward_id})
    with unit_of_work(database) as session:
        stored = claim_key(session, merchant_id, scope, idempotency_key, digest)
        if stored is not None:
            return stored
        try:
            # A refused hold must leave no "held" row behind for the sweep to refund.
            with session.begin_nested():
                redemption = hold_redemption(session, merchant_id, member_id, reward_id)
                request = discount_request(session, redemption,
                                           get_merchant(session, merchant_id).currency)
        except LoyaltyError as error:
            answer = error_answer(error)
            store_answer(session, merchant_id, scope, idempotency_key, answer)
            return answer
    try:
        issued = issuer(request)
    except Exception as error:
        log.warning("platform refused redemption %s: %s", request.redemption_id, error)
        refused = error if isinstance(error, PlatformRefused) else PlatformRefused(
            f"the store could not create the discount code: {error}")
        with unit_of_work(database) as session:
            void_redemption(session, merchant_id, request.redemption_id, str(refused))
            answer = error_answer(refused)
            store_answer(session, merchant_id, scope, idempotency_key, answer)
        return answer
    with unit_of_work(database) as session:
        redemption = confirm_redemption(session, merchant_id, request.redemption_id, issued)
        answer = StoredAnswer(200, {"redemption": redemption_json(redemption)})
        store_answer(session, merchant_id, scope, idempotency_key, answer)
    return answer


def void_stale_holds(session: Session, timeout_seconds: int,
                     now: datetime | None = None) -> int:
    """Void holds older than the timeout (a crash between hold and code), and free their
    idempotency keys so the shopper can try again (L7)."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=timeout_seconds)
    voided = 0
    for redemption in stale_holds(session, cutoff):
        void_redemption(session, redemption.merchant_id, redemption.id,
                        "no discount code was created in time; points returned", now=now)
        voided += 1
    session.execute(delete(IdempotencyRecord).where(
        IdempotencyRecord.status_code == IN_PROGRESS, IdempotencyRecord.created_at < cutoff))
    return voided
