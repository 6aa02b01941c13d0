"""One-time tokens kept hashed in ``oauth_nonces``: Shopify's install ``state``, WooCommerce's
connect nonce and the admin's sign-in links. Each belongs to an owner (a shop, a store URL,
``admin:<merchant id>``) and lives a few minutes; spending is a conditional update, so two
requests carrying one token at the same moment spend it once."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from plugin_server.models import OAuthNonce, utcnow

TOKEN_BYTES = 32  # 256 random bits (Shopify asks for at least 128)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_nonce(session: Session, owner: str, lifetime: timedelta,
                now: datetime | None = None) -> str:
    """A fresh token for ``owner``, valid for ``lifetime``; expired ones are cleared on the
    way."""
    now = now or utcnow()
    session.execute(delete(OAuthNonce).where(OAuthNonce.expires_at < now - lifetime))
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(OAuthNonce(nonce_hash=digest(token), shop=owner, created_at=now,
                           expires_at=now + lifetime))
    session.flush()
    return token


def nonce_owner(session: Session, token: str) -> str | None:
    """Whose token this is, spent or not; None for a token this server never issued."""
    return session.execute(select(OAuthNonce.shop).where(
        OAuthNonce.nonce_hash == digest(token))).scalar_one_or_none()


def spend_nonce(session: Session, token: str, owner: str, now: datetime | None = None) -> bool:
    """Spend ``owner``'s token once: False when it is unknown, someone else's, used or
    expired."""
    now = now or utcnow()
    spent = session.execute(
        update(OAuthNonce)
        .where(OAuthNonce.nonce_hash == digest(token), OAuthNonce.shop == owner,
               OAuthNonce.used_at.is_(None), OAuthNonce.expires_at > now)
        .values(used_at=now)
        .execution_options(synchronize_session=False))
    return spent.rowcount == 1  # type: ignore[attr-defined,no-any-return]
