"""The server's side of the Shopify app: install, tokens, webhook topics, discount codes,
history import and reconciliation. The protocol itself lives in ``integrations.shopify``."""
