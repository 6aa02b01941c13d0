"""The Shopify adapter's configuration, taken from the server's settings."""

from __future__ import annotations

from integrations.shopify.admin import ShopifyConfig
from plugin_server.config import Settings

WEBHOOK_PATH = "/webhooks/shopify"
CALLBACK_PATH = "/shopify/callback"


def shopify_config(settings: Settings) -> ShopifyConfig:
    return ShopifyConfig(
        api_key=settings.SHOPIFY_API_KEY,
        api_secret=settings.SHOPIFY_API_SECRET,
        api_secret_old=settings.SHOPIFY_API_SECRET_OLD,
        api_version=settings.SHOPIFY_API_VERSION,
        url_override=settings.SHOPIFY_ADMIN_URL_OVERRIDE,
    )


def app_url(settings: Settings, path: str) -> str:
    return settings.APP_URL.rstrip("/") + path
