"""The WooCommerce shopper identity (DESIGN §8): what the WordPress plugin signs and how the
server checks it. The vectors were computed outside Python, with
``printf '%s' 'store|customer|email|ts' | openssl dgst -sha256 -hmac SECRET``."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.woocommerce.identity import (
    IdentityRejected,
    ShopperIdentity,
    identity_signature,
    signed_identity,
    verify_identity,
)

SECRET = "wc-widget-secret"
STORE = "3f9a1c0de2b47a65"
TS = 1767225600  # 2026-01-01T00:00:00Z
VECTORS = [
    ("42", "ana@example.com", "0dce21958587117ab790e46db3a9c592fa8d4ad61e32b9a776304c2b123b6a27"),
    # UTF-8 bytes of a non-ASCII email.
    ("7", "zo\u00eb@example.com",
     "fa9595d73dd86732bcf9396f6cf5e0d893484b373be5aa1383ca04a3d2ab2652"),
    # A customer without an email still signs the empty field between the bars.
    ("7", "", "a62bec1236b080878a4ed6a444222b31affa9083e4726670e178b687509987e6"),
]


def _identity(**changes: Any) -> dict[str, Any]:
    return signed_identity(SECRET, STORE, "42", "ana@example.com", TS) | changes


@pytest.mark.parametrize(("customer_id", "email", "expected"), VECTORS)
def test_the_signature_matches_the_hand_computed_vectors(customer_id: str, email: str,
                                                         expected: str) -> None:
    assert identity_signature(SECRET, STORE, customer_id, email, TS) == expected
    assert identity_signature(SECRET + "x", STORE, customer_id, email, TS) != expected


def test_signed_identity_is_what_the_plugin_prints() -> None:
    printed = signed_identity(SECRET, STORE, 42, "ana@example.com", TS)
    assert printed == {"store_id": STORE, "customer_id": "42", "email": "ana@example.com",
                       "ts": TS, "sig": VECTORS[0][2]}
    fresh = signed_identity(SECRET, STORE, "42", "ana@example.com")
    assert isinstance(fresh["ts"], int) and fresh["ts"] > TS


@pytest.mark.parametrize(("customer_id", "email", "expected"), VECTORS)
def test_a_signed_identity_verifies(customer_id: str, email: str, expected: str) -> None:
    data = {"store_id": STORE, "customer_id": customer_id, "email": email, "ts": TS,
            "sig": expected}
    assert verify_identity(data, SECRET, now=TS + 5) == ShopperIdentity(
        store_id=STORE, customer_id=customer_id, email=email, ts=TS)


@pytest.mark.parametrize("offset", [300, -300, 0, 299])
def test_the_window_is_300_seconds_either_way(offset: int) -> None:
    assert verify_identity(_identity(), SECRET, now=TS + offset).customer_id == "42"


@pytest.mark.parametrize("offset", [301, -301, 86_400])
def test_outside_the_window_is_expired(offset: int) -> None:
    with pytest.raises(IdentityRejected) as refused:
        verify_identity(_identity(), SECRET, now=TS + offset)
    assert refused.value.code == "identity_expired"
    assert "300 seconds" in str(refused.value)


def test_a_smaller_window_may_be_asked_for() -> None:
    with pytest.raises(IdentityRejected):
        verify_identity(_identity(), SECRET, now=TS + 61, window=60)


@pytest.mark.parametrize(("label", "changes"), [
    ("other customer", {"customer_id": "43"}),
    ("other store", {"store_id": "0000000000000000"}),
    ("other email", {"email": "eve@example.com"}),
    ("other time", {"ts": TS + 1}),
    ("uppercase sig", {"sig": VECTORS[0][2].upper()}),
    ("zero sig", {"sig": "0" * 64}),
])
def test_anything_changed_breaks_the_signature(label: str, changes: dict[str, Any]) -> None:
    with pytest.raises(IdentityRejected) as refused:
        verify_identity(_identity(**changes), SECRET, now=TS)
    assert refused.value.code == "invalid_signature", label
    assert VECTORS[0][2] not in str(refused.value)


def test_another_stores_secret_does_not_verify() -> None:
    with pytest.raises(IdentityRejected) as refused:
        verify_identity(_identity(), "another-stores-secret", now=TS)
    assert refused.value.code == "invalid_signature"


def test_a_bad_signature_is_reported_before_the_time() -> None:
    with pytest.raises(IdentityRejected) as refused:
        verify_identity(_identity(sig="f" * 64), SECRET, now=TS + 10_000)
    assert refused.value.code == "invalid_signature"


def test_a_bar_inside_an_id_cannot_shift_fields() -> None:
    # "42|x" + "y" signs the same text as "42" + "x|y"; ids may not carry the separator.
    forged = signed_identity(SECRET, STORE, "42", "x|y", TS)
    shifted = forged | {"customer_id": "42|x", "email": "y"}
    assert identity_signature(SECRET, STORE, "42|x", "y", TS) == forged["sig"]
    with pytest.raises(IdentityRejected) as refused:
        verify_identity(shifted, SECRET, now=TS)
    assert refused.value.code == "invalid_identity"


@pytest.mark.parametrize("body", [[STORE, "42"], "identity", None, 42])
def test_a_body_that_is_not_an_object_is_refused(body: Any) -> None:
    with pytest.raises(IdentityRejected) as refused:
        verify_identity(body, SECRET, now=TS)
    assert refused.value.code == "invalid_identity"


@pytest.mark.parametrize("field", ["store_id", "customer_id", "email", "ts", "sig"])
def test_a_missing_field_is_refused(field: str) -> None:
    data = _identity()
    del data[field]
    with pytest.raises(IdentityRejected) as refused:
        verify_identity(data, SECRET, now=TS)
    assert refused.value.code == "invalid_identity"
    assert field in str(refused.value)


MALFORMED: list[tuple[str, dict[str, Any]]] = [
    ("numeric store_id", {"store_id": 3}),
    ("empty store_id", {"store_id": ""}),
    ("long store_id", {"store_id": "s" * 65}),
    ("numeric customer_id", {"customer_id": 42}),
    ("empty customer_id", {"customer_id": ""}),
    ("long customer_id", {"customer_id": "1" * 65}),
    ("null email", {"email": None}),
    ("lone surrogate in email", {"email": "\ud800@example.com"}),
    ("lone surrogate in customer_id", {"customer_id": "4\udfff"}),
    ("long email", {"email": "a" * 243 + "@example.com"}),
    ("string ts", {"ts": str(TS)}),
    ("float ts", {"ts": TS + 0.5}),
    ("boolean ts", {"ts": True}),
    ("null sig", {"sig": None}),
    ("short sig", {"sig": "ab" * 31}),
    ("long sig", {"sig": "ab" * 33}),
    ("non-hex sig", {"sig": "g" * 64}),
]


@pytest.mark.parametrize(("label", "changes"), MALFORMED, ids=[label for label, _ in MALFORMED])
def test_a_wrongly_typed_field_is_refused(label: str, changes: dict[str, Any]) -> None:
    (field,) = changes
    with pytest.raises(IdentityRejected) as refused:
        verify_identity(_identity(**changes), SECRET, now=TS)
    assert refused.value.code == "invalid_identity", label
    assert field in str(refused.value)


def test_limits_are_inclusive() -> None:
    email = "a" * 242 + "@example.com"
    assert len(email) == 254
    data = signed_identity(SECRET, "s" * 64, "1" * 64, email, TS)
    assert verify_identity(data, SECRET, now=TS).email == email
