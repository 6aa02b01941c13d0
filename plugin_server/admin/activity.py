"""Recording and reading the admin's activity log."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin_server.models import AdminActivity, utcnow


@dataclass(frozen=True)
class ActivityEntry:
    id: int
    actor: str
    action: str
    detail: dict[str, Any]
    created_at: datetime


def record_activity(session: Session, merchant_id: int, actor: str, action: str,
                    detail: dict[str, Any] | None = None) -> None:
    """Log one change in the caller's transaction (it is kept only if the change is)."""
    session.add(AdminActivity(merchant_id=merchant_id, actor=actor[:120], action=action[:60],
                              detail_json=json.dumps(detail or {}, default=str,
                                                     ensure_ascii=False),
                              created_at=utcnow()))


def recent_activity(session: Session, merchant_id: int, *, limit: int = 50,
                    before_id: int | None = None) -> list[ActivityEntry]:
    query = select(AdminActivity).where(AdminActivity.merchant_id == merchant_id)
    if before_id is not None:
        query = query.where(AdminActivity.id < before_id)
    rows = session.execute(query.order_by(AdminActivity.id.desc()).limit(limit)).scalars()
    return [ActivityEntry(row.id, row.actor, row.action, json.loads(row.detail_json),
                          row.created_at) for row in rows]
