"""Shopify adapter: pure code between Shopify's APIs and ``integrations.base`` dataclasses.

- ``payloads``: REST and webhook bodies (``orders/*``, ``refunds/create``, ``customers/*``) and
  Admin GraphQL order nodes, amounts always in the shop's currency (``shop_money``).
- ``order_queries``: the GraphQL order reads (paged polling for reconciliation, bulk operations
  for history import) over any ``execute(query, variables)`` client.
- ``admin``, ``oauth``, ``shop``, ``discounts``: the Admin API client, install and tokens, shop
  settings and webhook subscriptions, reward codes.
"""
