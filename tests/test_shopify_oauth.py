"""Install and tokens against a local fake of Shopify (pytest-httpserver on loopback)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import shopify
from pytest_httpserver import HTTPServer

from integrations.shopify.admin import ShopifyConfig
from integrations.shopify.oauth import (
    SCOPES,
    InvalidShop,
    ShopToken,
    TokenError,
    TokenRevoked,
    authorize_url,
    exchange_code,
    exchange_session_token,
    normalize_shop,
    refresh_if_needed,
    verify_query_hmac,
)
from tests.support.fixtures import fixture_json

SHOP = "loyal-test.myshopify.com"
TOKEN_PATH = "/admin/oauth/access_token"


def make_config(httpserver: HTTPServer, **overrides: Any) -> ShopifyConfig:
    values: dict[str, Any] = {
        "api_key": "app-key", "api_secret": "app-secret",
        "url_override": httpserver.url_for("/").rstrip("/"), "timeout": 2.0,
    }
    values.update(overrides)
    return ShopifyConfig(**values)


# -- shop validation ---------------------------------------------------------------------------

HOSTILE_SHOPS = [
    "", None, "evil.com", "a.myshopify.com.evil.com", "a.myshopify.com@evil.com",
    "a.myshopify.com:8080", "https://a.myshopify.com", "127.0.0.1", "[::1]", "a.MYSHOPIFY.com",
    "-a.myshopify.com", "a.myshopify.com\n", "a..myshopify.com", " a.myshopify.com",
    "a.myshopify.com/admin", "a_b.myshopify.com", ".myshopify.com", "myshopify.com",
    "a" * 250 + ".myshopify.com",
]


@pytest.mark.parametrize("value", HOSTILE_SHOPS)
def test_hostile_shops_are_refused(value: str | None) -> None:
    with pytest.raises(InvalidShop):
        normalize_shop(value)


def test_too_long_says_so() -> None:
    with pytest.raises(InvalidShop, match="255"):
        normalize_shop("a" * 250 + ".myshopify.com")


def test_good_shops_are_lowercased() -> None:
    assert normalize_shop("Loyal-Test-1.myshopify.com") == "loyal-test-1.myshopify.com"
    assert normalize_shop("a.myshopify.com") == "a.myshopify.com"


# -- query HMAC --------------------------------------------------------------------------------

def oauth_vectors() -> list[dict[str, Any]]:
    vectors = fixture_json("shopify/hmac_vectors.json")["vectors"]
    return [v for v in vectors if v["kind"] == "oauth_query_hmac"]


def vector_params(vector: dict[str, Any]) -> dict[str, Any]:
    if "query" in vector:
        return parse_qs(vector["query"], keep_blank_values=True)
    return {**vector["params"], "hmac": vector["expected"]}


@pytest.mark.parametrize("vector", oauth_vectors(), ids=lambda v: v["id"])
def test_published_vectors_verify(vector: dict[str, Any]) -> None:
    params = vector_params(vector)
    assert verify_query_hmac(params, [vector["secret"]])
    # During rotation the old secret is listed second and still accepted.
    assert verify_query_hmac(params, ["the-new-secret", vector["secret"]])
    assert not verify_query_hmac(params, ["the-new-secret"])
    assert shopify.Session.secret is None  # the library's global class was never touched


@pytest.mark.parametrize("vector", oauth_vectors(), ids=lambda v: v["id"])
def test_tampered_vectors_fail(vector: dict[str, Any]) -> None:
    params = vector_params(vector)
    tampered = {**params, "shop": ["evil-shop.myshopify.com"]}
    assert not verify_query_hmac(tampered, [vector["secret"]])
    added = {**params, "extra": ["1"]}
    assert not verify_query_hmac(added, [vector["secret"]])


def test_missing_hmac_or_empty_secret_fails() -> None:
    vector = oauth_vectors()[0]
    params = vector_params(vector)
    without = {k: v for k, v in params.items() if k != "hmac"}
    assert not verify_query_hmac(without, [vector["secret"]])
    assert not verify_query_hmac(params, [""])
    assert not verify_query_hmac(params, [])
    assert not verify_query_hmac({**params, "hmac": [""]}, [vector["secret"]])
    assert not verify_query_hmac({**params, "hmac": ["é"]}, [vector["secret"]])
    # A repeated plain parameter is not something Shopify signs.
    assert not verify_query_hmac({**params, "code": ["a", "b"]}, [vector["secret"]])


# -- authorize URL -----------------------------------------------------------------------------

def test_authorize_url() -> None:
    config = ShopifyConfig(api_key="app-key", api_secret="app-secret")
    url = authorize_url(config, SHOP, "https://loyalty.example.com/shopify/callback", "n0nce")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", SHOP, "/admin/oauth/authorize")
    assert parse_qs(parts.query) == {
        "client_id": ["app-key"], "scope": [",".join(SCOPES)],
        "redirect_uri": ["https://loyalty.example.com/shopify/callback"], "state": ["n0nce"],
    }
    assert shopify.Session.api_key is None


def test_authorize_url_with_override(httpserver: HTTPServer) -> None:
    config = make_config(httpserver)
    url = authorize_url(config, SHOP, "https://app/cb", "s")
    assert url.startswith(httpserver.url_for("/admin/oauth/authorize?"))


def test_authorize_url_refuses_a_bad_shop() -> None:
    config = ShopifyConfig(api_key="k", api_secret="s")
    with pytest.raises(InvalidShop):
        authorize_url(config, "evil.com", "https://app/cb", "s")


# -- code grant --------------------------------------------------------------------------------

def grant_response(**overrides: Any) -> dict[str, Any]:
    body = {"access_token": "shpat_new", "scope": "read_orders,write_discounts",
            "expires_in": 3600, "refresh_token": "shprt_new",
            "refresh_token_expires_in": 7776000}
    body.update(overrides)
    return body


def test_exchange_code_asks_for_an_expiring_token(httpserver: HTTPServer) -> None:
    httpserver.expect_request(TOKEN_PATH, method="POST").respond_with_json(grant_response())
    before = datetime.now(UTC)

    token = exchange_code(make_config(httpserver), SHOP, "the-code")

    request, _ = httpserver.log[0]
    assert request.get_json() == {"client_id": "app-key", "client_secret": "app-secret",
                                  "code": "the-code", "expiring": 1}
    assert request.headers["X-Forwarded-Host"] == SHOP
    assert token.shop == SHOP and token.access_token == "shpat_new"
    assert token.scope == "read_orders,write_discounts"
    assert token.refresh_token == "shprt_new"
    assert token.expires_at is not None and token.refresh_token_expires_at is not None
    assert timedelta(seconds=3590) < token.expires_at - before < timedelta(seconds=3610)
    assert token.refresh_token_expires_at - before > timedelta(days=89)
    assert "shpat_new" not in repr(token) and "shprt_new" not in repr(token)


def test_exchange_code_reports_shopify_error_without_secrets(httpserver: HTTPServer) -> None:
    httpserver.expect_request(TOKEN_PATH).respond_with_json(
        {"error": "invalid_request",
         "error_description": "The authorization code was not found or was already used"},
        status=400)
    with pytest.raises(TokenError) as caught:
        exchange_code(make_config(httpserver), SHOP, "used-code")
    message = str(caught.value)
    assert "400" in message and "already used" in message
    assert "app-secret" not in message and "used-code" not in message
    assert caught.value.code == "http_400"


def test_exchange_code_refuses_an_incomplete_answer(httpserver: HTTPServer) -> None:
    httpserver.expect_request(TOKEN_PATH).respond_with_json(
        grant_response(refresh_token=None))
    with pytest.raises(TokenError, match="refresh_token"):
        exchange_code(make_config(httpserver), SHOP, "c")


def test_exchange_code_refuses_a_bad_shop_before_any_call(httpserver: HTTPServer) -> None:
    with pytest.raises(InvalidShop):
        exchange_code(make_config(httpserver), "a.myshopify.com@evil.com", "c")
    assert httpserver.log == []


# -- refresh -----------------------------------------------------------------------------------

def stored_token(expires_in: timedelta | None, refresh_expires_in: timedelta | None = None,
                 refresh_token: str | None = "shprt_old") -> ShopToken:
    now = datetime.now(UTC)
    return ShopToken(
        shop=SHOP, access_token="shpat_old", scope="read_orders",
        expires_at=None if expires_in is None else now + expires_in,
        refresh_token=refresh_token,
        refresh_token_expires_at=now + (refresh_expires_in or timedelta(days=80)),
    )


def test_refresh_not_needed_makes_no_call(httpserver: HTTPServer) -> None:
    config = make_config(httpserver)
    assert refresh_if_needed(config, stored_token(timedelta(minutes=30))) is None
    non_expiring = ShopToken(shop=SHOP, access_token="shpat", scope="", expires_at=None,
                             refresh_token=None, refresh_token_expires_at=None)
    assert refresh_if_needed(config, non_expiring) is None
    assert httpserver.log == []


def test_refresh_within_a_minute_returns_a_new_pair(httpserver: HTTPServer) -> None:
    httpserver.expect_request(TOKEN_PATH, method="POST").respond_with_json(grant_response(
        access_token="shpat_fresh", refresh_token="shprt_fresh"))

    new = refresh_if_needed(make_config(httpserver), stored_token(timedelta(seconds=30)))

    assert new is not None
    assert (new.shop, new.access_token, new.refresh_token) == (SHOP, "shpat_fresh", "shprt_fresh")
    assert new.expires_at is not None and new.expires_at > datetime.now(UTC) + timedelta(minutes=55)
    request, _ = httpserver.log[0]
    assert request.get_json() == {"client_id": "app-key", "client_secret": "app-secret",
                                  "grant_type": "refresh_token", "refresh_token": "shprt_old"}
    assert request.headers["X-Forwarded-Host"] == SHOP


def test_refresh_invalid_grant_is_revoked(httpserver: HTTPServer) -> None:
    httpserver.expect_request(TOKEN_PATH).respond_with_json({"error": "invalid_grant"}, status=400)
    with pytest.raises(TokenRevoked) as caught:
        refresh_if_needed(make_config(httpserver), stored_token(timedelta(seconds=-5)))
    assert caught.value.code == "invalid_grant"


def test_refresh_token_past_its_life_is_revoked_without_a_call(httpserver: HTTPServer) -> None:
    token = stored_token(timedelta(seconds=-5), refresh_expires_in=timedelta(seconds=-1))
    with pytest.raises(TokenRevoked):
        refresh_if_needed(make_config(httpserver), token)
    assert httpserver.log == []


def test_refresh_other_failures_are_token_errors(httpserver: HTTPServer) -> None:
    httpserver.expect_request(TOKEN_PATH).respond_with_json({"error": "invalid_client"},
                                                            status=401)
    with pytest.raises(TokenError) as caught:
        refresh_if_needed(make_config(httpserver), stored_token(timedelta(seconds=10)))
    assert not isinstance(caught.value, TokenRevoked)
    assert caught.value.code == "invalid_client"


# -- token exchange (Shopify-managed install) --------------------------------------------------

def test_exchange_session_token(httpserver: HTTPServer) -> None:
    httpserver.expect_request(TOKEN_PATH, method="POST").respond_with_json(grant_response())
    claims = {"iss": f"https://{SHOP}/admin", "dest": f"https://{SHOP}", "aud": "app-key",
              "sub": "42"}

    token = exchange_session_token(make_config(httpserver), SHOP, "id.token.jwt", claims)

    assert (token.shop, token.access_token, token.refresh_token) == (SHOP, "shpat_new",
                                                                      "shprt_new")
    request, _ = httpserver.log[0]
    assert request.get_json() == {
        "client_id": "app-key", "client_secret": "app-secret",
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": "id.token.jwt",
        "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
        "requested_token_type": "urn:shopify:params:oauth:token-type:offline-access-token",
        "expiring": 1,
    }


def test_exchange_session_token_for_another_shop_is_refused(httpserver: HTTPServer) -> None:
    claims = {"dest": "https://other.myshopify.com"}
    with pytest.raises(TokenError) as caught:
        exchange_session_token(make_config(httpserver), SHOP, "jwt", claims)
    assert caught.value.code == "shop_mismatch"
    assert httpserver.log == []


# -- storage -----------------------------------------------------------------------------------

def test_token_round_trips_through_json() -> None:
    token = stored_token(timedelta(hours=1))
    restored = ShopToken.from_dict(json.loads(json.dumps(token.to_dict())))
    assert restored == token
    bare = ShopToken(shop=SHOP, access_token="t", scope="s", expires_at=None,
                     refresh_token=None, refresh_token_expires_at=None)
    assert ShopToken.from_dict(json.loads(json.dumps(bare.to_dict()))) == bare
    with pytest.raises(ValueError):
        ShopToken.from_dict({"shop": SHOP})
    with pytest.raises(ValueError):
        ShopToken.from_dict({**token.to_dict(), "shop": "evil.com"})
