"""The stand-in WooCommerce store's coupons (``/wp-json/wc/v3/coupons``): created, listed by
code, read and trashed as the REST API does it, and used at a checkout. Documents have the
shape of the published example (``shared/fixtures/woocommerce/rest/coupon.json``)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping
from typing import Any

Answer = tuple[int, dict[str, str], Any]


def _error(status: int, code: str, message: str) -> Answer:
    return status, {}, {"code": code, "message": message, "data": {"status": status}}


class CouponDesk:
    """Mixed into FakeWooCommerce, which holds the state these methods use."""

    coupons: list[dict[str, Any]]
    # Ids of coupons in the trash. The REST document has no status field, so it is kept
    # beside it; a trashed coupon is still read by id but no longer listed, found by its
    # code or applied at checkout.
    trashed_coupons: set[int]
    _lock: threading.RLock
    _new_id: Callable[[], int]
    _stamp: Callable[[], str]
    _page: Callable[[list[dict[str, Any]], Mapping[str, str]], Answer]

    def _live(self, code: str) -> dict[str, Any] | None:
        wanted = code.strip().lower()  # WooCommerce keeps codes lowercase
        return next((coupon for coupon in self.coupons if coupon.get("code") == wanted
                     and coupon.get("id") not in self.trashed_coupons), None)

    def coupon_applies(self, code: str) -> bool:
        """Whether checkout would take the code now: published, with uses left."""
        with self._lock:
            coupon = self._live(code)
            if coupon is None:
                return False
            limit = coupon.get("usage_limit")
            return not limit or int(coupon.get("usage_count") or 0) < int(limit)

    def use_coupon(self, code: str, email: str) -> None:
        """A shopper checks out with the coupon: WooCommerce counts the use and the user."""
        with self._lock:
            if not self.coupon_applies(code):
                raise ValueError(f"checkout refuses {code}: unknown, in the trash or used up")
            coupon = self._live(code)
            assert coupon is not None
            coupon["usage_count"] = int(coupon.get("usage_count") or 0) + 1
            coupon.setdefault("used_by", []).append(email)

    def _create_coupon(self, document: dict[str, Any]) -> Answer:
        code = str(document.get("code") or "").strip().lower()
        if not code:
            return _error(400, "woocommerce_rest_empty_coupon_code",
                          "The coupon code cannot be empty.")
        # As in WooCommerce, a code only counts as taken by a published coupon.
        if self._live(code) is not None:
            return _error(400, "woocommerce_rest_coupon_code_already_exists",
                          "The coupon code already exists")
        stamp = self._stamp()
        coupon = {"discount_type": "fixed_cart", "amount": "0", "individual_use": False,
                  "usage_limit": None, "usage_limit_per_user": None, "free_shipping": False,
                  "email_restrictions": [], "minimum_amount": "0.00", "description": "",
                  "date_expires_gmt": None, **document,
                  "id": self._new_id(), "code": code, "usage_count": 0, "used_by": [],
                  "date_created": stamp, "date_created_gmt": stamp,
                  "date_modified": stamp, "date_modified_gmt": stamp}
        self.coupons.append(coupon)
        return 201, {}, copy.deepcopy(coupon)

    def _list_coupons(self, query: Mapping[str, str]) -> Answer:
        coupons = sorted((coupon for coupon in self.coupons
                          if coupon.get("id") not in self.trashed_coupons),
                         key=lambda coupon: coupon["id"])
        if query.get("code"):
            wanted = query["code"].strip().lower()
            coupons = [coupon for coupon in coupons if coupon["code"] == wanted]
        return self._page(coupons, query)

    def _coupon_item(self, method: str, coupon_id: int, query: Mapping[str, str]) -> Answer:
        coupon = next((c for c in self.coupons if c.get("id") == coupon_id), None)
        if coupon is None:
            return _error(404, "woocommerce_rest_shop_coupon_invalid_id", "Invalid ID.")
        if method == "GET":
            return 200, {}, copy.deepcopy(coupon)
        if method != "DELETE":
            return _error(404, "rest_no_route", "No route was found matching the URL and "
                          "request method.")
        answer = copy.deepcopy(coupon)
        if query.get("force") in ("true", "1"):
            self.coupons.remove(coupon)
            self.trashed_coupons.discard(coupon_id)
            return 200, {}, answer
        if coupon_id in self.trashed_coupons:
            return _error(410, "woocommerce_rest_already_trashed",
                          "The coupon has already been deleted.")
        self.trashed_coupons.add(coupon_id)
        return 200, {}, answer
