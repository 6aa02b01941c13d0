"""Finding and creating merchants."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from plugin_server.crypto import decrypt_json, encrypt_json
from plugin_server.models import Merchant

from .errors import NotFound
from .program import ensure_settings


def resolve_merchant(session: Session, reference: str) -> Merchant:
    """A merchant by id, Shopify shop domain or WooCommerce store URL."""
    reference = reference.strip()
    query = select(Merchant)
    if reference.isdigit():
        query = query.where(Merchant.id == int(reference))
    else:
        bare = reference.lower().rstrip("/")
        query = query.where(or_(Merchant.shop == bare, Merchant.shop == reference))
    merchant = session.execute(query).scalars().first()
    if merchant is None:
        raise NotFound(f"no merchant {reference!r}")
    return merchant


def create_merchant(session: Session, platform: str, shop: str, *, name: str = "",
                    currency: str = "USD", timezone: str = "UTC") -> Merchant:
    merchant = Merchant(platform=platform, shop=shop, name=name or shop, currency=currency,
                        timezone=timezone, status="active")
    session.add(merchant)
    session.flush()
    ensure_settings(session, merchant)
    return merchant


def store_credentials(merchant: Merchant, encryption_key: str, values: dict[str, Any]) -> None:
    """Keep platform credentials (tokens, API keys) encrypted at rest, replaced as a whole."""
    merchant.credentials = encrypt_json(encryption_key, values)


def read_credentials(merchant: Merchant, encryption_key: str) -> dict[str, Any]:
    """The merchant's credentials; empty when none are stored. CredentialsError when the
    ENCRYPTION_KEY cannot read them."""
    if merchant.credentials is None:
        return {}
    return decrypt_json(encryption_key, merchant.credentials)


def merchant_summary(merchant: Merchant) -> dict[str, Any]:
    return {"id": merchant.id, "platform": merchant.platform, "shop": merchant.shop,
            "status": merchant.status}


def list_merchants(session: Session) -> list[Merchant]:
    return list(session.execute(select(Merchant).order_by(Merchant.id)).scalars())
