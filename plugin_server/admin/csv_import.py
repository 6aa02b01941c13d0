"""Importing starting balances from a CSV file (merchants moving from another loyalty app).

``parse_balances`` reads the file without touching the database and lists every problem by
line; ``plan_import`` adds what applying would do; ``apply_import`` creates the members and
posts each line's points as one ledger entry. Each entry's source id is derived from the
file's content hash and the email, so the ledger's unique (merchant, source kind, source id)
key makes applying the same file twice change nothing the second time."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from integrations.base import Customer
from plugin_server.admin.activity import record_activity
from plugin_server.exclusive import wait_in_turn
from plugin_server.loyalty.errors import InvalidArgument
from plugin_server.loyalty.ledger import post_entry
from plugin_server.loyalty.members import member_for_customer
from plugin_server.models import LedgerEntry, Member

MAX_BYTES = 5 * 1024 * 1024
MAX_LINES = 100_000
MAX_POINTS = 10_000_000
SOURCE_KIND = "import"
REQUIRED_COLUMNS = ("email", "points")
OPTIONAL_COLUMNS = ("customer_id", "first_name", "last_name")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
WHOLE_NUMBER = re.compile(r"^[+-]?\d+$")
LOOKUP_CHUNK = 500


class ImportRefused(InvalidArgument):
    """Apply was asked for a file that still has errors; ``report`` lists them."""

    def __init__(self, message: str, report: ImportReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class LineError:
    line: int  # as a spreadsheet numbers it: the header is line 1
    field: str
    reason: str  # a stable code: bad_email, not_whole_number, negative, too_large, ...


@dataclass(frozen=True)
class BalanceLine:
    line: int
    email: str
    points: int
    customer_id: str | None
    first_name: str | None
    last_name: str | None


@dataclass(frozen=True)
class ParsedFile:
    content_hash: str
    lines: list[BalanceLine]
    errors: list[LineError]


@dataclass
class ImportReport:
    mode: str  # dry_run | apply
    valid_lines: int
    errors: list[LineError]
    members_to_create: int
    total_points: int
    applied: bool = False
    entries_posted: int = 0
    already_applied: int = 0
    members_created: int = 0
    points_posted: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _text(content: bytes) -> str | None:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def _points(raw: str, line: int, errors: list[LineError]) -> int | None:
    value = raw.strip()
    if not WHOLE_NUMBER.match(value):
        errors.append(LineError(line, "points", "not_whole_number"))
        return None
    points = int(value)
    if points < 0:
        errors.append(LineError(line, "points", "negative"))
        return None
    if points > MAX_POINTS:
        errors.append(LineError(line, "points", "too_large"))
        return None
    return points


def parse_balances(content: bytes) -> ParsedFile:
    """Every line of the file checked; nothing read from or written to the database."""
    content_hash = hashlib.sha256(content).hexdigest()
    text = _text(content)
    if text is None:
        return ParsedFile(content_hash, [], [LineError(1, "file", "not_utf8")])
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        return ParsedFile(content_hash, [], [LineError(1, name, "missing_column")
                                             for name in missing])
    reader.fieldnames = header
    lines: list[BalanceLine] = []
    errors: list[LineError] = []
    first_line_of: dict[str, int] = {}
    count = 0
    for row in reader:
        line = reader.line_num
        if not any((value or "").strip() for value in row.values() if isinstance(value, str)):
            continue  # blank lines, common at the end of exported files
        count += 1
        if count > MAX_LINES:
            return ParsedFile(content_hash, [], [LineError(line, "file", "too_many_lines")])
        found = len(errors)
        email = (row.get("email") or "").strip().lower()
        if not EMAIL.match(email) or len(email) > 320:
            errors.append(LineError(line, "email", "bad_email"))
        elif email in first_line_of:
            errors.append(LineError(line, "email", "duplicate_email"))
        else:
            first_line_of[email] = line
        points = _points(row.get("points") or "", line, errors)
        customer_id = (row.get("customer_id") or "").strip() or None
        if customer_id is not None and len(customer_id) > 64:
            errors.append(LineError(line, "customer_id", "too_long"))
        if len(errors) == found and points is not None:
            lines.append(BalanceLine(line, email, points, customer_id,
                                     (row.get("first_name") or "").strip() or None,
                                     (row.get("last_name") or "").strip() or None))
    return ParsedFile(content_hash, lines, errors)


def source_id_for(content_hash: str, email: str) -> str:
    """One line's ledger source id: the same file and email always give the same one."""
    key = f"{content_hash[:40]}:{email}"
    if len(key) > 190:  # the column's width; long addresses are hashed instead
        key = f"{content_hash[:40]}:{hashlib.sha256(email.encode()).hexdigest()}"
    return key


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), LOOKUP_CHUNK):
        yield values[start:start + LOOKUP_CHUNK]


