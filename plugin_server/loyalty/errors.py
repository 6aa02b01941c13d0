"""Typed errors the engine raises; each message is one a merchant or operator can act on."""

from __future__ import annotations


class LoyaltyError(Exception):
    """Base class. ``code`` is a stable machine-readable name for API answers."""

    code = "loyalty_error"


class NotFound(LoyaltyError):
    code = "not_found"


class InvalidArgument(LoyaltyError):
    code = "invalid_argument"


class InsufficientPoints(LoyaltyError):
    code = "insufficient_points"

    def __init__(self, message: str, shortfall: int | None = None) -> None:
        super().__init__(message)
        # How many more points the shopper needs, when known.
        self.shortfall = shortfall


class RewardUnavailable(LoyaltyError):
    code = "reward_unavailable"


class InvalidState(LoyaltyError):
    code = "invalid_state"


class IdempotencyConflict(LoyaltyError):
    code = "idempotency_conflict"


class PlatformRefused(LoyaltyError):
    """The platform would not create a discount code; the hold has been voided."""

    code = "platform_refused"
