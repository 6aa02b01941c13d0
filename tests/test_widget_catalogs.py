"""The storefront widget's language catalogs (storefront_widget/i18n/*.json).

Every catalog must carry exactly the English keys, the same {placeholders}, the CLDR plural
categories the browser's Intl.PluralRules reports for its language, and stay small on the wire.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest

I18N_DIR = Path(__file__).resolve().parents[1] / "storefront_widget" / "i18n"
MAX_GZIP_BYTES = 2000
PLACEHOLDER = re.compile(r"\{[a-zA-Z]+\}")

# new Intl.PluralRules(lang).resolvedOptions().pluralCategories, as Chrome reports them.
PLURAL_CATEGORIES: dict[str, frozenset[str]] = {
    "en": frozenset({"one", "other"}),
    "ja": frozenset({"other"}),
    "vi": frozenset({"other"}),
    "te": frozenset({"one", "other"}),
    "hy": frozenset({"one", "other"}),
    "es": frozenset({"one", "many", "other"}),
    "fr": frozenset({"one", "many", "other"}),
    "de": frozenset({"one", "other"}),
    "pt-BR": frozenset({"one", "many", "other"}),
    "zh-CN": frozenset({"other"}),
    "hi": frozenset({"one", "other"}),
    "ar": frozenset({"zero", "one", "two", "few", "many", "other"}),
}
LANGUAGES = sorted(PLURAL_CATEGORIES)

# Forms that may spell the number out ("نقطة واحدة", "نقطتان") and so omit {n}.
FORMS_MAY_DROP_N = frozenset({"zero", "one", "two"})


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    assert not duplicates, f"duplicate keys: {duplicates}"
    return dict(pairs)


def _load(lang: str) -> dict[str, Any]:
    raw = (I18N_DIR / f"{lang}.json").read_bytes()
    data = json.loads(raw.decode("utf-8"), object_pairs_hook=_reject_duplicates)
    assert isinstance(data, dict)
    return data


def _placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


ENGLISH = _load("en")
PLURAL_KEYS = sorted(key for key, value in ENGLISH.items() if isinstance(value, dict))
STRING_KEYS = sorted(key for key, value in ENGLISH.items() if isinstance(value, str))


def test_catalog_files_are_exactly_the_supported_languages() -> None:
    assert sorted(path.stem for path in I18N_DIR.glob("*.json")) == LANGUAGES


def test_english_catalog_shape() -> None:
    assert PLURAL_KEYS and STRING_KEYS
    assert len(PLURAL_KEYS) + len(STRING_KEYS) == len(ENGLISH)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_keys_match_english(lang: str) -> None:
    catalog = _load(lang)
    assert set(catalog) == set(ENGLISH)
    assert list(catalog) == list(ENGLISH), "keys should keep en.json's order"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_plain_strings(lang: str) -> None:
    catalog = _load(lang)
    for key in STRING_KEYS:
        value = catalog[key]
        assert isinstance(value, str), key
        assert value.strip(), key
        assert _placeholders(value) == _placeholders(ENGLISH[key]), key


@pytest.mark.parametrize("lang", LANGUAGES)
def test_plural_messages(lang: str) -> None:
    catalog = _load(lang)
    for key in PLURAL_KEYS:
        forms = catalog[key]
        assert isinstance(forms, dict), key
        assert set(forms) == PLURAL_CATEGORIES[lang], key

        english: dict[str, str] = ENGLISH[key]
        allowed = set().union(*(_placeholders(text) for text in english.values()))
        required = _placeholders(english["other"])
        for category, text in forms.items():
            assert isinstance(text, str), (key, category)
            assert text.strip(), (key, category)
            found = _placeholders(text)
            assert found <= allowed, (key, category, found - allowed)
            needed = required - {"{n}"} if category in FORMS_MAY_DROP_N else required
            assert needed <= found, (key, category, needed - found)
        assert required <= _placeholders(forms["other"]), key


@pytest.mark.parametrize("lang", LANGUAGES)
def test_gzip_size_budget(lang: str) -> None:
    raw = (I18N_DIR / f"{lang}.json").read_bytes()
    assert len(gzip.compress(raw, 9)) <= MAX_GZIP_BYTES
