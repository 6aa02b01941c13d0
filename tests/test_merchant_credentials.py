"""Platform credentials are encrypted at rest and only readable with the same key."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from plugin_server.crypto import CredentialsError
from plugin_server.db import unit_of_work
from plugin_server.loyalty.merchants import read_credentials, resolve_merchant, store_credentials


def test_credentials_round_trip_and_are_not_stored_in_clear(runtime, merchant_id) -> None:
    token = "shpat_0123456789abcdef"
    with unit_of_work(runtime.database) as session:
        merchant = resolve_merchant(session, str(merchant_id))
        store_credentials(merchant, "key-one", {"access_token": token, "expires_in": 3600})
    with unit_of_work(runtime.database) as session:
        raw = session.execute(text("SELECT credentials FROM merchants WHERE id = :id"),
                              {"id": merchant_id}).scalar_one()
        assert token.encode() not in bytes(raw)
        merchant = resolve_merchant(session, "test-shop.example")
        assert read_credentials(merchant, "key-one") == {"access_token": token,
                                                         "expires_in": 3600}
        with pytest.raises(CredentialsError, match="ENCRYPTION_KEY"):
            read_credentials(merchant, "another-key")


def test_no_credentials_read_as_empty(runtime, merchant_id) -> None:
    with unit_of_work(runtime.database) as session:
        assert read_credentials(resolve_merchant(session, str(merchant_id)), "k") == {}
