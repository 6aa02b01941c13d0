"""What an install needs from the shop: its settings and our webhook subscriptions.

Field names follow the Admin GraphQL API 2026-01: ``WebhookSubscriptionInput.uri`` (which
replaced ``callbackUrl`` from 2025-10 on). The privacy topics (``customers/data_request``,
``customers/redact``, ``shop/redact``) are declared in ``shopify.app.toml``, not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from integrations.shopify.admin import AdminClient, AdminQueryError

_SHOP_QUERY = "query { shop { name currencyCode ianaTimezone email myshopifyDomain } }"

_WEBHOOK_MUTATION = """
mutation webhookSubscriptionCreate(
  $topic: WebhookSubscriptionTopic!, $webhookSubscription: WebhookSubscriptionInput!
) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription) {
    webhookSubscription { id }
    userErrors { field message }
  }
}
""".strip()

# REST-style topic (what X-Shopify-Topic carries) -> GraphQL WebhookSubscriptionTopic.
WEBHOOK_TOPICS: dict[str, str] = {
    "orders/create": "ORDERS_CREATE",
    "orders/paid": "ORDERS_PAID",
    "orders/updated": "ORDERS_UPDATED",
    "orders/cancelled": "ORDERS_CANCELLED",
    "orders/fulfilled": "ORDERS_FULFILLED",
    "refunds/create": "REFUNDS_CREATE",
    "customers/create": "CUSTOMERS_CREATE",
    "customers/update": "CUSTOMERS_UPDATE",
    "app/uninstalled": "APP_UNINSTALLED",
    "shop/update": "SHOP_UPDATE",
}


@dataclass(frozen=True)
class ShopInfo:
    name: str
    currency: str
    iana_timezone: str
    email: str | None
    domain: str


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise AdminQueryError(f"shop query returned no {key}", [], "bad_response")
    return value


def fetch_shop(client: AdminClient) -> ShopInfo:
    data = client.execute(_SHOP_QUERY)
    shop = data.get("shop")
    if not isinstance(shop, dict):
        raise AdminQueryError("shop query returned no shop", [], "bad_response")
    email = shop.get("email")
    return ShopInfo(
        name=_text(shop, "name"),
        currency=_text(shop, "currencyCode"),
        iana_timezone=_text(shop, "ianaTimezone"),
        email=email if isinstance(email, str) and email else None,
        domain=_text(shop, "myshopifyDomain").lower(),
    )


def _already_subscribed(errors: list[dict[str, Any]]) -> bool:
    # Shopify says "Address for this topic has already been taken"; UserError has no code.
    return bool(errors) and all("already been taken" in str(e.get("message", "")).lower()
                                for e in errors)


def register_webhooks(client: AdminClient, callback_url: str) -> list[str]:
    """Subscribe ``callback_url`` to every topic in WEBHOOK_TOPICS; safe to run again.

    Returns the ids of the subscriptions created now; a topic already subscribed at this
    address counts as success but has no id to return. Other userErrors raise AdminQueryError.
    """
    ids: list[str] = []
    for topic in WEBHOOK_TOPICS.values():
        variables = {"topic": topic,
                     "webhookSubscription": {"uri": callback_url, "format": "JSON"}}
        data = client.execute(_WEBHOOK_MUTATION, variables)
        payload = data.get("webhookSubscriptionCreate")
        if not isinstance(payload, dict):
            raise AdminQueryError(f"no webhookSubscriptionCreate answer for {topic}", [],
                                  "bad_response")
        errors = [e for e in payload.get("userErrors") or [] if isinstance(e, dict)]
        if _already_subscribed(errors):
            continue
        if errors:
            messages = "; ".join(str(e.get("message")) for e in errors)
            raise AdminQueryError(f"subscribing {topic}: {messages}", errors, "user_errors")
        subscription = payload.get("webhookSubscription")
        sub_id = subscription.get("id") if isinstance(subscription, dict) else None
        if not isinstance(sub_id, str) or not sub_id:
            raise AdminQueryError(f"no subscription id for {topic}", [], "bad_response")
        ids.append(sub_id)
    return ids
