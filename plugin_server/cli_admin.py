"""``loyalty admin-link MERCHANT``: a one-time sign-in link to a merchant's admin, for
operators and for stores without an app store sign-in (DESIGN §3)."""

from __future__ import annotations

import click
from flask import current_app

from .admin.login_links import LINK_LIFETIME, issue_login_token
from .db import unit_of_work
from .loyalty.errors import LoyaltyError
from .loyalty.merchants import resolve_merchant
from .runtime import Runtime


@click.command("admin-link", help="Print a one-time /admin/login?token=... URL that signs in "
                                  "to MERCHANT's admin (valid 5 minutes, usable once).")
@click.argument("reference", metavar="MERCHANT")
def admin_link(reference: str) -> None:
    runtime: Runtime = current_app.extensions["loyalty"]
    base = runtime.settings.APP_URL.rstrip("/")
    if not base:
        raise click.ClickException("APP_URL is not set: the link needs this server's address")
    try:
        with unit_of_work(runtime.database) as session:
            merchant = resolve_merchant(session, reference)
            token = issue_login_token(session, merchant.id)
            shop = merchant.shop
    except LoyaltyError as error:
        raise click.ClickException(str(error)) from error
    minutes = int(LINK_LIFETIME.total_seconds() // 60)
    click.echo(f"{base}/admin/login?token={token}")
    click.echo(f"signs in to {shop}; valid {minutes} minutes, once", err=True)


ADMIN_COMMANDS = [admin_link]
