"""Disabling a reward coupon on WooCommerce (``DELETE /wp-json/wc/v3/coupons/<id>``, to the
trash): the exact request and the answer read, against mocked HTTP (the published coupon
example as the answer) and against the stand-in store."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import requests
from pytest_httpserver import HTTPServer

from integrations.base import CodeToDisable
from integrations.woocommerce.auth import ApiKeys
from integrations.woocommerce.client import WooClient, WooError
from integrations.woocommerce.coupons import REDEMPTION_META_KEY, disable_coupon
from integrations.woocommerce.simulator import FakeWooCommerce
from tests.support.fixtures import fixture_json

STORE = "https://shop.example.com"


def published_coupon(**changes: Any) -> dict[str, Any]:
    """The WooCommerce docs' coupon 719, as DELETE returns it, with ``changes``."""
    coupon = fixture_json("woocommerce/rest/coupon.json")
    coupon.update(copy.deepcopy(changes))
    return coupon


class Recorder:
    """Stands in for the HTTP session: records each request, answers from a list."""

    def __init__(self, *answers: tuple[int, Any]) -> None:
        self.answers = list(answers)
        self.calls: list[dict[str, Any]] = []

    def __call__(self, method: str, url: str, **options: Any) -> requests.Response:
        self.calls.append({"method": method, "url": url, **options})
        status, body = self.answers.pop(0)
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(body).encode()
        response.headers["Content-Type"] = "application/json"
        return response


def client_with(recorder: Recorder) -> WooClient:
    client = WooClient(STORE, "ck_key", "cs_secret", timeout=4.5, retries=0,
                       sleep=lambda _s: None)
    client._session.request = recorder  # type: ignore[method-assign]
    return client


@pytest.mark.parametrize(("changes", "used"), [
    ({}, False),
    ({"usage_count": 1, "used_by": ["ana@example.com"]}, True),
    ({"usage_count": 0, "used_by": ["7"]}, True),  # the count lags the list: still used
    ({"usage_count": "1"}, True),
])
def test_trashes_by_id_and_reads_usage(changes: dict[str, Any], used: bool) -> None:
    recorder = Recorder((200, published_coupon(**changes)))

    disabled = disable_coupon(client_with(recorder),
                              CodeToDisable(1, 41, "10off", platform_discount_id="719"))

    assert disabled.used is used and disabled.platform_discount_id == "719"
    [call] = recorder.calls
    assert call["method"] == "DELETE"
    assert call["url"] == f"{STORE}/wp-json/wc/v3/coupons/719"
    assert call["params"] == {"force": "false"}  # the trash, never a permanent delete
    assert call["data"] is None
    assert call["timeout"] == 4.5
    assert call["auth"].username == "ck_key"  # Basic auth over https


def test_already_in_the_trash_reads_the_coupon_instead() -> None:
    recorder = Recorder(
        (410, {"code": "woocommerce_rest_already_trashed",
               "message": "The coupon has already been deleted.", "data": {"status": 410}}),
        (200, published_coupon(usage_count=0)))

    disabled = disable_coupon(client_with(recorder), CodeToDisable(1, 41, "10off", "719"))

    assert not disabled.used
    assert [(c["method"], c["url"]) for c in recorder.calls] == [
        ("DELETE", f"{STORE}/wp-json/wc/v3/coupons/719"),
        ("GET", f"{STORE}/wp-json/wc/v3/coupons/719")]


def test_a_lost_id_is_found_by_code_and_must_be_ours() -> None:
    ours = published_coupon(meta_data=[{"id": 1, "key": REDEMPTION_META_KEY, "value": "41"}])
    recorder = Recorder((200, [ours]), (200, ours))

    disable_coupon(client_with(recorder), CodeToDisable(1, 41, "10OFF", None))

    assert recorder.calls[0]["params"] == {"code": "10OFF"}
    assert recorder.calls[1]["url"].endswith("/coupons/719")

    theirs = Recorder((200, [published_coupon()]))  # the merchant's own coupon: not touched
    with pytest.raises(WooError) as refused:
        disable_coupon(client_with(theirs), CodeToDisable(1, 41, "10off", None))
    assert refused.value.code == "coupon_not_found" and len(theirs.calls) == 1


