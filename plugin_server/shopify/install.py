"""Installing the app in a shop: the single-use ``state`` nonce, and what a finished install
leaves behind (an active merchant, its encrypted tokens, a default program)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from integrations.shopify.oauth import ShopToken
from plugin_server.loyalty.merchants import create_merchant, store_credentials
from plugin_server.loyalty.program import ensure_settings
from plugin_server.models import Merchant, Reward, utcnow
from plugin_server.nonces import issue_nonce, spend_nonce

STATE_LIFETIME = timedelta(minutes=10)
# Shopify's clock and ours may differ a little: only events clearly older than the latest
# install count as stale.
CLOCK_SKEW = timedelta(seconds=5)

# What a new program offers until the merchant changes it ("{amount}": 5 in the shop's money).
DEFAULT_REWARDS = (
    ("{amount} off your order", "fixed_amount", 500, Decimal(5)),
    ("10% off your order", "percentage", 1000, Decimal(10)),
    ("Free shipping", "free_shipping", 750, Decimal(0)),
)
CURRENCY_SYMBOLS = {"USD": "$", "CAD": "CA$", "AUD": "A$", "EUR": "€", "GBP": "£", "JPY": "¥",
                    "INR": "₹", "BRL": "R$", "CNY": "CN¥", "VND": "₫"}


def money_label(amount: Decimal, currency: str) -> str:
    symbol = CURRENCY_SYMBOLS.get(currency)
    number = f"{amount.normalize():f}"
    return f"{symbol}{number}" if symbol else f"{number} {currency}"


def name_default_rewards(session: Session, merchant: Merchant) -> None:
    """Name the untouched default rewards in the shop's currency, once it is known."""
    for template, kind, cost, value in DEFAULT_REWARDS:
        if "{amount}" not in template:
            continue
        names = {template.format(amount=money_label(value, code))
                 for code in (*CURRENCY_SYMBOLS, merchant.currency)}
        for reward in session.execute(
                select(Reward).where(Reward.merchant_id == merchant.id, Reward.kind == kind,
                                     Reward.points_cost == cost, Reward.value == value)
        ).scalars():
            if reward.name in names:
                reward.name = template.format(amount=money_label(value, merchant.currency))


# Bumped whenever this process installs or uninstalls a shop, so that what the storefront
# remembers about shops is looked up again at once here (other processes within seconds).
_status_changes = 0


def status_changes() -> int:
    return _status_changes


def _status_changed() -> None:
    global _status_changes
    _status_changes += 1


class InstallError(Exception):
    """The install request cannot go on; the message is shown to the merchant."""


def issue_state(session: Session, shop: str, now: datetime | None = None) -> str:
    """A fresh ``state`` for one authorize redirect."""
    return issue_nonce(session, shop, STATE_LIFETIME, now)


def consume_state(session: Session, nonce: str, shop: str, now: datetime | None = None) -> None:
    """Spend a ``state`` once. A replayed, expired, unknown or other shop's nonce is refused."""
    if not spend_nonce(session, nonce, shop, now):
        raise InstallError("This install link has expired or was already used. "
                           "Start the install again from your Shopify admin.")


@dataclass(frozen=True)
class Installed:
    merchant_id: int
    reinstalled: bool


def shopify_merchant(session: Session, shop: str) -> Merchant | None:
    return session.execute(
        select(Merchant).where(Merchant.platform == "shopify", Merchant.shop == shop)
    ).scalar_one_or_none()


def save_token(merchant: Merchant, encryption_key: str, token: ShopToken) -> None:
    store_credentials(merchant, encryption_key, {"token": token.to_dict()})


def finish_install(session: Session, shop: str, token: ShopToken, encryption_key: str,
                   now: datetime | None = None) -> Installed:
    """Make the shop an active merchant holding this token. A reinstall (after uninstall, or
    after the shop's data was erased) keeps whatever program and members are still there."""
    now = now or utcnow()
    merchant = shopify_merchant(session, shop)
    reinstalled = merchant is not None
    if merchant is None:
        merchant = create_merchant(session, "shopify", shop, name=shop.split(".")[0])
    if merchant.program_started_at is None or merchant.status == "purging":
        merchant.program_started_at = now  # a first install, or a fresh start after erasure
        merchant.sync_checkpoint = None
    merchant.status = "active"
    _status_changed()
    merchant.installed_at = now
    merchant.uninstalled_at = None
    save_token(merchant, encryption_key, token)
    ensure_settings(session, merchant)
    has_rewards = session.execute(
        select(Reward.id).where(Reward.merchant_id == merchant.id).limit(1)
    ).first()
    if has_rewards is None:
        for template, kind, cost, value in DEFAULT_REWARDS:
            name = template.format(amount=money_label(value, merchant.currency))
            session.add(Reward(merchant_id=merchant.id, name=name, kind=kind, points_cost=cost,
                               value=value, expires_days=90, created_at=now))
    session.flush()
    return Installed(merchant.id, reinstalled)


def is_connected(merchant: Merchant | None) -> bool:
    """Installed and holding a token: opening the app again needs no new grant."""
    return merchant is not None and merchant.status == "active" and (
        merchant.credentials is not None)


def predates_install(merchant: Merchant, triggered_at: datetime | None) -> bool:
    """A delivery about something that happened before the latest install (a retried
    app/uninstall or shop/redact from an earlier life of the shop)."""
    return (triggered_at is not None and merchant.installed_at is not None
            and triggered_at < merchant.installed_at - CLOCK_SKEW)


def mark_uninstalled(session: Session, merchant: Merchant, now: datetime | None = None) -> None:
    """The shop removed the app: its token is dead, so drop it; keep the program and members
    for a reinstall until Shopify asks for the shop's data to be erased (shop/redact)."""
    if merchant.status == "purging":
        return
    merchant.status = "uninstalled"
    _status_changed()
    merchant.uninstalled_at = now or utcnow()
    merchant.credentials = None
