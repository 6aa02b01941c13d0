"""The admin's import & export section: streamed CSV exports of members and the ledger
(scoped to the merchant, safe from spreadsheet formulas), and the import of starting
balances (dry run, refusal of files with errors, apply, applying twice)."""

from __future__ import annotations

import importlib
import io
import json
import threading
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from integrations.base import Customer
from plugin_server.admin.csv_import import apply_import, parse_balances
from plugin_server.db import unit_of_work
from plugin_server.loyalty.ledger import post_entry
from plugin_server.loyalty.members import member_for_customer
from plugin_server.models import AdminActivity, LedgerEntry, Member, Order, Tier
from tests.support.admin import (
    OTHER_SHOP,
    SHOP,
    csrf_token,
    merchant_named,
    session_token,
    signed_in_client,
)

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
T1 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def app(admin_app: Flask) -> Flask:
    return admin_app


def _member(session: Any, merchant_id: int, customer_id: str | None, email: str,
            first: str = "", last: str = "") -> Member:
    member = member_for_customer(session, merchant_id, Customer(customer_id, email, first, last))
    assert member is not None
    member.created_at = T0
    session.flush()
    return member


def _shop_data(app: Flask) -> None:
    """SHOP: Alice (Gold, an order's award, pending points, a manual adjustment) and a guest;
    OTHER_SHOP: Carol, who must never appear in SHOP's exports."""
    shop, other = merchant_named(app, SHOP).id, merchant_named(app, OTHER_SHOP).id
    with unit_of_work(app.extensions["loyalty"].database) as session:
        gold = Tier(merchant_id=shop, name="Gold", threshold=Decimal(100))
        session.add(gold)
        session.flush()
        alice = _member(session, shop, "c1", "alice@example.com", "Alice", "Archer")
        alice.tier_id = gold.id
        guest = _member(session, shop, None, "guest@example.com")
        order = Order(merchant_id=shop, platform_order_id="5001", name="#1001",
                      currency="EUR", placed_at=T0, platform_updated_at=T0)
        session.add(order)
        session.flush()
        post_entry(session, alice, kind="award", source_kind="order", source_id="5001",
                   points=150, pending_points=30, order_id=order.id, reason="order #1001",
                   now=T0)
        post_entry(session, alice, kind="adjustment", source_kind="admin", source_id="a1",
                   points=-40, reason="goodwill correction", now=T1)
        post_entry(session, guest, kind="adjustment", source_kind="admin", source_id="a2",
                   points=5, reason="welcome", now=T1)
        carol = _member(session, other, "c1", "carol@example.com", "Carol")
        post_entry(session, carol, kind="adjustment", source_kind="admin", source_id="a1",
                   points=999, reason="other shop", now=T1)


def _lines(text: str) -> list[str]:
    return text.split("\r\n")[:-1]


# -- exports -----------------------------------------------------------------------------------

def test_members_export_has_the_header_and_exactly_the_merchants_members(app: Flask) -> None:
    _shop_data(app)
    answer = signed_in_client(app, SHOP).get("/admin/export/members.csv")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/csv; charset=utf-8"
    disposition = answer.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="members-tea-house.myshopify.com-')
    assert _lines(answer.get_data(as_text=True)) == [
        "email,customer_id,first_name,last_name,balance,pending,tier,created_at",
        "alice@example.com,c1,Alice,Archer,110,30,Gold,2026-03-01T09:30:00+00:00",
        "guest@example.com,,,,5,0,,2026-03-01T09:30:00+00:00",
    ]


def test_ledger_export_has_the_header_and_exactly_the_merchants_entries(app: Flask) -> None:
    _shop_data(app)
    answer = signed_in_client(app, SHOP).get("/admin/export/ledger.csv")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert answer.headers["Content-Disposition"].startswith('attachment; filename="ledger-')
    assert _lines(answer.get_data(as_text=True)) == [
        "created_at,email,customer_id,kind,points,pending_points,reason,order_id,"
        "source_kind,source_id",
        "2026-03-01T09:30:00+00:00,alice@example.com,c1,award,150,30,order #1001,5001,"
        "order,5001",
        "2026-03-02T10:00:00+00:00,alice@example.com,c1,adjustment,-40,0,"
        "goodwill correction,,admin,a1",
        "2026-03-02T10:00:00+00:00,guest@example.com,,adjustment,5,0,welcome,,admin,a2",
    ]


