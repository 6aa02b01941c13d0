"""The admin's languages (English and Japanese): server-side catalogs, one JSON file per
section and language (``catalogs/<lang>/<section>.json``), and numbers, money and dates
formatted per locale with Babel. A key missing in Japanese falls back to English; a key
missing everywhere shows itself, so a gap is visible, never a crash."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal, format_percent

CATALOGS = Path(__file__).with_name("catalogs")
LANGUAGES = ("en", "ja")
DEFAULT = "en"


@cache
def catalog(language: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for path in sorted((CATALOGS / language).glob("*.json")):
        entries = json.loads(path.read_text(encoding="utf-8"))
        overlap = merged.keys() & entries.keys()
        if overlap:
            raise ValueError(f"{path} repeats keys: {sorted(overlap)[:5]}")
        merged.update(entries)
    return merged


def pick_language(*candidates: str | None) -> str:
    """The first supported language among explicit choices, then Accept-Language's."""
    for candidate in candidates:
        if not candidate:
            continue
        for part in candidate.replace("_", "-").split(","):
            base = part.split(";")[0].strip().split("-")[0].lower()
            if base in LANGUAGES:
                return base
    return DEFAULT


class Translator:
    """``t("members.title", count=3)``, formatting with ``str.format``."""

    def __init__(self, language: str) -> None:
        self.language = language if language in LANGUAGES else DEFAULT

    def __call__(self, key: str, **values: Any) -> str:
        text = catalog(self.language).get(key) or catalog(DEFAULT).get(key) or key
        return text.format(**values) if values else text

    def number(self, value: int | float | Decimal, digits: int = 0) -> str:
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(value, format=pattern, locale=self.language)

    @staticmethod
    def plain(value: Decimal | int | None) -> str:
        """A number as a form field takes it: no grouping, no exponent, no trailing zeros."""
        if value is None:
            return ""
        if isinstance(value, int):
            return str(value)
        text = format(value.normalize(), "f")
        return text

    def money(self, value: int | float | Decimal, currency: str) -> str:
        return format_currency(value, currency, locale=self.language)

    def percent(self, value: float | Decimal, digits: int = 1) -> str:
        pattern = "#,##0" + ("." + "0" * digits if digits else "") + "%"
        return format_percent(value, format=pattern, locale=self.language)

    def day(self, moment: datetime) -> str:
        return format_date(moment, format="medium", locale=self.language)

    def when(self, moment: datetime) -> str:
        return format_datetime(moment, format="medium", locale=self.language)
