"""The Shopify CLI app configuration and the theme app extension (DESIGN §3, §7, §9)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

APP_DIR = Path(__file__).resolve().parents[1] / "integrations" / "shopify" / "app"
EXTENSION_DIR = APP_DIR / "extensions" / "loyalty-widget"
EMBED_BLOCK = EXTENSION_DIR / "blocks" / "app-embed.liquid"

SCOPES = {"read_orders", "read_customers", "write_discounts", "write_app_proxy"}
TOPICS = {
    "orders/create",
    "orders/paid",
    "orders/updated",
    "orders/cancelled",
    "orders/fulfilled",
    "refunds/create",
    "customers/create",
    "customers/update",
    "app/uninstalled",
    "shop/update",
}
COMPLIANCE_TOPICS = {"customers/data_request", "customers/redact", "shop/redact"}
DATA_ATTRIBUTES = {
    "data-platform",
    "data-shop",
    "data-customer-id",
    "data-locale",
    "data-currency",
    "data-api-base",
    "data-color",
    "data-position",
    "data-label",
}

SCHEMA_RE = re.compile(r"{%-?\s*schema\s*-?%}(.*?){%-?\s*endschema\s*-?%}", re.S)
COMMENT_RE = re.compile(r"{%-?\s*comment\s*-?%}.*?{%-?\s*endcomment\s*-?%}", re.S)
SCRIPT_OPEN_RE = re.compile(r"<script\b(.*?)>", re.S | re.I)
ATTRIBUTE_RE = re.compile(r'([A-Za-z_:][-\w:.]*)(\s*=\s*"([^"]*)")?')
OUTPUT_RE = re.compile(r"{{-?(.*?)-?}}", re.S)


@pytest.fixture(scope="module")
def app_config() -> dict[str, Any]:
    return tomllib.loads((APP_DIR / "shopify.app.toml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def block_source() -> str:
    return EMBED_BLOCK.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def markup(block_source: str) -> str:
    """The block without its schema and Liquid comments: what renders on the storefront."""
    return COMMENT_RE.sub("", SCHEMA_RE.sub("", block_source))


@pytest.fixture(scope="module")
def schema(block_source: str) -> dict[str, Any]:
    found = SCHEMA_RE.findall(block_source)
    assert len(found) == 1, "exactly one {% schema %} block"
    return json.loads(found[0])


@pytest.fixture(scope="module")
def script_attributes(markup: str) -> dict[str, str | None]:
    tags = SCRIPT_OPEN_RE.findall(markup)
    assert len(tags) == 1, f"exactly one <script> tag, found {len(tags)}"
    attributes: dict[str, str | None] = {}
    for match in ATTRIBUTE_RE.finditer(tags[0]):
        name = match.group(1)
        assert name not in attributes, f"duplicate attribute {name}"
        attributes[name] = match.group(3) if match.group(2) else None  # None: bare (defer)
    return attributes


# --- shopify.app.toml ------------------------------------------------------------------------


def test_app_basics(app_config: dict[str, Any]) -> None:
    assert app_config["name"] == "Loyalty"
    assert app_config["client_id"]
    assert app_config["embedded"] is True
    assert app_config["application_url"].startswith("https://")
    assert app_config["application_url"].endswith("/shopify/install")


def test_scopes_match_design(app_config: dict[str, Any]) -> None:
    scopes = [s.strip() for s in app_config["access_scopes"]["scopes"].split(",")]
    assert len(scopes) == len(set(scopes))
    assert set(scopes) == SCOPES


def test_redirect_url_is_the_callback_route(app_config: dict[str, Any]) -> None:
    urls = app_config["auth"]["redirect_urls"]
    assert any(u.startswith("https://") and u.endswith("/shopify/callback") for u in urls)


def test_webhook_api_version_is_pinned(app_config: dict[str, Any]) -> None:
    assert re.fullmatch(r"\d{4}-(01|04|07|10)", app_config["webhooks"]["api_version"])


def _subscribed(app_config: dict[str, Any], key: str) -> dict[str, str]:
    """topic -> uri over every [[webhooks.subscriptions]] entry listing it under ``key``."""
    found: dict[str, str] = {}
    for subscription in app_config["webhooks"]["subscriptions"]:
        for topic in subscription.get(key, []):
            assert topic not in found, f"{topic} subscribed twice"
            found[topic] = subscription["uri"]
    return found


def test_every_topic_goes_to_the_webhook_route(app_config: dict[str, Any]) -> None:
    topics = _subscribed(app_config, "topics")
    assert set(topics) == TOPICS
    for topic, uri in topics.items():
        assert uri.endswith("/webhooks/shopify"), topic


def test_every_compliance_topic_goes_to_the_webhook_route(app_config: dict[str, Any]) -> None:
    topics = _subscribed(app_config, "compliance_topics")
    assert set(topics) == COMPLIANCE_TOPICS
    for topic, uri in topics.items():
        assert uri.endswith("/webhooks/shopify"), topic


def test_webhook_uris_are_absolute(app_config: dict[str, Any]) -> None:
    # Shopify CLI prepends a relative uri to the whole application_url (which ends in
    # /shopify/install here), so only an absolute https URI reaches POST /webhooks/shopify.
    for subscription in app_config["webhooks"]["subscriptions"]:
        assert subscription["uri"].startswith("https://"), subscription


def test_app_proxy(app_config: dict[str, Any]) -> None:
    proxy = app_config["app_proxy"]
    assert proxy["prefix"] == "apps"
    assert proxy["subpath"] == "loyalty"
    assert proxy["url"].startswith("https://")
    assert proxy["url"].endswith("/proxy")


# --- theme app extension ---------------------------------------------------------------------


def test_extension_is_a_theme_extension() -> None:
    config = tomllib.loads((EXTENSION_DIR / "shopify.extension.toml").read_text(encoding="utf-8"))
    assert config["type"] == "theme"
    assert config["name"]


def test_block_loads_the_loader_deferred(script_attributes: dict[str, str | None]) -> None:
    src = script_attributes.get("src")
    assert src is not None
    assert src.startswith("https://")
    assert src.endswith("/widget/loader.js")
    assert "defer" in script_attributes
    assert "async" not in script_attributes


def test_block_has_every_data_attribute(script_attributes: dict[str, str | None]) -> None:
    missing = DATA_ATTRIBUTES - set(script_attributes)
    assert not missing, f"missing {sorted(missing)}"
    assert script_attributes["data-platform"] == "shopify"
    assert script_attributes["data-api-base"] == "/apps/loyalty/api"


@pytest.mark.parametrize(
    ("attribute", "liquid_object"),
    [
        ("data-shop", "shop.permanent_domain"),
        ("data-customer-id", "customer.id"),
        ("data-locale", "request.locale.iso_code"),
        ("data-currency", "currency.iso_code"),
        ("data-color", "block.settings.color"),
        ("data-position", "block.settings.position"),
        ("data-label", "block.settings.label"),
    ],
)
def test_data_attribute_sources(
    script_attributes: dict[str, str | None], attribute: str, liquid_object: str
) -> None:
    value = script_attributes[attribute] or ""
    assert liquid_object in value


def test_every_liquid_output_in_an_attribute_is_escaped(
    script_attributes: dict[str, str | None],
) -> None:
    outputs = [
        (name, expression.strip())
        for name, value in script_attributes.items()
        for expression in OUTPUT_RE.findall(value or "")
    ]
    assert len(outputs) >= 7
    for name, expression in outputs:
        assert re.search(r"\|\s*escape$", expression), f"{name}: {{{{ {expression} }}}}"


def test_markup_outputs_nothing_unescaped(markup: str) -> None:
    for expression in OUTPUT_RE.findall(markup):
        assert re.search(r"\|\s*escape$", expression.strip()), expression


def test_no_inline_script_body(markup: str) -> None:
    body = re.search(r"<script\b[^>]*>(.*?)</script>", markup, re.S | re.I)
    assert body is not None, "the script tag is closed"
    assert body.group(1).strip() == ""
    assert not re.search(r"\son[a-z]+\s*=", markup, re.I), "no inline event handlers"


def test_schema_is_an_app_embed_with_settings(schema: dict[str, Any]) -> None:
    assert schema["target"] == "body"
    assert schema["name"]
    assert len(schema["name"]) <= 25
    settings = {s["id"]: s for s in schema["settings"]}
    assert settings["color"]["type"] == "color"
    assert settings["color"]["default"] == "#1f4f46"
    assert settings["position"]["type"] == "select"
    assert {o["value"] for o in settings["position"]["options"]} == {"left", "right"}
    assert settings["position"]["default"] in {"left", "right"}
    assert settings["label"]["type"] == "text"


def test_block_settings_used_exist_in_schema(markup: str, schema: dict[str, Any]) -> None:
    used = set(re.findall(r"block\.settings\.(\w+)", markup))
    assert used == {s["id"] for s in schema["settings"]}
