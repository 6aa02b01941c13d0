"""Encrypting credentials at rest with ENCRYPTION_KEY (Fernet: AES-128-CBC + HMAC-SHA256)."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken


class CredentialsError(RuntimeError):
    pass


def _fernet(key: str) -> Fernet:
    # Any operator-chosen string becomes a valid 32-byte Fernet key.
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()))


def encrypt_json(key: str, value: dict[str, Any]) -> bytes:
    return _fernet(key).encrypt(json.dumps(value, sort_keys=True).encode())


def decrypt_json(key: str, token: bytes) -> dict[str, Any]:
    try:
        return json.loads(_fernet(key).decrypt(token))
    except InvalidToken as error:
        raise CredentialsError("stored credentials cannot be decrypted with this "
                               "ENCRYPTION_KEY") from error
