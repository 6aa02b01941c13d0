"""The server's WooCommerce side: connecting stores, their webhooks, coupons and reconciliation."""