def _existing(session: Session, merchant_id: int, column: Any, values: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(values):
        found.update(session.execute(select(column).where(
            Member.merchant_id == merchant_id, column.in_(chunk))).scalars())
    return found


def members_to_create(session: Session, merchant_id: int, lines: list[BalanceLine]) -> int:
    """How many lines name nobody the merchant knows (by customer id if given, else email)."""
    by_id = _existing(session, merchant_id, Member.customer_id,
                      [line.customer_id for line in lines if line.customer_id])
    by_email = _existing(session, merchant_id, Member.email,
                         [line.email for line in lines if not line.customer_id])
    return sum(1 for line in lines
               if (line.customer_id not in by_id if line.customer_id
                   else line.email not in by_email))


def plan_import(session: Session, merchant_id: int, parsed: ParsedFile,
                mode: str = "dry_run") -> ImportReport:
    return ImportReport(
        mode=mode, valid_lines=len(parsed.lines), errors=parsed.errors,
        members_to_create=members_to_create(session, merchant_id, parsed.lines),
        total_points=sum(line.points for line in parsed.lines))


def _already_posted(session: Session, merchant_id: int, content_hash: str) -> set[str]:
    return set(session.execute(select(LedgerEntry.source_id).where(
        LedgerEntry.merchant_id == merchant_id, LedgerEntry.source_kind == SOURCE_KIND,
        LedgerEntry.source_id.startswith(f"{content_hash[:40]}:", autoescape=True)))
        .scalars())


def apply_import(session: Session, merchant_id: int, actor: str,
                 parsed: ParsedFile) -> ImportReport:
    """Create the members and post the points, in the caller's transaction. A file with any
    error is refused whole, so a merchant never ends up with half a migration."""
    if parsed.errors:
        raise ImportRefused(f"the file has {len(parsed.errors)} errors; fix them first",
                            plan_import(session, merchant_id, parsed, mode="apply"))
    # One apply at a time per merchant: a second click on the same file waits, then finds
    # every line already posted, instead of racing it to the members' and ledger's keys.
    # (An advisory lock, not the merchant's row: that would hold up its webhooks.)
    wait_in_turn(session, f"import:{merchant_id}")
    report = plan_import(session, merchant_id, parsed, mode="apply")
    posted = _already_posted(session, merchant_id, parsed.content_hash)
    for line in parsed.lines:
        source_id = source_id_for(parsed.content_hash, line.email)
        if source_id in posted:
            report.already_applied += 1
            continue
        member = member_for_customer(session, merchant_id, Customer(
            customer_id=line.customer_id, email=line.email, first_name=line.first_name,
            last_name=line.last_name))
        assert member is not None  # every valid line has an email
        if line.points:
            post_entry(session, member, kind="adjustment", source_kind=SOURCE_KIND,
                       source_id=source_id, points=line.points, actor=actor,
                       reason="starting balance imported from a CSV file")
            report.entries_posted += 1
            report.points_posted += line.points
    report.members_created = report.members_to_create
    report.applied = True
    if report.entries_posted or report.members_created:
        # Applying a file again posts nothing, and leaves no activity either.
        record_activity(session, merchant_id, actor, "import.balances", {
            "lines": report.entries_posted, "points": report.points_posted})
    return report
