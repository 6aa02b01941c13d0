"""WooCommerce adapter (built in the WooCommerce issue)."""
