"""One-time sign-in links for the merchant admin (DESIGN: ``GET /admin/login?token=...``,
five minutes, used once). Only a hash of the token is kept, in ``oauth_nonces`` under the
name ``admin:<merchant id>``; spending it is a conditional update, so two clicks at once
sign in once."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from plugin_server.models import Merchant, OAuthNonce, utcnow

LINK_LIFETIME = timedelta(minutes=5)
TOKEN_BYTES = 32
_PREFIX = "admin:"


class LoginRefused(ValueError):
    """The link is unknown, used, expired, or its store is gone; the message says which."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_login_token(session: Session, merchant_id: int, now: datetime | None = None) -> str:
    now = now or utcnow()
    session.execute(delete(OAuthNonce).where(OAuthNonce.expires_at < now - LINK_LIFETIME))
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(OAuthNonce(nonce_hash=_digest(token), shop=f"{_PREFIX}{merchant_id}",
                           created_at=now, expires_at=now + LINK_LIFETIME))
    session.flush()
    return token


def spend_login_token(session: Session, token: str, now: datetime | None = None) -> int:
    """The merchant id the token signs in, spending it; LoginRefused otherwise."""
    now = now or utcnow()
    if not token or len(token) > 200:
        raise LoginRefused("the sign-in link has no valid token")
    row = session.execute(select(OAuthNonce).where(
        OAuthNonce.nonce_hash == _digest(token))).scalar_one_or_none()
    if row is None or not row.shop.startswith(_PREFIX):
        raise LoginRefused("this sign-in link is not one this server made")
    spent = session.execute(
        update(OAuthNonce)
        .where(OAuthNonce.id == row.id, OAuthNonce.used_at.is_(None),
               OAuthNonce.expires_at > now)
        .values(used_at=now).execution_options(synchronize_session=False))
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        raise LoginRefused("this sign-in link was used already or has expired (links last "
                           "five minutes); ask for a new one")
    merchant_id = int(row.shop[len(_PREFIX):])
    if session.get(Merchant, merchant_id) is None:
        raise LoginRefused("the store this link was made for no longer exists")
    return merchant_id
