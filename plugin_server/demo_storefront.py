"""What the demo's store page shows: the demo shop's products, a shopper switch, a language
picker, and the widget's script tag written exactly as the Shopify app embed or the WordPress
plugin writes it (the plugin's signed shopper identity included, signed here as the plugin
would with the store's widget secret)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from integrations.woocommerce.identity import signed_identity

from .db import Database, unit_of_work
from .demo import DEMO_SHOP, PRODUCTS, find_demo_merchant
from .loyalty.widget_identity import widget_secret_for
from .models import Member

LANGUAGE_NAMES = {
    "en": "English", "ja": "日本語", "vi": "Tiếng Việt", "te": "తెలుగు", "hy": "Հայերեն",
    "es": "Español", "fr": "Français", "de": "Deutsch", "pt-BR": "Português (Brasil)",
    "zh-CN": "简体中文", "hi": "हिन्दी", "ar": "العربية",
}
EMBEDS = {"shopify": "Shopify app embed (App Proxy)",
          "wordpress": "WordPress plugin (signed shopper token)"}
SHOPPERS_SHOWN = 6


def demo_storefront(database: Database, encryption_key: str, customer_id: str | None,
                    language: str, embed: str, app_url: str,
                    open_at_once: bool = False) -> dict[str, Any]:
    embed = embed if embed in EMBEDS else "shopify"
    with unit_of_work(database) as session:
        merchant = find_demo_merchant(session)
        if merchant is None:
            raise LookupError("no demo merchant: run loyalty demo")
        members = session.execute(
            select(Member).where(Member.merchant_id == merchant.id,
                                 Member.customer_id.is_not(None))
            .order_by(Member.balance.desc(), Member.id).limit(SHOPPERS_SHOWN)).scalars()
        shoppers = [{"customer_id": m.customer_id, "name": m.display_name,
                     "email": m.email or "", "balance": m.balance} for m in members]
        shopper = next((s for s in shoppers if s["customer_id"] == customer_id), None)
        if customer_id and shopper is None:
            found = session.execute(select(Member).where(
                Member.merchant_id == merchant.id,
                Member.customer_id == customer_id)).scalar_one_or_none()
            shopper = {"customer_id": customer_id, "email": found.email if found else "",
                       "name": found.display_name if found else f"Shopper {customer_id}",
                       "balance": found.balance if found else 0}
            shoppers.append(shopper)
        attributes: list[tuple[str, str]] = [("src", f"{app_url}/widget/loader.js")]
        if embed == "shopify":
            attributes += [("data-platform", "shopify"), ("data-shop", DEMO_SHOP),
                           ("data-customer-id", customer_id or ""),
                           ("data-locale", language), ("data-currency", merchant.currency),
                           ("data-api-base", "/apps/loyalty/api")]
        else:
            attributes += [("data-platform", "demo"), ("data-shop", merchant.store_id),
                           ("data-customer-id", customer_id or ""),
                           ("data-locale", language), ("data-currency", merchant.currency),
                           ("data-api-base", f"{app_url}/api/storefront")]
            if customer_id:
                secret = widget_secret_for(session, merchant, encryption_key)
                identity = signed_identity(secret, merchant.store_id, customer_id,
                                           shopper["email"] if shopper else "")
                attributes.append(("data-identity", json.dumps(identity)))
        if open_at_once:
            attributes.append(("data-open", ""))
        shop_name = merchant.name
    return {
        "shop_name": shop_name, "shoppers": shoppers, "shopper": shopper,
        "customer_id": customer_id, "language": language, "languages": LANGUAGE_NAMES,
        "embed": embed, "embeds": EMBEDS, "attributes": attributes,
        "products": [{"id": pid, "title": title, "price": price}
                     for pid, title, price, _ in PRODUCTS[:4]],
        "cart_total": "46.00",
    }