def test_the_other_merchant_sees_only_its_own_rows(app: Flask) -> None:
    _shop_data(app)
    client = signed_in_client(app, OTHER_SHOP)
    members = _lines(client.get("/admin/export/members.csv").get_data(as_text=True))
    ledger = _lines(client.get("/admin/export/ledger.csv").get_data(as_text=True))
    assert members[1:] == ["carol@example.com,c1,Carol,,999,0,,2026-03-01T09:30:00+00:00"]
    assert ledger[1:] == ["2026-03-02T10:00:00+00:00,carol@example.com,c1,adjustment,999,0,"
                          "other shop,,admin,a1"]


def test_cells_that_look_like_formulas_are_neutralised(app: Flask) -> None:
    shop = merchant_named(app, SHOP).id
    with unit_of_work(app.extensions["loyalty"].database) as session:
        sly = _member(session, shop, "-7", "sly@example.com", '=HYPERLINK("http://x")', "@SUM")
        post_entry(session, sly, kind="adjustment", source_kind="admin", source_id="f1",
                   points=-3, pending_points=2, reason="+cmd|' /C calc'!A0", now=T1)
        post_entry(session, sly, kind="adjustment", source_kind="admin", source_id="f2",
                   points=3, reason="-", now=T1)
    client = signed_in_client(app, SHOP)
    members = _lines(client.get("/admin/export/members.csv").get_data(as_text=True))
    # A plain number such as the customer id -7 stays a number.
    assert members[1] == ("sly@example.com,-7,\"'=HYPERLINK(\"\"http://x\"\")\",'@SUM,0,2,,"
                          "2026-03-01T09:30:00+00:00")
    ledger = _lines(client.get("/admin/export/ledger.csv").get_data(as_text=True))
    assert ledger[1:] == [
        "2026-03-02T10:00:00+00:00,sly@example.com,-7,adjustment,-3,2,'+cmd|' /C calc'!A0,,"
        "admin,f1",
        "2026-03-02T10:00:00+00:00,sly@example.com,-7,adjustment,3,0,'-,,admin,f2",
    ]


def test_a_large_export_streams_every_row(app: Flask) -> None:
    shop = merchant_named(app, SHOP).id
    with unit_of_work(app.extensions["loyalty"].database) as session:
        session.add_all(Member(merchant_id=shop, customer_id=str(number),
                               email=f"m{number}@example.com", balance=0, pending=0,
                               tier_progress=0, created_at=T0) for number in range(3000))
    answer = signed_in_client(app, SHOP).get("/admin/export/members.csv")
    assert answer.status_code == 200 and answer.is_streamed
    rows = _lines(answer.get_data(as_text=True))
    assert len(rows) == 3001
    assert {row.split(",")[0] for row in rows[1:]} == {f"m{n}@example.com" for n in range(3000)}


def test_exports_work_with_a_shopify_session_token(app: Flask) -> None:
    _shop_data(app)
    answer = app.test_client().get("/admin/export/members.csv",
                                   headers={"Authorization": f"Bearer {session_token()}"})
    assert answer.status_code == 200
    assert len(_lines(answer.get_data(as_text=True))) == 3


@pytest.mark.parametrize("method, path", [("get", "/admin/export/members.csv"),
                                          ("get", "/admin/export/ledger.csv"),
                                          ("post", "/admin/import/balances")])
def test_nobody_signed_in_is_refused(app: Flask, method: str, path: str) -> None:
    assert getattr(app.test_client(), method)(path).status_code == 401


# -- import ------------------------------------------------------------------------------------

def _upload(client: FlaskClient, content: bytes, mode: str, *, token: str | None,
            as_json: bool = True) -> Any:
    form: dict[str, Any] = {"mode": mode, "file": (io.BytesIO(content), "balances.csv")}
    if token is not None:
        form["csrf_token"] = token
    headers = {"Accept": "application/json"} if as_json else {}
    return client.post("/admin/import/balances", data=form, headers=headers,
                       content_type="multipart/form-data")


def _counts(app: Flask) -> tuple[int, int, int]:
    with unit_of_work(app.extensions["loyalty"].database) as session:
        return (session.scalar(select(func.count()).select_from(Member)) or 0,
                session.scalar(select(func.count()).select_from(LedgerEntry)) or 0,
                session.scalar(select(func.count()).select_from(AdminActivity)) or 0)


def _balances(app: Flask, shop: str) -> dict[str, tuple[str | None, int, str]]:
    merchant_id = merchant_named(app, shop).id
    with unit_of_work(app.extensions["loyalty"].database) as session:
        return {member.email or "": (member.customer_id, member.balance,
                                     f"{member.first_name} {member.last_name}".strip())
                for member in session.scalars(select(Member).where(
                    Member.merchant_id == merchant_id))}