@pytest.mark.parametrize("answer", [
    (404, {"code": "woocommerce_rest_shop_coupon_invalid_id", "message": "Invalid ID.",
           "data": {"status": 404}}),
    (500, {"code": "woocommerce_rest_cannot_delete", "message": "The coupon cannot be deleted.",
           "data": {"status": 500}}),
    (200, published_coupon(usage_count=None)),
    (200, {key: value for key, value in published_coupon().items() if key != "usage_count"}),
])
def test_failures_and_unknown_usage_raise(answer: tuple[int, Any]) -> None:
    with pytest.raises(WooError):
        disable_coupon(client_with(Recorder(answer)), CodeToDisable(1, 41, "10off", "719"))


# -- the stand-in store ---------------------------------------------------------------------------

@pytest.fixture
def store(httpserver: HTTPServer) -> FakeWooCommerce:
    fake = FakeWooCommerce()
    fake.serve_with(httpserver)
    return fake


@pytest.fixture
def woo(store: FakeWooCommerce) -> WooClient:
    keys: ApiKeys = store.issue_keys()
    return WooClient(store.base_url, keys.consumer_key, keys.consumer_secret, retries=0)


def _coupon(woo: WooClient, code: str, redemption: str = "41") -> str:
    created = woo.create_coupon({"code": code, "usage_limit": 1, "meta_data": [
        {"key": REDEMPTION_META_KEY, "value": redemption}]})
    return str(created["id"])


def test_simulator_an_unused_coupon_reports_0_and_stops_applying(store: FakeWooCommerce,
                                                                 woo: WooClient) -> None:
    coupon_id = _coupon(woo, "LOY-UNUSED")
    assert store.coupon_applies("loy-unused")

    disabled = disable_coupon(woo, CodeToDisable(1, 41, "LOY-UNUSED", coupon_id))

    assert (disabled.usage_count, disabled.used_by, disabled.used) == (0, (), False)
    assert not store.coupon_applies("LOY-UNUSED")
    assert woo.coupon_by_code("LOY-UNUSED") is None  # the trash is not listed
    assert woo.coupon(coupon_id)["code"] == "loy-unused"  # but still read by id
    # Again (a retry after a lost answer): the trash answers 410, the coupon is read instead.
    assert disable_coupon(woo, CodeToDisable(1, 41, "LOY-UNUSED", coupon_id)) == disabled


def test_simulator_a_used_coupon_reports_1_and_its_user(store: FakeWooCommerce,
                                                        woo: WooClient) -> None:
    coupon_id = _coupon(woo, "LOY-USED")
    store.use_coupon("LOY-USED", "ana@example.com")
    assert not store.coupon_applies("LOY-USED")  # usage limit 1

    disabled = disable_coupon(woo, CodeToDisable(1, 41, "LOY-USED", coupon_id))

    assert (disabled.usage_count, disabled.used_by, disabled.used) == (
        1, ("ana@example.com",), True)


def test_simulator_finds_its_own_coupon_by_code(store: FakeWooCommerce, woo: WooClient) -> None:
    _coupon(woo, "LOY-LOST")

    disable_coupon(woo, CodeToDisable(1, 41, "LOY-LOST", None))

    assert not store.coupon_applies("LOY-LOST")
    with pytest.raises(WooError, match="no coupon"):
        disable_coupon(woo, CodeToDisable(1, 42, "LOY-LOST", None))


def test_simulator_unknown_id_is_404(woo: WooClient) -> None:
    with pytest.raises(WooError) as missing:
        disable_coupon(woo, CodeToDisable(1, 41, "LOY-X", "987654"))
    assert missing.value.status == 404
