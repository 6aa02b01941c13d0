"""The widget's look and the merchant's texts per language, as stored in
``ProgramSettings.widget_json`` and as the storefront receives them. Pure: only the standard
library. What is stored may come from an older version or a hand edit, so it is read
defensively: anything out of shape is dropped, never passed on to shoppers' browsers.

Shape (every key optional)::

    {"color": "#1f4f46", "position": "right", "launcher": "label" | "icon",
     "launcher_label": "Rewards", "explainer": "...",
     "sign_in_url": "/account/login", "join_url": "/account/register",
     "texts": {"ja": {"program_name": "...", "explainer": "...", "launcher": "...",
                      "rewards": {"12": "..."}, "tiers": {"3": "..."}, "perks": {"3": "..."}}}}
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

LANGUAGES = ("en", "ja", "vi", "te", "hy", "es", "fr", "de", "pt-BR", "zh-CN", "hi", "ar")
COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
POSITIONS = ("right", "left")
LAUNCHERS = ("label", "icon")
# Merchant texts shown in the widget; longer ones would not fit where they are shown.
TEXT_LIMITS = {"launcher_label": 30, "launcher": 30, "program_name": 60, "explainer": 300}
NAME_LIMIT = 120
URL_LIMIT = 500
PER_LANGUAGE_GROUPS = ("rewards", "tiers", "perks")


class InvalidWidgetSettings(ValueError):
    """A setting the merchant sent that cannot be saved: names the field and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


def _link(value: str) -> bool:
    """A path on the store (``/account/login``) or an http(s) address; nothing that runs."""
    if value.startswith("/") and not value.startswith("//"):
        return True
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _text(value: Any, limit: int) -> str | None:
    """Text within its limit, without control characters (PostgreSQL refuses NUL)."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if 0 < len(value) <= limit and not CONTROL.search(value) else None


def _names(value: Any) -> dict[str, str]:
    """``{"12": "Livraison offerte"}``: ids as strings of digits, names within the limit."""
    if not isinstance(value, dict):
        return {}
    names = {}
    for key, name in value.items():
        text = _text(name, NAME_LIMIT)
        if isinstance(key, str) and key.isdigit() and text is not None:
            names[key] = text
    return names


def _language_texts(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        return {}
    texts: dict[str, Any] = {}
    for key in ("program_name", "explainer", "launcher"):
        text = _text(value.get(key), TEXT_LIMITS[key])
        if text is not None:
            texts[key] = text
    for group in PER_LANGUAGE_GROUPS:
        names = _names(value.get(group))
        if names:
            texts[group] = names
    return texts


def storefront_widget(raw: str | None) -> dict[str, Any]:
    """The stored settings as the widget may use them: only well-formed values."""
    try:
        stored = json.loads(raw or "{}")
    except ValueError:
        return {}
    if not isinstance(stored, dict):
        return {}
    widget: dict[str, Any] = {}
    color = stored.get("color")
    if isinstance(color, str) and COLOUR.fullmatch(color):
        widget["color"] = color.lower()
    if stored.get("position") in POSITIONS:
        widget["position"] = stored["position"]
    if stored.get("launcher") in LAUNCHERS:
        widget["launcher"] = stored["launcher"]
    for key in ("launcher_label", "explainer"):
        text = _text(stored.get(key), TEXT_LIMITS[key])
        if text is not None:
            widget[key] = text
    for key in ("sign_in_url", "join_url"):
        link = _text(stored.get(key), URL_LIMIT)
        if link is not None and _link(link):
            widget[key] = link
    texts = stored.get("texts")
    if isinstance(texts, dict):
        per_language = {lang: _language_texts(texts.get(lang)) for lang in LANGUAGES}
        per_language = {lang: value for lang, value in per_language.items() if value}
        if per_language:
            widget["texts"] = per_language
    return widget


def validate_widget_settings(settings: dict[str, Any]) -> str:
    """The JSON to store for settings a merchant sent; InvalidWidgetSettings names the first
    field that would not survive ``storefront_widget`` unchanged."""
    if not isinstance(settings, dict):
        raise InvalidWidgetSettings("widget", "must be an object")
    cleaned = storefront_widget(json.dumps(settings))
    for key, value in settings.items():
        if key == "texts":
            _check_texts(value, cleaned.get("texts", {}))
        elif cleaned.get(key) != (value.lower() if key == "color" and isinstance(value, str)
                                  else value.strip() if isinstance(value, str) else value):
            raise InvalidWidgetSettings(key, _reason(key))
    return json.dumps(cleaned, ensure_ascii=False, sort_keys=True)


def _check_texts(value: Any, cleaned: dict[str, Any]) -> None:
    if not isinstance(value, dict):
        raise InvalidWidgetSettings("texts", "must map a language to its texts")
    for lang, texts in value.items():
        if lang not in LANGUAGES:
            raise InvalidWidgetSettings(f"texts.{lang}", "is not one of the widget's "
                                        f"languages ({', '.join(LANGUAGES)})")
        if not isinstance(texts, dict):
            raise InvalidWidgetSettings(f"texts.{lang}", "must be an object")
        kept = cleaned.get(lang, {})
        for key, text in texts.items():
            if key in PER_LANGUAGE_GROUPS:
                if not isinstance(text, dict) or len(kept.get(key, {})) != len(text):
                    raise InvalidWidgetSettings(
                        f"texts.{lang}.{key}", f"must map ids to names of 1 to {NAME_LIMIT} "
                        "characters")
            elif key not in ("program_name", "explainer", "launcher"):
                raise InvalidWidgetSettings(f"texts.{lang}.{key}", "is not a widget text")
            elif kept.get(key) != (text.strip() if isinstance(text, str) else text):
                raise InvalidWidgetSettings(f"texts.{lang}.{key}", "must be text of 1 to "
                                            f"{TEXT_LIMITS[key]} characters")


def _reason(key: str) -> str:
    if key == "color":
        return "must be a colour like #1f4f46"
    if key == "position":
        return f"must be one of {', '.join(POSITIONS)}"
    if key == "launcher":
        return f"must be one of {', '.join(LAUNCHERS)}"
    if key in ("sign_in_url", "join_url"):
        return f"must be a path on the store or an http(s) address of at most {URL_LIMIT} " \
               "characters"
    if key in TEXT_LIMITS:
        return f"must be text of 1 to {TEXT_LIMITS[key]} characters"
    return "is not a widget setting"
