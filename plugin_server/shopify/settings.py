"""The Shopify adapter's configuration, taken from the server's settings."""

from __future__ import annotations

from functools import cache

from shopify_app import ShopifyApp

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


@cache
def _verifier(api_key: str, api_secret: str, api_secret_old: str) -> ShopifyApp:
    return ShopifyApp(api_key, api_secret, api_secret_old or None)


def shopify_app(settings: Settings) -> ShopifyApp | None:
    """Shopify's own request verifier for this app (both secrets during rotation), or None
    when the app's credentials are not configured."""
    if not settings.SHOPIFY_API_KEY or not settings.SHOPIFY_API_SECRET:
        return None
    return _verifier(settings.SHOPIFY_API_KEY, settings.SHOPIFY_API_SECRET,
                     settings.SHOPIFY_API_SECRET_OLD)
