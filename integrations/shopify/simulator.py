"""A stand-in for Shopify, for the demo and the tests: it signs webhooks and App Proxy
requests the way Shopify does, and answers the OAuth and Admin GraphQL calls this app makes
(``SHOPIFY_ADMIN_URL_OVERRIDE`` points the app at it). It speaks only the parts of the
protocol the app uses, as Shopify documents them; it is never used against a real shop."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from .shop import WEBHOOK_TOPICS

ACCESS_TOKEN_SECONDS = 3600
REFRESH_TOKEN_SECONDS = 90 * 24 * 3600


def webhook_signature(body: bytes, secret: str) -> str:
    """``X-Shopify-Hmac-Sha256``: base64 HMAC-SHA256 of the raw body."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def webhook_headers(body: bytes, secret: str, *, topic: str, shop: str, event_id: str,
                    api_version: str = "2026-01") -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": webhook_signature(body, secret),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-API-Version": api_version,
        "X-Shopify-Webhook-Id": secrets.token_hex(16),
        "X-Shopify-Event-Id": event_id,
        "X-Shopify-Triggered-At": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }


def proxy_signature(params: Mapping[str, str | list[str]], secret: str) -> str:
    """App Proxy ``signature``: sorted ``key=value`` (repeated values joined by ``,``),
    concatenated with no separator, hex HMAC-SHA256."""
    message = "".join(f"{key}={','.join(value) if isinstance(value, list) else value}"
                      for key, value in sorted(params.items()) if key != "signature")
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def proxy_query(shop: str, customer_id: str | None, secret: str, *,
                path_prefix: str = "/apps/loyalty", timestamp: int | None = None) -> str:
    """The query string Shopify adds when it forwards a storefront request to the app."""
    params: dict[str, str | list[str]] = {
        "shop": shop, "logged_in_customer_id": customer_id or "", "path_prefix": path_prefix,
        "timestamp": str(int(time.time()) if timestamp is None else timestamp),
    }
    params["signature"] = proxy_signature(params, secret)
    return urlencode(params)


def install_query(shop: str, secret: str, **extra: str) -> dict[str, str]:
    """The signed query Shopify puts on the App URL and the OAuth callback."""
    params = {"shop": shop, "timestamp": str(int(time.time())), **extra}
    message = "&".join(f"{key}={value}" for key, value in sorted(params.items()))
    params["hmac"] = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return params


@dataclass
class FakeShop:
    domain: str
    name: str = "Demo Shop"
    currency: str = "USD"
    timezone: str = "America/New_York"
    email: str = "owner@example.com"