WITH_ERRORS = (b"email,points,customer_id\r\n"
               b"ok@example.com,100,\r\n"
               b"bad-email,5,\r\n"
               b"x@example.com,1.5,\r\n"
               b"y@example.com,-3,\r\n"
               b"z@example.com,10000001,\r\n"
               b"OK@example.com,7,\r\n"
               b" ,,\r\n"
               b"max@example.com,10000000,c-9\r\n")

GOOD = ("\ufeffemail,points,customer_id,first_name,last_name\n"
        "ok@example.com,100,,,\n"
        "new@example.com,250,c-77,Nao,Tanaka\n"
        "zero@example.com,0,,,\n").encode()


def _existing_member(app: Flask) -> None:
    shop = merchant_named(app, SHOP).id
    with unit_of_work(app.extensions["loyalty"].database) as session:
        member = _member(session, shop, None, "ok@example.com")
        post_entry(session, member, kind="adjustment", source_kind="admin", source_id="e1",
                   points=20)


def test_a_dry_run_reports_every_line_error_and_changes_nothing(app: Flask) -> None:
    _existing_member(app)
    client = signed_in_client(app, SHOP)
    before = _counts(app)
    answer = _upload(client, WITH_ERRORS, "dry_run", token=csrf_token(client))
    assert answer.status_code == 200
    report = answer.get_json()
    assert report["errors"] == [
        {"line": 3, "field": "email", "reason": "bad_email"},
        {"line": 4, "field": "points", "reason": "not_whole_number"},
        {"line": 5, "field": "points", "reason": "negative"},
        {"line": 6, "field": "points", "reason": "too_large"},
        {"line": 7, "field": "email", "reason": "duplicate_email"},
    ]
    assert (report["valid_lines"], report["members_to_create"], report["total_points"],
            report["applied"]) == (2, 1, 10_000_100, False)
    assert _counts(app) == before


def test_the_dry_run_report_is_rendered_as_a_table(app: Flask) -> None:
    client = signed_in_client(app, SHOP)
    answer = _upload(client, WITH_ERRORS, "dry_run", token=csrf_token(client), as_json=False)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert html.count('class="import-error"') == 5
    assert '<td class="num">7</td><td><code>email</code></td>' \
           "<td>this email is already on an earlier line</td>" in html


def test_a_file_without_the_required_columns_is_reported(app: Flask) -> None:
    client = signed_in_client(app, SHOP)
    answer = _upload(client, b"mail,amount\na@example.com,3\n", "dry_run",
                     token=csrf_token(client))
    assert answer.get_json()["errors"] == [
        {"line": 1, "field": "email", "reason": "missing_column"},
        {"line": 1, "field": "points", "reason": "missing_column"}]


def test_apply_refuses_a_file_with_errors(app: Flask) -> None:
    client = signed_in_client(app, SHOP)
    before = _counts(app)
    answer = _upload(client, WITH_ERRORS, "apply", token=csrf_token(client))
    assert answer.status_code == 400
    assert answer.get_json()["problem"] == "has_errors"
    assert len(answer.get_json()["errors"]) == 5
    assert _counts(app) == before


def test_apply_creates_members_with_exact_balances_and_logs_it(app: Flask) -> None:
    _existing_member(app)
    client = signed_in_client(app, SHOP)
    answer = _upload(client, GOOD, "apply", token=csrf_token(client))
    assert answer.status_code == 200
    report = answer.get_json()
    assert (report["applied"], report["entries_posted"], report["members_to_create"],
            report["total_points"]) == (True, 2, 2, 350)
    assert _balances(app, SHOP) == {
        "ok@example.com": (None, 120, ""),
        "new@example.com": ("c-77", 250, "Nao Tanaka"),
        "zero@example.com": (None, 0, ""),
    }
    assert _balances(app, OTHER_SHOP) == {}
    with unit_of_work(app.extensions["loyalty"].database) as session:
        imported = session.execute(select(LedgerEntry.kind, LedgerEntry.points).where(
            LedgerEntry.source_kind == "import").order_by(LedgerEntry.id)).all()
        assert [tuple(row) for row in imported] == [("adjustment", 100), ("adjustment", 250)]
        logged = session.scalars(select(AdminActivity).where(
            AdminActivity.action == "import.balances")).all()
        assert [json.loads(entry.detail_json) for entry in logged] == [
            {"lines": 2, "points": 350}]


def test_applying_the_same_file_again_changes_nothing(app: Flask) -> None:
    client = signed_in_client(app, SHOP)
    token = csrf_token(client)
    assert _upload(client, GOOD, "apply", token=token).status_code == 200
    balances, counts = _balances(app, SHOP), _counts(app)
    again = _upload(client, GOOD, "apply", token=token)
    assert again.status_code == 200
    report = again.get_json()
    assert (report["entries_posted"], report["already_applied"],
            report["members_to_create"]) == (0, 2, 0)
    assert _balances(app, SHOP) == balances
    assert _counts(app) == counts


