"""The ``loyalty`` operator command (a Flask CLI group; DESIGN.md §3).

``--json`` prints exactly one JSON document on stdout; a command that cannot do its work
exits non-zero with one line on stderr."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from typing import Any, NoReturn

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from .cli_admin import ADMIN_COMMANDS
from .cli_platforms import PLATFORM_COMMANDS
from .config import ConfigError
from .db import unit_of_work
from .loyalty.audit import ledger_differences
from .loyalty.errors import LoyaltyError
from .loyalty.inbox import list_events
from .loyalty.merchants import list_merchants, merchant_summary, resolve_merchant
from .loyalty.overview import member_details
from .migrate import upgrade
from .models import Member, Order
from .runtime import Runtime


def _runtime() -> Runtime:
    return current_app.extensions["loyalty"]


def _emit(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def _fail(message: str) -> None:
    raise click.ClickException(message)


def register_cli(app: Flask) -> None:
    """Commands also reachable as ``flask --app plugin_server ...``."""
    for command in COMMANDS:
        app.cli.add_command(command)


@click.group("db", help="Database schema.")
def db_group() -> None:
    pass


@db_group.command("upgrade", help="Migrate the database to the latest schema.")
def db_upgrade() -> None:
    runtime = _runtime()
    upgrade(runtime.database)
    click.echo(f"database at the latest schema ({runtime.database.dialect})")


@click.command("check-ledger", help="Verify that every cached balance equals its entries (L4).")
@click.option("--json", "as_json", is_flag=True)
def check_ledger(as_json: bool) -> None:
    runtime = _runtime()
    with unit_of_work(runtime.database) as session:
        differences = ledger_differences(session)
        checked = session.execute(select(func.count(Member.id))).scalar_one()
    if as_json:
        _emit({"consistent": not differences, "members_checked": checked,
               "differences": [asdict(d) for d in differences]})
    elif not differences:
        click.echo(f"ledger consistent: {checked} member balances equal their entries")
    else:
        for d in differences:
            click.echo(f"merchant {d.merchant_id} member {d.member_id}: balance "
                       f"{d.cached_balance} != entries {d.ledger_balance}, pending "
                       f"{d.cached_pending} != entries {d.ledger_pending}")
    if differences:
        sys.exit(1)


@click.command("events", help="Inbox deliveries, newest first.")
@click.option("--failed", is_flag=True, help="Only deliveries that failed.")
@click.option("--limit", default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def events(failed: bool, limit: int, as_json: bool) -> None:
    with unit_of_work(_runtime().database) as session:
        rows = [{"id": e.id, "merchant": e.merchant_id, "topic": e.topic,
                 "event_id": e.event_id, "state": e.state, "reason": e.reason,
                 "received_at": e.received_at.isoformat()}
                for e in list_events(session, failed_only=failed, limit=limit)]
    if as_json:
        _emit(rows)
        return
    if not rows:
        click.echo("no failed deliveries" if failed else "no deliveries")
    for row in rows:
        reason = f"  ({row['reason']})" if row["reason"] else ""
        click.echo(f"{row['id']:>8}  {row['received_at']}  merchant {row['merchant']}  "
                   f"{row['topic']:<18} {row['state']:<9} {row['event_id']}{reason}")


@click.command("sweep", help="Re-dispatch unprocessed deliveries, release due pending points, "
                             "void stale redemption holds.")
@click.option("--json", "as_json", is_flag=True)
def sweep_command(as_json: bool) -> None:
    from .jobs import sweep

    runtime = _runtime()
    report = sweep(runtime, older_than_seconds=0)
    runtime.jobs.drain()
    if as_json:
        _emit(report.as_dict())
    else:
        click.echo(f"re-dispatched {report.redispatched} deliveries, released "
                   f"{report.released_points} pending points, voided {report.voided_holds} "
                   "stale holds")


@click.command("merchants", help="Every merchant.")
@click.option("--json", "as_json", is_flag=True)
def merchants(as_json: bool) -> None:
    with unit_of_work(_runtime().database) as session:
        rows = [merchant_summary(m) for m in list_merchants(session)]
    if as_json:
        _emit(rows)
        return
    for row in rows:
        click.echo(f"{row['id']:>5}  {row['platform']:<12} {row['status']:<12} {row['shop']}")


@click.command("member", help="One member: balance, pending, tier and history.")
@click.argument("merchant")
@click.argument("customer")
@click.option("--json", "as_json", is_flag=True)
def member(merchant: str, customer: str, as_json: bool) -> None:
    try:
        with unit_of_work(_runtime().database) as session:
            details = member_details(session, resolve_merchant(session, merchant).id, customer)
    except LoyaltyError as error:
        _fail(str(error))
    if as_json:
        _emit(details)
        return
    click.echo(f"{details['email'] or details['customer_id']}: {details['balance']} points "
               f"available, {details['pending']} pending, tier {details['tier'] or '-'}")
    for entry in details["history"]:
        click.echo(f"  {entry['created_at'][:19]}  {entry['kind']:<15} "
                   f"{entry['points'] + entry['pending_points']:>+7}  {entry['reason']}")


@click.command("demo", help="Run the embedded demo: a Shopify store played on this machine, "
                            "served on http://127.0.0.1:5000; with --orders, push simulated "
                            "orders as signed webhooks and exit.")
@click.option("--orders", "order_count", type=click.IntRange(0, 1_000_000), default=0,
              help="Push this many simulated orders through the webhook route, then exit.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
def demo(order_count: int, host: str, port: int) -> None:
    from .demo import (
        OrderSimulator,
        next_order_prefix,
        open_demo_store,
        seed_demo_history,
    )
    from .demo_shopify import DemoShopify
    from .web.demo_store import register_demo_store

    runtime = _runtime()
    if runtime.settings.is_production:
        _fail("the demo plays a fake Shopify and is refused in production")
    upgrade(runtime.database)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    shopify = DemoShopify(app)
    shopify.start()
    register_demo_store(app, shopify)
    # Serving: this run's stand-in Shopify must know the token, so install again. Pushing
    # orders only: keep the token a running demo server holds.
    merchant_id = open_demo_store(shopify, reinstall=not order_count)
    with unit_of_work(runtime.database) as session:
        first_run = _count_orders(session, merchant_id) == 0
    if first_run:
        click.echo("seeding demo members and their history ...", err=True)
        seed_demo_history(shopify, merchant_id)
    if order_count:
        _push_with_progress(shopify, order_count,
                            OrderSimulator(seed=int(time.time()), shoppers=400),
                            next_order_prefix())
        click.echo("done. Check the ledger with: loyalty check-ledger")
        return
    click.echo(f"demo ready: http://{host}:{port}/ (merchant view), "
               f"http://{host}:{port}/store (storefront with the widget); Ctrl-C to stop",
               err=True)
    _serve(runtime, host, port)


@click.command("run", help="Serve the app for development (production: the Procfile's "
                           "gunicorn line). Starts the minute sweep.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
def run(host: str, port: int) -> None:
    _serve(_runtime(), host, port)


def _serve(runtime: Runtime, host: str, port: int) -> None:
    from werkzeug.serving import run_simple

    from .sweeper import start_sweeper

    start_sweeper(runtime)
    # Flask's app.run() refuses to block inside its own CLI; serve with werkzeug directly.
    run_simple(host, port, current_app._get_current_object(),  # type: ignore[attr-defined]
               threaded=True, use_reloader=False)


def _count_orders(session: Any, merchant_id: int) -> int:

    return int(session.execute(select(func.count(Order.id))
                               .where(Order.merchant_id == merchant_id)).scalar_one())


def _push_with_progress(shopify: Any, count: int, simulator: Any, prefix: str) -> None:
    from tqdm import tqdm

    from .demo import push_orders

    deliveries = simulator.orders(count, prefix)
    with tqdm(total=count, desc="orders", unit="order", file=sys.stderr, mininterval=0.5) as bar:
        def counted() -> Any:
            for delivery in deliveries:
                if delivery[0] == "orders/paid":
                    bar.update(1)
                yield delivery

        push_orders(shopify, counted())
        shopify.runtime.jobs.drain()


COMMANDS = [db_group, check_ledger, events, sweep_command, merchants, member, demo, run,
            *PLATFORM_COMMANDS, *ADMIN_COMMANDS]


def main() -> None:
    from flask.cli import routes_command, shell_command

    from . import create_app

    cli = FlaskGroup(create_app=lambda: create_app(), add_version_option=False,
                     add_default_commands=False, help="Operate the loyalty server.")
    cli.add_command(shell_command)
    cli.add_command(routes_command)
    try:
        cli(prog_name="loyalty")
    except ConfigError as error:
        _die(f"cannot start: {error}")
    except DBAPIError as error:  # OperationalError on SQLite, ProgrammingError on PostgreSQL
        reason = str(error.orig).splitlines()[0] if error.orig else str(error)
        hint = ""
        if "no such table" in reason or "does not exist" in reason:
            where = _database_label()
            hint = (f" (database {where}: run `loyalty db upgrade` first, or run from the "
                    "directory that holds your instance/ folder, or set DATABASE_URL)")
        _die(f"database error: {reason}{hint}")


def _database_label() -> str:
    from sqlalchemy.engine import make_url

    from .config import load_settings

    try:
        return make_url(load_settings().DATABASE_URL).render_as_string(hide_password=True)
    except Exception:
        return "?"


def _die(message: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)
