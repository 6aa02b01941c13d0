"""Finding and creating members; guests known by email are claimed when their account appears."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from integrations.base import Customer
from plugin_server.models import Member, Order

from .errors import InvalidArgument, NotFound
from .ledger import post_entry


def normalise_email(email: str | None) -> str | None:
    if email is None:
        return None
    email = email.strip().lower()
    if not email:
        return None
    if "@" not in email or len(email) > 320 or any(ch.isspace() for ch in email):
        raise InvalidArgument(f"{email!r} is not an email address")
    return email


def _insert_ignoring_conflict(session: Session, values: dict[str, object]) -> None:
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(Member).values(**values).on_conflict_do_nothing())


def find_member(session: Session, merchant_id: int, customer: str) -> Member:
    """By platform customer id or by email (the CLI's CUSTOMER argument)."""
    column = Member.email if "@" in customer else Member.customer_id
    value = customer.strip().lower() if "@" in customer else customer
    member = session.execute(
        select(Member).where(Member.merchant_id == merchant_id, column == value)
    ).scalar_one_or_none()
    if member is None:
        raise NotFound(f"no member {customer!r} in merchant {merchant_id}")
    return member


def _by(session: Session, merchant_id: int, **criteria: str) -> Member | None:
    query = select(Member).where(Member.merchant_id == merchant_id)
    for name, value in criteria.items():
        query = query.where(getattr(Member, name) == value)
    return session.execute(query).scalar_one_or_none()


def member_for_customer(session: Session, merchant_id: int, customer: Customer, *,
                        update_profile: bool = False) -> Member | None:
    """The member an order or account belongs to, created if new; None when the shopper has
    neither an account nor an email (nobody to award). With a customer id, an email that is not
    one is ignored rather than blocking the account's points.

    ``update_profile`` is for the platform's customer records (customers/create, /update):
    they are the truth about the account's email and names. An order's email only fills in an
    email the member does not have yet (an order's contact email can differ from the
    account's)."""
    try:
        email = normalise_email(customer.email)
    except InvalidArgument:
        if not customer.customer_id:
            raise
        email = None
    if customer.customer_id and not customer.email_is_account:
        # A registered customer's billing email: it may be anybody's, so it neither claims a
        # guest nor becomes the member's email (later guest orders with it are not theirs).
        email = None
    names = {"first_name": (customer.first_name or "")[:120],
             "last_name": (customer.last_name or "")[:120]}
    if customer.customer_id:
        member = _by(session, merchant_id, customer_id=customer.customer_id)
        holder = _by(session, merchant_id, email=email) if email else None
        # Only the account's own email claims a guest: an address typed at checkout could
        # be anybody's.
        guest = holder if (holder is not None and holder.customer_id is None
                           and customer.email_is_account) else None
        if member is None and guest is not None:
            guest.customer_id = customer.customer_id
            if update_profile:
                _update_profile(session, guest, email, customer)
            session.flush()
            return guest
        if member is None:
            _insert_ignoring_conflict(session, {
                "merchant_id": merchant_id, "customer_id": customer.customer_id,
                "email": email if holder is None else None, **names,
                "balance": 0, "pending": 0, "tier_progress": 0,
            })
            member = _by(session, merchant_id, customer_id=customer.customer_id)
            assert member is not None
        if guest is not None and guest.id != member.id:
            merge_guest_into(session, guest, member)
            holder = None
        if update_profile:
            _update_profile(session, member, email, customer)
        elif email and member.email is None and holder is None:
            member.email = email
        return member
    if email is None:
        return None
    member = _by(session, merchant_id, email=email)
    if member is None:
        _insert_ignoring_conflict(session, {
            "merchant_id": merchant_id, "email": email, **names,
            "balance": 0, "pending": 0, "tier_progress": 0,
        })
        member = _by(session, merchant_id, email=email)
        assert member is not None
    return member


def _update_profile(session: Session, member: Member, email: str | None,
                    customer: Customer) -> None:
    if customer.first_name is not None:
        member.first_name = customer.first_name[:120]
    if customer.last_name is not None:
        member.last_name = customer.last_name[:120]
    if email and member.email != email:
        holder = _by(session, member.merchant_id, email=email)
        if holder is None:  # another account keeping this email wins; ours stays as it was
            member.email = email
    session.flush()


def merge_guest_into(session: Session, guest: Member, member: Member) -> None:
    """Move a guest's points and orders to the account that now owns the email."""
    # Locked, so an award to the guest committing meanwhile cannot be left behind.
    session.refresh(guest, ["balance", "pending"], with_for_update=True)
    balance, pending = guest.balance, guest.pending
    if balance or pending:
        reason = f"points earned as a guest, claimed by account {member.customer_id}"
        post_entry(session, guest, kind="adjustment", source_kind="guest_claim_out",
                   source_id=str(guest.id), points=-balance, pending_points=-pending,
                   reason=reason)
        post_entry(session, member, kind="adjustment", source_kind="guest_claim_in",
                   source_id=str(guest.id), points=balance, pending_points=pending,
                   reason=reason)
    session.execute(update(Order).where(Order.member_id == guest.id,
                                        Order.merchant_id == guest.merchant_id)
                    .values(member_id=member.id))
    email = guest.email
    guest.email = None
    session.flush()
    if member.email is None:
        member.email = email
        session.flush()