def test_an_import_without_the_csrf_token_is_refused(app: Flask) -> None:
    client = signed_in_client(app, SHOP)
    before = _counts(app)
    answer = _upload(client, GOOD, "apply", token=None)
    assert answer.status_code == 403
    assert _counts(app) == before


def test_a_file_over_the_limit_is_refused(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    # The package re-exports the blueprint under the module's name: patch the module itself.
    monkeypatch.setattr(importlib.import_module("plugin_server.web.admin_data"), "MAX_BYTES",
                        40)
    client = signed_in_client(app, SHOP)
    token = csrf_token(client)
    answer = _upload(client, GOOD, "dry_run", token=token)
    assert answer.status_code == 413 and answer.get_json() == {"problem": "too_big"}
    # The envelope is allowed some room; the file itself is held to the limit exactly.
    monkeypatch.setattr(importlib.import_module("plugin_server.web.admin_data"),
                        "UPLOAD_OVERHEAD", 10_000)
    answer = _upload(client, GOOD, "dry_run", token=token, as_json=False)
    assert answer.status_code == 413
    assert "The file is too large." in answer.get_data(as_text=True)


def test_a_file_with_too_many_lines_is_refused(app: Flask,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("plugin_server.admin.csv_import.MAX_LINES", 2)
    client = signed_in_client(app, SHOP)
    before = _counts(app)
    answer = _upload(client, GOOD, "apply", token=csrf_token(client))
    assert answer.status_code == 400
    assert answer.get_json()["problem"] == "too_many_lines"
    assert answer.get_json()["errors"] == [
        {"line": 4, "field": "file", "reason": "too_many_lines"}]
    assert _counts(app) == before


def test_a_missing_mode_or_file_is_refused(app: Flask) -> None:
    client = signed_in_client(app, SHOP)
    token = csrf_token(client)
    assert _upload(client, GOOD, "later", token=token).get_json() == {"problem": "bad_mode"}
    answer = client.post("/admin/import/balances", data={"mode": "apply", "csrf_token": token},
                         headers={"Accept": "application/json"})
    assert answer.status_code == 400 and answer.get_json() == {"problem": "no_file"}


# -- the section -------------------------------------------------------------------------------

def test_the_data_section_links_the_exports_and_the_upload_form(app: Flask) -> None:
    client = signed_in_client(app, SHOP)
    html = client.get("/admin/view/data").get_data(as_text=True)
    assert '<a href="/admin/export/members.csv" data-download="members.csv">' in html
    assert '<a href="/admin/export/ledger.csv" data-download="ledger.csv">' in html
    assert 'action="/admin/import/balances" enctype="multipart/form-data" data-admin' in html
    assert 'name="mode" value="dry_run"' in html and 'name="mode" value="apply"' in html
    japanese = client.get("/admin/view/data?lang=ja").get_data(as_text=True)
    assert "初期残高のインポート" in japanese


def test_both_languages_have_every_text() -> None:
    from plugin_server.admin.i18n import CATALOGS

    english = json.loads((CATALOGS / "en" / "data.json").read_text(encoding="utf-8"))
    japanese = json.loads((CATALOGS / "ja" / "data.json").read_text(encoding="utf-8"))
    assert english.keys() == japanese.keys()


def test_two_applies_of_one_file_at_once_post_it_once(any_runtime: Any,
                                                     any_merchant_id: int) -> None:
    """On SQLite and PostgreSQL: the second apply waits for the first, then finds every line
    already posted (no unique-key error, no double credit)."""
    parsed = parse_balances(b"email,points\nann@example.com,120\nbob@example.com,80\n")
    start = threading.Barrier(2, timeout=10)
    reports: list[Any] = []
    problems: list[BaseException] = []

    def apply() -> None:
        try:
            start.wait()
            with unit_of_work(any_runtime.database) as session:
                reports.append(apply_import(session, any_merchant_id, "owner", parsed))
        except BaseException as error:  # reported below, in the test thread
            problems.append(error)

    threads = [threading.Thread(target=apply) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert problems == []
    assert sorted((report.entries_posted, report.already_applied) for report in reports) == [
        (0, 2), (2, 0)]
    with unit_of_work(any_runtime.database) as session:
        balances = sorted(session.execute(select(Member.email, Member.balance).where(
            Member.merchant_id == any_merchant_id)).all())
    assert [tuple(row) for row in balances] == [("ann@example.com", 120), ("bob@example.com", 80)]
