"""Shopify adapter (built in the Shopify issue)."""
