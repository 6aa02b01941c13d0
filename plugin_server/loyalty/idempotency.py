"""Idempotency keys (L8): the same key and body replay the first answer; another body is 409."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from plugin_server.models import IdempotencyRecord, utcnow

from .errors import IdempotencyConflict, InvalidArgument

IN_PROGRESS = 0


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    status_code: int
    body: dict[str, Any]


def request_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def validate_key(key: str | None) -> str:
    if not key or not key.strip():
        raise InvalidArgument("the Idempotency-Key header is required")
    if len(key) > 255 or not key.isprintable():
        raise InvalidArgument("the Idempotency-Key header must be at most 255 printable "
                              "characters")
    return key.strip()


def claim_key(session: Session, merchant_id: int, scope: str, key: str,
              digest: str) -> StoredAnswer | None:
    """Reserve the key for this request, or return the answer already given for it.

    Raises IdempotencyConflict when the key was used with another body, or while the first
    request with it is still being answered."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    inserted = session.execute(
        insert(IdempotencyRecord).values(
            merchant_id=merchant_id, scope=scope, key=key, request_hash=digest,
            status_code=IN_PROGRESS, response_json="{}", created_at=utcnow(),
        ).on_conflict_do_nothing().returning(IdempotencyRecord.id)
    )
    if inserted.first() is not None:  # rowcount is -1 here on PostgreSQL
        return None
    record = session.execute(
        select(IdempotencyRecord).where(IdempotencyRecord.merchant_id == merchant_id,
                                        IdempotencyRecord.scope == scope,
                                        IdempotencyRecord.key == key)
    ).scalar_one()
    if record.request_hash != digest:
        raise IdempotencyConflict("this Idempotency-Key was already used with a different "
                                  "request body")
    if record.status_code == IN_PROGRESS:
        raise IdempotencyConflict("a request with this Idempotency-Key is still in progress")
    return StoredAnswer(record.status_code, json.loads(record.response_json))


def store_answer(session: Session, merchant_id: int, scope: str, key: str,
                 answer: StoredAnswer) -> None:
    record = session.execute(
        select(IdempotencyRecord).where(IdempotencyRecord.merchant_id == merchant_id,
                                        IdempotencyRecord.scope == scope,
                                        IdempotencyRecord.key == key)
    ).scalar_one()
    record.status_code = answer.status_code
    record.response_json = json.dumps(answer.body)
    session.flush()
