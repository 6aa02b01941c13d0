"""The widget's settings: what reaches shoppers' browsers is only well-formed, and a merchant's
bad setting is refused with its field and reason."""

from __future__ import annotations

import json
from typing import Any

import pytest

from plugin_server.loyalty.widget_settings import (
    InvalidWidgetSettings,
    storefront_widget,
    validate_widget_settings,
)

GOOD: dict[str, Any] = {
    "color": "#0B5CAD", "position": "left", "launcher": "icon", "launcher_label": "Perks",
    "explainer": "Earn on every order.", "sign_in_url": "/account/login",
    "join_url": "https://shop.example/account/register",
    "texts": {"ja": {"program_name": "ティーリーブス", "launcher": "特典",
                     "rewards": {"12": "送料無料"}, "tiers": {"3": "ゴールド"}},
              "ar": {"explainer": "اكسب نقاطًا مع كل طلب."}},
}


def test_good_settings_are_kept_as_sent() -> None:
    stored = validate_widget_settings(GOOD)
    widget = storefront_widget(stored)
    assert widget == GOOD | {"color": "#0b5cad"}


@pytest.mark.parametrize(("raw", "expected"), [
    (None, {}), ("", {}), ("not json", {}), ("[1, 2]", {}), ('"text"', {}),
    ('{"color": "red"}', {}), ('{"color": "#12345g"}', {}),
    ('{"position": "middle"}', {}), ('{"launcher": "both"}', {}),
    ('{"sign_in_url": "javascript:alert(1)"}', {}),
    ('{"join_url": "//evil.example/x"}', {}),
    ('{"join_url": "data:text/html,<b>x</b>"}', {}),
    ('{"launcher_label": "' + "x" * 31 + '"}', {}),
    ('{"launcher_label": "   "}', {}),
    ('{"texts": {"xx": {"program_name": "?"}}}', {}),
    ('{"texts": {"ja": {"rewards": {"abc": "x", "5": 7}}}}', {}),
    ('{"texts": {"ja": "名前"}}', {}),
    ('{"explainer": 12, "color": "#ABCDEF"}', {"color": "#abcdef"}),
])
def test_stored_settings_out_of_shape_are_dropped(raw: str | None,
                                                  expected: dict[str, Any]) -> None:
    assert storefront_widget(raw) == expected


@pytest.mark.parametrize(("change", "field"), [
    ({"color": "green"}, "color"),
    ({"position": "top"}, "position"),
    ({"launcher": "text"}, "launcher"),
    ({"sign_in_url": "javascript:alert(1)"}, "sign_in_url"),
    ({"launcher_label": "x" * 31}, "launcher_label"),
    ({"explainer": ""}, "explainer"),
    ({"texts": {"tlh": {"program_name": "Qapla'"}}}, "texts.tlh"),
    ({"texts": {"ja": {"program_name": "x" * 61}}}, "texts.ja.program_name"),
    ({"texts": {"ja": {"rewards": {"twelve": "送料無料"}}}}, "texts.ja.rewards"),
    ({"texts": {"ja": {"motto": "?"}}}, "texts.ja.motto"),
    ({"texts": ["ja"]}, "texts"),
    ({"theme": "dark"}, "theme"),
])
def test_bad_settings_are_refused_with_their_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidWidgetSettings) as refused:
        validate_widget_settings(GOOD | change)
    assert refused.value.field == field
    assert str(refused.value).startswith(f"{field}: ")


def test_stored_json_keeps_non_latin_text_readable() -> None:
    assert "ティーリーブス" in validate_widget_settings(GOOD)
    assert json.loads(validate_widget_settings({})) == {}
