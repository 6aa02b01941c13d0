"""Operator commands about connected stores: ``merchant``, ``reconcile`` and ``imports``."""

from __future__ import annotations

import json
from typing import Any

import click
from flask import current_app
from sqlalchemy import func, select

from integrations.shopify.admin import AdminError
from integrations.shopify.order_queries import BulkOperationError

from .crypto import CredentialsError
from .db import unit_of_work
from .loyalty.errors import LoyaltyError
from .loyalty.merchants import merchant_summary, resolve_merchant
from .loyalty.widget_identity import widget_secret_for
from .models import DataRequest, ImportRun, Member, Merchant, Order
from .runtime import Runtime
from .shopify.tokens import NotConnected


def _runtime() -> Runtime:
    return current_app.extensions["loyalty"]


def _emit(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def import_json(run: ImportRun) -> dict[str, Any]:
    done = run.processed + run.failed
    return {"id": run.id, "merchant": run.merchant_id, "kind": run.kind, "state": run.state,
            "award_points": run.award_points, "total": run.total, "processed": run.processed,
            "failed": run.failed,
            "percent": 100 if run.state == "completed" else (
                int(done * 100 / run.total) if run.total else 0),
            "error": run.error, "started_at": _iso(run.started_at),
            "finished_at": _iso(run.finished_at)}


@click.command("merchant", help="One merchant's details (MERCHANT: id, shop domain or store "
                                "URL), with the store id and widget secret the storefront "
                                "plugin needs.")
@click.argument("reference", metavar="MERCHANT")
@click.option("--json", "as_json", is_flag=True)
def merchant(reference: str, as_json: bool) -> None:
    runtime = _runtime()
    # Commits: the widget secret is made (and kept) the first time it is shown.
    with unit_of_work(runtime.database) as session:
        try:
            found = resolve_merchant(session, reference)
        except LoyaltyError as error:
            raise click.ClickException(str(error)) from error
        try:
            widget_secret = widget_secret_for(session, found, runtime.settings.ENCRYPTION_KEY)
        except CredentialsError as error:
            raise click.ClickException(f"{found.shop}: {error}") from error
        counts = {
            "members": session.execute(select(func.count(Member.id))
                                       .where(Member.merchant_id == found.id)).scalar_one(),
            "orders": session.execute(select(func.count(Order.id))
                                      .where(Order.merchant_id == found.id)).scalar_one(),
        }
        imports = [import_json(run) for run in session.execute(
            select(ImportRun).where(ImportRun.merchant_id == found.id)
            .order_by(ImportRun.id.desc()).limit(5)).scalars()]
        details = merchant_summary(found) | {
            "name": found.name, "currency": found.currency, "timezone": found.timezone,
            "installed_at": _iso(found.installed_at),
            "uninstalled_at": _iso(found.uninstalled_at),
            "connected": found.credentials is not None,
            "store_id": found.store_id, "widget_secret": widget_secret,
            "last_reconciled_at": _iso(found.sync_checkpoint), **counts, "imports": imports,
        }
    if as_json:
        _emit(details)
        return
    for key, value in details.items():
        if key != "imports":
            click.echo(f"{key:>20}: {value}")
    for run in imports:
        click.echo(f"{'import':>20}: #{run['id']} {run['state']} {run['processed']}/"
                   f"{run['total']} ({run['failed']} failed)")


RECONCILED_PLATFORMS = ("shopify", "woocommerce")


def _page_progress(shop: str) -> Any:
    """One line a window on stderr: a first reconciliation reads the store's whole history."""
    def report(listing: str, seen: int, total: int | None) -> None:
        size = f" of about {total}" if total is not None and listing == "any" else ""
        click.echo(f"{shop}: {seen}{size} orders read ({listing})", err=True)

    return report


def _targets(reference: str | None) -> list[Merchant]:
    with unit_of_work(_runtime().database) as session:
        if reference:
            try:
                found = resolve_merchant(session, reference)
            except LoyaltyError as error:
                raise click.ClickException(str(error)) from error
            if found.platform not in RECONCILED_PLATFORMS:
                raise click.ClickException(f"{found.shop} is a {found.platform} store; there "
                                           "is no platform to reconcile with")
            return [found]
        return list(session.execute(
            select(Merchant).where(Merchant.platform.in_(RECONCILED_PLATFORMS),
                                   Merchant.status == "active")
            .order_by(Merchant.id)).scalars())


@click.command("reconcile", help="Read orders the platform changed since the last "
                                 "checkpoint and heal what the webhooks missed.")
@click.argument("reference", metavar="[MERCHANT]", required=False)
@click.option("--json", "as_json", is_flag=True)
def reconcile(reference: str | None, as_json: bool) -> None:
    from .shopify.jobs import reconcile as reconcile_shopify
    from .woocommerce.jobs import WOO_ERRORS
    from .woocommerce.jobs import reconcile as reconcile_woocommerce

    runtime = _runtime()
    reports: list[dict[str, Any]] = []
    problems: list[str] = []
    for target in _targets(reference):
        try:
            if target.platform == "woocommerce":
                reports.append(reconcile_woocommerce(
                    runtime, target.id, progress=None if as_json else _page_progress(
                        target.shop)).as_dict())
            else:
                reports.append(reconcile_shopify(runtime, target.id).as_dict())
        except (NotConnected, AdminError, LoyaltyError, *WOO_ERRORS) as error:
            problems.append(f"{target.shop}: {error}")
    if as_json:
        _emit({"reconciled": reports, "failed": problems})
    else:
        for report in reports:
            click.echo(f"{report['merchant']}: {report['seen']} orders changed since the "
                       f"checkpoint, {report['healed']} healed, {report['failed']} failed")
        if not reports and not problems:
            click.echo("no connected store to reconcile")
    if problems:
        raise click.ClickException("; ".join(problems))


@click.command("imports", help="History imports and their progress; --run moves running "
                               "ones on now.")
@click.argument("reference", metavar="[MERCHANT]", required=False)
@click.option("--run", "run_now", is_flag=True, help="Check running imports with the platform "
                                                     "now instead of waiting for the sweep.")
@click.option("--start", is_flag=True, help="Start a new import for MERCHANT.")
@click.option("--award-past-orders", type=click.Choice(["yes", "no"]), default=None,
              help="The merchant's choice: do orders placed before the install earn points? "
                   "Saved before --start.")
@click.option("--json", "as_json", is_flag=True)
def imports(reference: str | None, run_now: bool, start: bool, award_past_orders: str | None,
            as_json: bool) -> None:
    from .loyalty.program import ensure_settings
    from .shopify.jobs import advance_import, start_history_import

    runtime = _runtime()
    merchant_id: int | None = None
    if award_past_orders is not None and not reference:
        raise click.ClickException("--award-past-orders needs a MERCHANT")
    if reference:
        with unit_of_work(runtime.database) as session:
            try:
                found = resolve_merchant(session, reference)
            except LoyaltyError as error:
                raise click.ClickException(str(error)) from error
            merchant_id = found.id
            if award_past_orders is not None:
                ensure_settings(session, found).award_past_orders = award_past_orders == "yes"
    try:
        if start:
            if merchant_id is None:
                raise click.ClickException("--start needs a MERCHANT")
            start_history_import(runtime, merchant_id)
        if run_now:
            with unit_of_work(runtime.database) as session:
                running = list(session.execute(select(ImportRun.id)
                                               .where(ImportRun.state == "running")).scalars())
            for import_id in running:
                advance_import(runtime, import_id)
    except (NotConnected, AdminError, BulkOperationError) as error:
        raise click.ClickException(str(error)) from error
    with unit_of_work(runtime.database) as session:
        query = select(ImportRun).order_by(ImportRun.id.desc()).limit(50)
        if merchant_id is not None:
            query = query.where(ImportRun.merchant_id == merchant_id)
        rows = [import_json(run) for run in session.execute(query).scalars()]
    if as_json:
        _emit(rows)
        return
    if not rows:
        click.echo("no imports")
    for row in rows:
        bar = "#" * (row["percent"] // 5)
        click.echo(f"#{row['id']:<4} merchant {row['merchant']:<4} {row['state']:<10} "
                   f"[{bar:<20}] {row['percent']:>3}%  {row['processed']}/{row['total']} "
                   f"imported, {row['failed']} failed"
                   + (f"  ({row['error']})" if row["error"] else ""))


@click.command("data-requests", help="Shoppers' data gathered for privacy requests "
                                     "(customers/data_request), for the merchant to hand over.")
@click.argument("reference", metavar="MERCHANT")
@click.option("--json", "as_json", is_flag=True)
def data_requests(reference: str, as_json: bool) -> None:
    with unit_of_work(_runtime().database) as session:
        try:
            merchant_id = resolve_merchant(session, reference).id
        except LoyaltyError as error:
            raise click.ClickException(str(error)) from error
        rows = [{"id": request.id, "request_id": request.platform_request_id,
                 "customer_id": request.customer_id, "email": request.email,
                 "created_at": _iso(request.created_at), "data": json.loads(request.payload)}
                for request in session.execute(
                    select(DataRequest).where(DataRequest.merchant_id == merchant_id)
                    .order_by(DataRequest.id.desc())).scalars()]
    if as_json:
        _emit(rows)
        return
    if not rows:
        click.echo("no data requests")
    for row in rows:
        members = row["data"]["members"]
        click.echo(f"#{row['id']} {row['created_at']} customer {row['customer_id']} "
                   f"{row['email'] or ''}: {len(members)} member record(s), "
                   f"{len(row['data']['orders'])} order(s); --json prints the data")


PLATFORM_COMMANDS = [merchant, reconcile, imports, data_requests]
