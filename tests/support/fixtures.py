"""The platforms' published payloads and vectors in ``../shared/fixtures`` (beside the repo)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SHARED_FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"


def fixture_path(relative: str) -> Path:
    path = SHARED_FIXTURES / relative
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: CI checks out ../shared beside the repo")
    return path


def fixture_bytes(relative: str) -> bytes:
    return fixture_path(relative).read_bytes()


def fixture_json(relative: str) -> Any:
    return json.loads(fixture_bytes(relative))


def shopify_webhook(topic: str) -> dict[str, Any]:
    """A Shopify webhook body by topic, e.g. ``orders/paid``."""
    return fixture_json(f"shopify/webhooks/{topic.replace('/', '__')}.json")


def shopify_privacy_body(topic: str, shop: str) -> bytes:
    """A published privacy webhook body with its ``{shop}`` placeholder filled in."""
    raw = fixture_bytes(f"shopify/webhooks/{topic.replace('/', '__')}.json")
    return raw.replace(b"{shop}", shop.removesuffix(".myshopify.com").encode())