@dataclass
class FakeShopify:
    """The shops' side: tokens it issued, discount codes and webhook subscriptions it holds,
    bulk results and orders it serves. Thread-safe; ``requests`` records every call."""

    api_key: str
    api_secret: str
    shops: dict[str, FakeShop] = field(default_factory=dict)
    access_tokens: dict[str, str] = field(default_factory=dict)      # token -> shop
    refresh_tokens: dict[str, str] = field(default_factory=dict)     # token -> shop
    used_codes: set[str] = field(default_factory=set)
    discounts: list[dict[str, Any]] = field(default_factory=list)    # mutation variables
    webhooks: list[dict[str, Any]] = field(default_factory=list)
    bulk_results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    orders: list[dict[str, Any]] = field(default_factory=list)       # GraphQL order nodes
    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    base_url: str = ""
    refuse_discounts: str = ""
    fail_next: list[int] = field(default_factory=list)  # Admin API statuses to answer first
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_shop(self, domain: str, **details: str) -> FakeShop:
        shop = FakeShop(domain, **details)
        self.shops[domain] = shop
        return shop

    def _discount(self, code: str) -> dict[str, Any] | None:
        wanted = code.casefold()  # Shopify matches codes ignoring case
        return next((d for d in self.discounts
                     if str(d["fields"].get("code", "")).casefold() == wanted), None)

    def code_applies(self, code: str) -> bool:
        """Whether checkout would take the code now: it exists, is active, has uses left."""
        with self._lock:
            found = self._discount(code)
            return found is not None and found["status"] == "ACTIVE" and \
                found["usage"] < (found["fields"].get("usageLimit") or 1_000_000)

    def use_code(self, code: str) -> None:
        """A shopper checks out with the code (as an order with it would)."""
        if not self.code_applies(code):
            raise ValueError(f"checkout refuses {code}: unknown, deactivated or used up")
        with self._lock:
            found = self._discount(code)
            assert found is not None
            found["usage"] += 1

    def handle(self, method: str, path: str, headers: Mapping[str, str],
               body: bytes) -> tuple[int, dict[str, Any] | str]:
        """One HTTP request to the fake: (status, JSON document or text)."""
        with self._lock:
            shop = headers.get("X-Forwarded-Host") or headers.get("Host", "")
            if path == "/admin/oauth/access_token" and method == "POST":
                return self._token(shop, body)
            if path.startswith("/admin/api/") and path.endswith("/graphql.json"):
                token_shop = self.access_tokens.get(headers.get("X-Shopify-Access-Token", ""))
                if token_shop is None or token_shop != shop:
                    return 401, {"errors": "[API] Invalid API key or access token"}
                if self.fail_next:
                    return self.fail_next.pop(0), {"errors": "Internal error"}
                return self._graphql(shop, json.loads(body or b"{}"))
            if path.startswith("/bulk/") and method == "GET":
                rows = self.bulk_results.get(path.removeprefix("/bulk/"), [])
                return 200, "".join(json.dumps(row) + "\n" for row in rows)
            return 404, {"errors": f"no route {method} {path}"}

    def _issue(self, shop: str) -> dict[str, Any]:
        access, refresh = "shpat_" + secrets.token_hex(16), "shprt_" + secrets.token_hex(16)
        self.access_tokens[access] = shop
        self.refresh_tokens[refresh] = shop
        return {"access_token": access, "scope": "read_orders,read_customers,write_discounts,"
                "write_app_proxy", "expires_in": ACCESS_TOKEN_SECONDS,
                "refresh_token": refresh, "refresh_token_expires_in": REFRESH_TOKEN_SECONDS}

    def _token(self, shop: str, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            data = json.loads(body)
        except ValueError:
            data = dict(parse_qsl(body.decode()))
        self.requests.append(("token", shop, data))
        if data.get("client_id") != self.api_key or data.get("client_secret") != self.api_secret:
            return 400, {"error": "invalid_client"}
        if shop not in self.shops:
            return 400, {"error": "invalid_request", "error_description": "unknown shop"}
        if data.get("grant_type") == "refresh_token":
            if self.refresh_tokens.pop(data.get("refresh_token", ""), None) != shop:
                return 400, {"error": "invalid_grant"}
            return 200, self._issue(shop)
        if "subject_token" in data:  # token exchange (Shopify-managed install)
            return 200, self._issue(shop)
        code = str(data.get("code", ""))
        if not code or code in self.used_codes:
            return 400, {"error": "invalid_grant",
                         "error_description": "authorization code was already used"}
        self.used_codes.add(code)
        return 200, self._issue(shop)

    def _graphql(self, shop: str, document: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        query: str = document.get("query", "")
        variables: dict[str, Any] = document.get("variables") or {}
        self.requests.append(("graphql", shop, {"query": query, "variables": variables}))
        cost = {"requestedQueryCost": 10, "actualQueryCost": 10,
                "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1990,
                                   "restoreRate": 100.0}}
        data = self._answer(shop, query, variables)
        return 200, {"data": data, "extensions": {"cost": cost}}

    def _answer(self, shop: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        details = self.shops[shop]
        if "discountCodeBasicCreate" in query or "discountCodeFreeShippingCreate" in query:
            name = ("discountCodeFreeShippingCreate" if "FreeShipping" in query
                    else "discountCodeBasicCreate")
            fields = next(iter(variables.values()), {})
            errors = []
            if self.refuse_discounts:
                errors = [{"field": ["code"], "code": "INVALID",
                           "message": self.refuse_discounts}]
            elif any(d["fields"].get("code") == fields.get("code") for d in self.discounts):
                errors = [{"field": ["code"], "code": "TAKEN",
                           "message": "Code must be unique. Please try a different code."}]
            if errors:
                return {name: {"codeDiscountNode": None, "userErrors": errors}}
            gid = f"gid://shopify/DiscountCodeNode/{len(self.discounts) + 1}"
            self.discounts.append({"shop": shop, "mutation": name, "fields": fields,
                                   "id": gid, "status": "ACTIVE", "usage": 0})
            return {name: {"codeDiscountNode": {"id": gid}, "userErrors": []}}
        if "discountCodeDeactivate" in query:
            return {"discountCodeDeactivate": self._deactivate(shop, str(variables.get("id")))}
        if "codeDiscountNodeByCode" in query:
            found = self._discount(str(variables.get("code", "")))
            node = {"id": found["id"]} if found and found["shop"] == shop else None
            return {"codeDiscountNodeByCode": node}
        if "webhookSubscriptionCreate" in query:
            if variables.get("topic") not in WEBHOOK_TOPICS.values():
                return {"webhookSubscriptionCreate": {
                    "webhookSubscription": None,
                    "userErrors": [{"field": ["topic"], "message": "Invalid topic"}]}}
            self.webhooks.append({"shop": shop, **variables})
            subscription = {"id": f"gid://shopify/WebhookSubscription/{len(self.webhooks)}"}
            return {"webhookSubscriptionCreate": {"webhookSubscription": subscription,
                                                  "userErrors": []}}
        if "bulkOperationRunQuery" in query:
            operation = f"gid://shopify/BulkOperation/{len(self.bulk_results) + 1}"
            self.bulk_results[operation.rsplit("/", 1)[1] + ".jsonl"] = self._bulk_rows()
            return {"bulkOperationRunQuery": {"bulkOperation": {"id": operation,
                                                                "status": "CREATED"},
                                              "userErrors": []}}
        if "BulkOperation" in query and "node(" in query:
            number = str(variables.get("id", "")).rsplit("/", 1)[-1]
            rows = self.bulk_results.get(number + ".jsonl")
            if rows is None:
                return {"node": None}
            return {"node": {"id": variables["id"], "status": "COMPLETED", "errorCode": None,
                             "objectCount": str(len(rows)),
                             "url": f"{self.base_url}/bulk/{number}.jsonl" if rows else None,
                             "partialDataUrl": None}}
        if "orders(" in query:
            return {"orders": {"nodes": list(self.orders),
                               "pageInfo": {"hasNextPage": False, "endCursor": None}}}
        if "shop" in query:
            return {"shop": {"name": details.name, "currencyCode": details.currency,
                             "ianaTimezone": details.timezone, "email": details.email,
                             "myshopifyDomain": details.domain}}
        return {}

    def _deactivate(self, shop: str, gid: str) -> dict[str, Any]:
        found = next((d for d in self.discounts if d["id"] == gid and d["shop"] == shop), None)
        if found is None:
            return {"codeDiscountNode": None, "userErrors": [
                {"field": ["id"], "code": "INVALID", "message": "Discount does not exist"}]}
        # Deactivating ends the discount now: Shopify then reports it as expired.
        found["status"] = "EXPIRED"
        found["fields"]["endsAt"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"codeDiscountNode": {"id": gid, "codeDiscount": {
            "status": "EXPIRED", "asyncUsageCount": found["usage"]}}, "userErrors": []}

    def _bulk_rows(self) -> list[dict[str, Any]]:
        """The orders as a bulk JSONL result: each line item its own row after its order."""
        rows: list[dict[str, Any]] = []
        for node in self.orders:
            order = {key: value for key, value in node.items() if key != "lineItems"}
            rows.append(order)
            for line in (node.get("lineItems") or {}).get("nodes", []):
                rows.append({**line, "__parentId": node["id"]})
        return rows
