"""CSV exports of a merchant's members and ledger, produced a batch at a time.

Rows are read by keyset paging on the primary key (``id > last ORDER BY id LIMIT n``), so an
export of any size holds one batch in memory and never a whole table, and each batch is a
short query rather than one long-lived cursor."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin_server.models import LedgerEntry, Member, Order, Tier

BATCH_SIZE = 500

MEMBER_COLUMNS = ("email", "customer_id", "first_name", "last_name", "balance", "pending",
                  "tier", "created_at")
LEDGER_COLUMNS = ("created_at", "email", "customer_id", "kind", "points", "pending_points",
                  "reason", "order_id", "source_kind", "source_id")

# What a spreadsheet would read as a formula (OWASP's list, tab and CR included).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")

Cell = str | int | datetime | None


def neutralise(value: Cell) -> str:
    """The cell as text a spreadsheet shows as typed: a leading apostrophe keeps ``=cmd()``
    and friends from running as formulas; plain numbers such as ``-40`` stay numbers."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    if text.startswith(FORMULA_STARTS) and not PLAIN_NUMBER.match(text):
        return "'" + text
    return text


def csv_text(rows: Iterable[Sequence[Cell]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow([neutralise(cell) for cell in row])
    return buffer.getvalue()


def _tier_names(session: Session, merchant_id: int) -> dict[int, str]:
    rows = session.execute(select(Tier.id, Tier.name).where(Tier.merchant_id == merchant_id))
    return {tier_id: name for tier_id, name in rows}


def member_rows(session: Session, merchant_id: int,
                batch_size: int = BATCH_SIZE) -> Iterator[list[tuple[Cell, ...]]]:
    """The merchant's members in batches, oldest first, with their tier's name."""
    tiers = _tier_names(session, merchant_id)
    last_id = 0
    while True:
        batch = session.execute(
            select(Member.id, Member.email, Member.customer_id, Member.first_name,
                   Member.last_name, Member.balance, Member.pending, Member.tier_id,
                   Member.created_at)
            .where(Member.merchant_id == merchant_id, Member.id > last_id)
            .order_by(Member.id).limit(batch_size)).all()
        if not batch:
            return
        last_id = batch[-1].id
        yield [(row.email, row.customer_id, row.first_name, row.last_name, row.balance,
                row.pending, tiers.get(row.tier_id, "") if row.tier_id else "",
                row.created_at) for row in batch]


def ledger_rows(session: Session, merchant_id: int,
                batch_size: int = BATCH_SIZE) -> Iterator[list[tuple[Cell, ...]]]:
    """The merchant's ledger entries in batches, in the order they were posted."""
    last_id = 0
    while True:
        batch = session.execute(
            select(LedgerEntry.id, LedgerEntry.created_at, Member.email, Member.customer_id,
                   LedgerEntry.kind, LedgerEntry.points, LedgerEntry.pending_points,
                   LedgerEntry.reason, Order.platform_order_id, LedgerEntry.source_kind,
                   LedgerEntry.source_id)
            .join(Member, Member.id == LedgerEntry.member_id)
            .outerjoin(Order, Order.id == LedgerEntry.order_id)
            .where(LedgerEntry.merchant_id == merchant_id, LedgerEntry.id > last_id)
            .order_by(LedgerEntry.id).limit(batch_size)).all()
        if not batch:
            return
        last_id = batch[-1].id
        yield [tuple(row)[1:] for row in batch]


def stream_csv(header: Sequence[str],
               batches: Iterable[list[tuple[Cell, ...]]]) -> Iterator[str]:
    """The header line, then one chunk of text per batch."""
    yield csv_text([tuple(header)])
    for batch in batches:
        yield csv_text(batch)
