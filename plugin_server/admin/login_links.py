"""One-time sign-in links for the merchant admin (DESIGN: ``GET /admin/login?token=...``,
five minutes, used once). Only a hash of the token is kept (plugin_server.nonces), owned by
``admin:<merchant id>``; two clicks at once sign in once."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from plugin_server.models import Merchant
from plugin_server.nonces import issue_nonce, nonce_owner, spend_nonce

LINK_LIFETIME = timedelta(minutes=5)
_PREFIX = "admin:"


class LoginRefused(ValueError):
    """The link is unknown, used, expired, or its store is gone; the message says which."""


def issue_login_token(session: Session, merchant_id: int, now: datetime | None = None) -> str:
    return issue_nonce(session, f"{_PREFIX}{merchant_id}", LINK_LIFETIME, now)


def spend_login_token(session: Session, token: str, now: datetime | None = None) -> int:
    """The merchant id the token signs in, spending it; LoginRefused otherwise."""
    if not token or len(token) > 200:
        raise LoginRefused("the sign-in link has no valid token")
    owner = nonce_owner(session, token)
    if owner is None or not owner.startswith(_PREFIX):
        raise LoginRefused("this sign-in link is not one this server made")
    if not spend_nonce(session, token, owner, now):
        raise LoginRefused("this sign-in link was used already or has expired (links last "
                           "five minutes); ask for a new one")
    merchant_id = int(owner[len(_PREFIX):])
    if session.get(Merchant, merchant_id) is None:
        raise LoginRefused("the store this link was made for no longer exists")
    return merchant_id
