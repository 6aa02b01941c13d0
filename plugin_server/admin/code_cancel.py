"""The merchant cancels a reward code the shopper has not used, and the points come back.

Giving the points back while the code still works at checkout would pay twice, so the order
is: check the redemption (read only), disable the code on the platform with no transaction
open (a slow store must not hold the database), then, only if the platform reports no use,
void the redemption and credit its points in one transaction. The credit's ledger key
(``redemption_void``, redemption id) is unique, so a second cancel or a double-click can never
credit twice (L1); the loser is told the code is already cancelled."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from integrations.base import CodeToDisable
from plugin_server.db import Database, unit_of_work
from plugin_server.loyalty.errors import InvalidState, PlatformRefused
from plugin_server.loyalty.rewards import CodeDisabler, get_redemption, void_redemption
from plugin_server.models import Order, Redemption, utcnow

from .activity import record_activity

log = logging.getLogger(__name__)
VOID_REASON = "reward code cancelled by the merchant; points returned"


class CancelRefused(InvalidState):
    """The code cannot be cancelled (used, expired, already cancelled...): nothing changed.
    ``key`` and ``values`` are the merchant's message in the admin catalogs."""

    def __init__(self, message: str, member_id: int, key: str, **values: Any) -> None:
        super().__init__(message)
        self.member_id = member_id
        self.key = key
        self.values = values


class CancelFailed(PlatformRefused):
    """The store did not disable the code (unreachable, 5xx, refused): nothing changed, and
    the merchant may try again."""

    def __init__(self, message: str, member_id: int) -> None:
        super().__init__(message)
        self.member_id = member_id


class _DisabledButRefused(Exception):
    """A refusal met after the store already disabled the code."""

    def __init__(self, refused: CancelRefused) -> None:
        super().__init__(str(refused))
        self.refused = refused


def _disabled_but_refused(refused: CancelRefused, code: str) -> _DisabledButRefused:
    if refused.key == "members.cancel.used_on_order":
        refused.key = "members.cancel.used_after_disabling"
    return _DisabledButRefused(refused)


@dataclass(frozen=True)
class CancelledCode:
    redemption_id: int
    member_id: int
    code: str
    points: int


@contextmanager
def _reading(database: Database) -> Iterator[Session]:
    session = database.read_session()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def order_using_code(session: Session, merchant_id: int, code: str) -> Order | None:
    """A stored order of the merchant that carries ``code`` (any case: WooCommerce lowers
    codes), whatever became of the order since: a use is a use."""
    escaped = code.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    candidates = session.execute(
        select(Order).where(Order.merchant_id == merchant_id,
                            func.lower(Order.discount_codes).like(f"%{escaped}%", escape="\\"))
        .order_by(Order.id)).scalars()
    for order in candidates:  # the LIKE narrows; the JSON list decides
        try:
            codes = json.loads(order.discount_codes)
        except ValueError:
            continue
        if any(str(used).casefold() == code.casefold() for used in codes or []):
            return order
    return None


def _refuse_unless_cancellable(session: Session, redemption: Redemption,
                               now: datetime) -> str:
    """The redemption's code, or CancelRefused saying why it cannot be cancelled."""
    member_id = redemption.member_id
    if redemption.state == "held":
        raise CancelRefused(f"redemption {redemption.id} is still being issued", member_id,
                            "members.cancel.held")
    if redemption.state != "issued" or not redemption.code:
        raise CancelRefused(f"redemption {redemption.id} is already {redemption.state}",
                            member_id, "members.cancel.done")
    if redemption.expires_at is not None and redemption.expires_at <= now:
        raise CancelRefused(f"code {redemption.code} has expired", member_id,
                            "members.cancel.expired", code=redemption.code)
    order = order_using_code(session, redemption.merchant_id, redemption.code)
    if order is not None:
        raise CancelRefused(f"code {redemption.code} was used on order {order.name}",
                            member_id, "members.cancel.used_on_order", code=redemption.code,
                            order=order.name or order.platform_order_id)
    return redemption.code


def cancel_reward_code(database: Database, merchant_id: int, redemption_id: int, actor: str,
                       disabler: CodeDisabler, now: datetime | None = None) -> CancelledCode:
    """Disable the redemption's code on the platform, then void the redemption and give its
    points back, once. NotFound for another merchant's redemption; CancelRefused when the
    code was used or is not cancellable; CancelFailed when the platform did not disable it.
    Call it with no transaction open: it runs its own."""
    now = now or utcnow()
    with _reading(database) as session:
        redemption = get_redemption(session, merchant_id, redemption_id)
        code = _refuse_unless_cancellable(session, redemption, now)
        member_id, points = redemption.member_id, redemption.points_cost
        target = CodeToDisable(merchant_id=merchant_id, redemption_id=redemption.id,
                               code=code, platform_discount_id=redemption.platform_discount_id)
    try:
        disabled = disabler(target)
    except PlatformRefused as error:
        log.warning("cancelling redemption %s: %s", redemption_id, error)
        raise CancelFailed(str(error), member_id) from error
    if disabled.used:
        # The code is disabled in the store now, but it had been used: the points were
        # spent. The store changed, so the log says so.
        with unit_of_work(database) as session:
            record_activity(session, merchant_id, actor, "redemption.cancel_refused",
                            {"member": member_id, "redemption": redemption_id, "code": code,
                             "usage_count": disabled.usage_count,
                             "used_by": ", ".join(disabled.used_by)})
        raise CancelRefused(f"the store reports code {code} used {disabled.usage_count} "
                            "time(s)", member_id, "members.cancel.used", code=code)
    try:
        with unit_of_work(database) as session:
            # An order with the code may have arrived while the store was being asked.
            redemption = get_redemption(session, merchant_id, redemption_id, lock=True)
            try:
                _refuse_unless_cancellable(session, redemption, now)
            except CancelRefused as refused:
                raise _disabled_but_refused(refused, code) from None
            void_redemption(session, merchant_id, redemption_id, VOID_REASON, actor=actor,
                            now=now)
            record_activity(session, merchant_id, actor, "redemption.cancel",
                            {"member": member_id, "redemption": redemption_id, "code": code,
                             "points": points})
    except _DisabledButRefused as refused:
        # The store changed (the code is disabled now): the log says so, like a used code.
        with unit_of_work(database) as session:
            record_activity(session, merchant_id, actor, "redemption.cancel_refused",
                            {"member": member_id, "redemption": redemption_id, "code": code,
                             "reason": str(refused.refused)})
        raise refused.refused from None
    except IntegrityError:
        # Another cancel credited these points between our check and our write (L1).
        raise CancelRefused(f"redemption {redemption_id} is already cancelled", member_id,
                            "members.cancel.done") from None
    return CancelledCode(redemption_id, member_id, code, points)
