"""Webhook acknowledgement and the storefront ``me`` endpoint over HTTP, against a bare Flask
app under the same gunicorn settings, measured in one run (DESIGN.md §6, §10).

Budgets: throughput ≥ 0.5 x the bare Flask JSON endpoint, and p99 ≤ 50 ms at 200 req/s, for
``POST /webhooks/shopify`` (verify, store, answer) and for ``GET /proxy/api/me``.

    python bench/webhook_ack.py [--quick] [--json] [--connections N]

1. Setup (untimed): a fresh, migrated SQLite file; a Shopify shop installed directly
   (``finish_install``) with the demo program (tiers, rewards); ``--members`` shoppers with
   ``--history`` paid orders each, sent as signed webhooks through the app in-process.
2. Bare baseline: ``bench/bare_app.py`` under gunicorn with the Procfile's ``web:`` settings.
   The same request bytes as the product's (path ``/json``), so only the work differs.
3. Product: ``plugin_server.wsgi:app`` under the same settings, ``JOBS_MODE=thread`` (the
   in-process production default: the processing runs on a background thread of each gunicorn
   worker, concurrently with the acknowledgements). Signed ``orders/paid`` webhooks (~5 KB,
   each with its own X-Shopify-Event-Id) and App Proxy-signed ``me`` queries.
4. Information: ``bench/ack_only_app.py`` (the same app, the processing job dropped) on a copy of
   the database: the acknowledgement alone.
5. Each target: throughput with wrk (closed loop, ``--connections`` 64; a run where one
   gunicorn worker got nearly no connections is repeated), then latency at a fixed offered
   rate (open loop, ``--rate`` 200/s, a new connection per request), measured from each
   request's scheduled send time.
6. Checks: inbox rows against the ``stored`` answers, every delivery processed (thread mode),
   no error answers.

Not part of the test suite; see bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import random
import re
import resource
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from integrations.base import Customer, LineItem, Order  # noqa: E402
from integrations.shopify.simulated_payloads import rest_order  # noqa: E402
from integrations.shopify.simulator import proxy_query, webhook_headers  # noqa: E402

MIN_RATIO = 0.5
MAX_P99_MS = 50.0
OFFERED_RATE = 200.0
# A throughput run where the least busy gunicorn worker did less than this share of an even
# split is repeated (up to --attempts runs).
EVEN_ENOUGH = 0.5
SHOP = "bench-tea.myshopify.com"
API_KEY = "bench-api-key"
API_SECRET = "bench-api-secret"
# Loopback only: an Admin API call (none is expected) would be refused here, never leave.
ADMIN_URL = "http://127.0.0.1:9"
HOST_HEADER = "127.0.0.1"
WEBHOOK_PATH = "/webhooks/shopify"
ME_PATH = "/proxy/api/me"
BARE_PATH = "/json"
FIXTURE = ROOT.parent / "shared" / "fixtures" / "shopify" / "webhooks" / "orders__paid.json"
DEFAULT_GUNICORN = ("--workers", "2", "--threads", "4", "--timeout", "30")
FIRST_NAMES = ["Aiko", "Minh", "Ravi", "Ana", "Lucas", "Sofia", "Hana", "Omar", "Lea", "Jon",
               "Mei", "Arjun", "Nare", "Chloe", "Mateo", "Yuki", "Linh", "Karim", "Eva", "Noah"]
LAST_NAMES = ["Sato", "Nguyen", "Reddy", "Silva", "Martin", "Garcia", "Kim", "Haddad", "Muller",
              "Smith", "Wang", "Sharma", "Petrosyan", "Dubois", "Lopez"]
CATALOGUE = [(8_101, "Sencha green tea", "14.00", False), (8_102, "Ceremonial matcha", "32.00",
             False), (8_103, "Stoneware cup", "18.50", False),
             (8_104, "Cast iron teapot", "64.00", False), (8_105, "Starter kit", "45.00", False),
             (8_106, "Gift card", "25.00", True)]
# Fields of the published sample that repeat other fields; dropped to keep a body near 5 KB.
DROPPED_FIELDS = ("current_shipping_price_set", "current_subtotal_price_set",
                  "current_total_discounts_set", "current_total_price_set",
                  "current_total_tax_set", "total_cash_rounding_payment_adjustment_set",
                  "total_cash_rounding_refund_adjustment_set", "total_line_items_price_set",
                  "subtotal_price_set", "total_discounts_set", "shipping_address",
                  "shipping_lines")
ME_CUSTOMER_BASE = 9_000_000
SHOPPER_BASE = 7_000_000
SETTING_NAMES = ("LOYALTY_ENV", "SECRET_KEY", "ENCRYPTION_KEY", "DATABASE_URL", "REDIS_URL",
                 "APP_URL", "SHOPIFY_API_KEY", "SHOPIFY_API_SECRET", "SHOPIFY_API_SECRET_OLD",
                 "SHOPIFY_API_VERSION", "SHOPIFY_ADMIN_URL_OVERRIDE", "JOBS_MODE",
                 "SWEEP_INTERVAL_SECONDS", "REDEMPTION_HOLD_TIMEOUT_SECONDS", "WEB_CONCURRENCY")

log = logging.getLogger("bench.webhook_ack")


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class PreparedRequest:
    """One HTTP request, ready to send: to the Flask test client, or as raw bytes."""

    method: str
    path: str  # with the query string
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""
    event_id: str = ""

    def raw(self, path: str | None = None) -> bytes:
        lines = [f"{self.method} {path or self.path} HTTP/1.1", f"Host: {HOST_HEADER}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if self.method != "GET":
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body

    def retargeted(self, path: str) -> bytes:
        """The same bytes sent to another path (the bare baseline); the query stays."""
        query = self.path.partition("?")[2]
        return self.raw(f"{path}?{query}" if query else path)


def _template() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The published ``orders/paid`` sample (order, line, customer), or empty dicts."""
    try:
        sample = json.loads(FIXTURE.read_text())
    except (OSError, ValueError):
        return {}, {}, {}
    line = dict(sample["line_items"][0]) if sample.get("line_items") else {}
    customer = dict(sample.get("customer") or {})
    order = {key: value for key, value in sample.items() if key not in DROPPED_FIELDS}
    order.update(cancel_reason=None, cancelled_at=None, closed_at=None, confirmed=True)
    return order, line, customer


_TEMPLATE = _template()


def shopper(number: int) -> Customer:
    first = FIRST_NAMES[number % len(FIRST_NAMES)]
    last = LAST_NAMES[(number * 7) % len(LAST_NAMES)]
    return Customer(customer_id=str(number), email=f"{first}.{last}.{number}@example.com".lower(),
                    first_name=first, last_name=last)


def order_body(number: int, who: Customer, rng: random.Random,
               when: datetime | None = None) -> bytes:
    """A Shopify ``orders/paid`` body: the fields the app reads come from ``rest_order`` (our
    canonical order, 1-3 lines), the rest from Shopify's published sample. Compact JSON, as
    Shopify sends it; about 5 KB."""
    when = when or datetime.now(UTC)
    lines = []
    for index in range(rng.randint(1, 3)):
        product_id, title, price, gift = rng.choice(CATALOGUE)
        lines.append(LineItem(line_id=str(number * 10 + index), quantity=rng.randint(1, 3),
                              unit_price=Decimal(price), product_id=str(product_id),
                              variant_id=str(product_id * 10 + 1), title=title,
                              is_gift_card=gift))
    subtotal = sum((line.net_amount for line in lines), Decimal(0))
    order = Order(order_id=str(5_000_000_000 + number), created_at=when, updated_at=when,
                  currency="USD", customer=who, line_items=tuple(lines), name=f"#{number}",
                  shipping=Decimal("5.00"), total=subtotal + 5, paid=True)
    document = rest_order(order)
    order_template, line_template, customer_template = _TEMPLATE
    body = {**order_template, **document}
    body["line_items"] = [{**line_template, **line, "name": line["title"],
                           "price": line["price_set"]["shop_money"]["amount"],
                           "sku": f"SKU-{line['product_id']}",
                           "admin_graphql_api_id": f"gid://shopify/LineItem/{line['id']}"}
                          for line in document["line_items"]]
    if document["customer"] is not None:
        body["customer"] = {**customer_template, **document["customer"],
                            "admin_graphql_api_id":
                                f"gid://shopify/Customer/{who.customer_id}"}
    total = str(order.total.quantize(Decimal("0.01")))
    body.update(admin_graphql_api_id=f"gid://shopify/Order/{order.order_id}",
                contact_email=who.email, number=number, order_number=1000 + number,
                token=f"{number:032x}", processed_at=when.isoformat(),
                subtotal_price=str(subtotal.quantize(Decimal("0.01"))),
                total_line_items_price=str(subtotal.quantize(Decimal("0.01"))),
                current_subtotal_price=str(subtotal.quantize(Decimal("0.01"))),
                total_price=total, current_total_price=total, total_outstanding="0.00")
    return json.dumps(body, separators=(",", ":")).encode()


def webhook_request(body: bytes, event_id: str, *, shop: str = SHOP,
                    secret: str = API_SECRET, topic: str = "orders/paid") -> PreparedRequest:
    headers = webhook_headers(body, secret, topic=topic, shop=shop, event_id=event_id)
    return PreparedRequest("POST", WEBHOOK_PATH, tuple(headers.items()), body, event_id)


def webhook_requests(count: int, prefix: str, *, shoppers: int = 1_000, seed: int = 7,
                     shop: str = SHOP, secret: str = API_SECRET) -> list[PreparedRequest]:
    """``count`` signed ``orders/paid`` deliveries with distinct event ids ``{prefix}{n}``,
    from ``shoppers`` shoppers."""
    rng = random.Random(f"{seed}:{prefix}")
    start = 1 + zlib.crc32(prefix.encode()) % 1_000 * 1_000_000  # distinct per prefix
    requests = []
    for index in range(count):
        who = shopper(SHOPPER_BASE + rng.randrange(shoppers))
        body = order_body(start + index, who, rng)
        requests.append(webhook_request(body, f"{prefix}{index:07d}", shop=shop, secret=secret))
    return requests


def me_request(customer_id: str, *, shop: str = SHOP, secret: str = API_SECRET,
               timestamp: int | None = None) -> PreparedRequest:
    """``GET /proxy/api/me`` as Shopify forwards it: the signed App Proxy query."""
    query = proxy_query(shop, customer_id, secret, timestamp=timestamp)
    headers = (("Accept", "application/json"), ("User-Agent", "bench-webhook-ack"),
               ("X-Forwarded-For", "203.0.113.7"))
    return PreparedRequest("GET", f"{ME_PATH}?{query}", headers)


def me_requests(count: int, customers: Sequence[str], *, shop: str = SHOP,
                secret: str = API_SECRET) -> list[PreparedRequest]:
    """``count`` signed ``me`` queries with fresh timestamps (Shopify's are valid for 90 s),
    rotating over ``customers``."""
    now = int(time.time())
    return [me_request(customers[index % len(customers)], shop=shop, secret=secret,
                       timestamp=now - index % 5) for index in range(count)]


def me_customers(members: int) -> list[str]:
    return [str(ME_CUSTOMER_BASE + index) for index in range(members)]


# --------------------------------------------------------------------------- database


def server_settings(database: Path, jobs_mode: str = "thread") -> dict[str, str]:
    """The product's settings, as environment variables (gunicorn) or create_app overrides."""
    return {"LOYALTY_ENV": "development", "DATABASE_URL": f"sqlite:///{database}",
            "SECRET_KEY": "bench-secret-key", "ENCRYPTION_KEY": "bench-encryption-key",
            "APP_URL": "http://127.0.0.1", "SHOPIFY_API_KEY": API_KEY,
            "SHOPIFY_API_SECRET": API_SECRET, "SHOPIFY_ADMIN_URL_OVERRIDE": ADMIN_URL,
            "JOBS_MODE": jobs_mode}


def install_shop(runtime: Any, shop: str = SHOP) -> int:
    """What a finished install leaves behind (``finish_install`` with a non-expiring token,
    no Admin API call), with the demo program: Bronze/Silver/Gold and three rewards. The sync
    checkpoint is now, so the sweep's reconciliation is not due during the run."""
    from integrations.shopify.oauth import ShopToken
    from plugin_server.db import unit_of_work
    from plugin_server.demo import seed_demo_program
    from plugin_server.models import Merchant
    from plugin_server.shopify.install import finish_install

    token = ShopToken(shop=shop, access_token="shpat_bench", scope="read_orders,read_customers,"
                      "write_discounts,write_app_proxy", expires_at=None, refresh_token=None,
                      refresh_token_expires_at=None)
    with unit_of_work(runtime.database) as session:
        installed = finish_install(session, shop, token, runtime.settings.ENCRYPTION_KEY)
        merchant = session.get(Merchant, installed.merchant_id)
        assert merchant is not None
        merchant.currency = "USD"
        merchant.sync_checkpoint = merchant.installed_at
        seed_demo_program(session, merchant)
    return installed.merchant_id


def send(client: Any, request: PreparedRequest) -> Any:
    """Send a prepared request through a Flask test client."""
    return client.open(request.path, method=request.method, headers=list(request.headers),
                       data=request.body or None)


def seed_history(app: Any, members: int, orders_each: int, seed: int = 11) -> int:
    """``orders_each`` paid orders for each of ``members`` shoppers, sent as signed webhooks
    through the app (processed right away: JOBS_MODE=eager). Returns the deliveries sent."""
    client = app.test_client()
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=90)
    sent = 0
    for index, customer_id in enumerate(me_customers(members)):
        who = shopper(int(customer_id))
        for number in range(orders_each):
            when = start + timedelta(days=number * 3, minutes=index)
            body = order_body(900_000_000 + index * 1_000 + number, who, rng, when)
            answer = send(client, webhook_request(body, f"history-{customer_id}-{number}"))
            if answer.status_code != 200 or answer.get_json()["status"] != "stored":
                raise RuntimeError(f"history webhook refused: {answer.status_code} "
                                   f"{answer.get_data(as_text=True)[:200]}")
            sent += 1
    return sent


def make_app(database: Path, jobs_mode: str = "eager") -> Any:
    from plugin_server import create_app

    app = create_app(server_settings(database, jobs_mode))
    logging.getLogger("plugin_server").setLevel(logging.WARNING)
    return app


@dataclass(frozen=True)
class Prepared:
    merchant_id: int
    history_deliveries: int
    members: int


def prepare_database(database: Path, members: int, orders_each: int) -> Prepared:
    """A fresh migrated database with the shop installed and the members' history."""
    from plugin_server.migrate import upgrade

    app = make_app(database)
    runtime = app.extensions["loyalty"]
    upgrade(runtime.database)
    merchant_id = install_shop(runtime)
    sent = seed_history(app, members, orders_each)
    runtime.database.dispose()
    return Prepared(merchant_id, sent, members)


def copy_database(source: Path, target: Path) -> None:
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def inbox_rows(database: Path, prefix: str) -> dict[str, str]:
    """{event id: state} of the inbox rows whose event id starts with ``prefix``."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        rows = connection.execute(
            "SELECT event_id, state FROM inbox_events WHERE substr(event_id, 1, ?) = ?",
            (len(prefix), prefix)).fetchall()
    finally:
        connection.close()
    return {str(event_id): str(state) for event_id, state in rows}


def wait_processed(database: Path, prefix: str, timeout: float) -> tuple[int, float]:
    """Wait until no ``prefix`` delivery is left ``received``: (backlog at the start,
    seconds it took; -1 if it did not drain within ``timeout``)."""
    started = time.perf_counter()
    backlog = first = -1
    while True:
        states = Counter(inbox_rows(database, prefix).values())
        backlog = states.get("received", 0)
        first = backlog if first < 0 else first
        if backlog == 0:
            return first, time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            return first, -1.0
        time.sleep(0.1)


# --------------------------------------------------------------------------- gunicorn


@dataclass(frozen=True)
class GunicornSettings:
    args: tuple[str, ...]
    source: str
    workers: int
    threads: int
    worker_class: str
    timeout: int
    keepalive: int
    # Not from the Procfile and not about serving: gunicorn >= 24 opens a control socket at a
    # fixed path in $HOME by default; the bench's servers do without, so they never clash
    # with another gunicorn on the machine.
    extra: tuple[str, ...] = ()

    def describe(self) -> str:
        extra = f" (+ {' '.join(self.extra)})" if self.extra else ""
        return (f"{' '.join(self.args)}{extra}  ({self.workers} workers x {self.threads} "
                f"threads, worker class {self.worker_class}, keep-alive {self.keepalive} s; "
                f"from {self.source})")


def _expand(text: str) -> str:
    """``${NAME:-default}`` -> default (the bench uses the Procfile's defaults, not the
    environment, so two runs compare)."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}", r"\1", text)


def gunicorn_settings(procfile: Path = ROOT / "Procfile", workers: int | None = None,
                      threads: int | None = None) -> GunicornSettings:
    """The options of the Procfile's ``web: gunicorn ...`` line, minus ``--bind`` and the app."""
    args: list[str] = []
    source = "built-in default (no gunicorn web: line in the Procfile)"
    try:
        lines = procfile.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        name, _, command = line.partition(":")
        tokens = shlex.split(_expand(command))
        if name.strip() == "web" and tokens and tokens[0].endswith("gunicorn"):
            tokens = tokens[1:]
            if tokens and not tokens[-1].startswith("-"):
                tokens = tokens[:-1]  # the app
            skip = False
            for token in tokens:
                if skip:
                    skip = False
                elif token in ("--bind", "-b"):
                    skip = True
                elif not token.startswith(("--bind=", "-b=")):
                    args.append(token)
            source = f"{procfile.name} web: line"
            break
    if not args:
        args = list(DEFAULT_GUNICORN)
    overrides = {"--workers": workers, "--threads": threads}
    for option, value in overrides.items():
        if value is None:
            continue
        aliases = {option, "-w"} if option == "--workers" else {option}
        if any(token in aliases for token in args):
            index = next(i for i, token in enumerate(args) if token in aliases)
            args[index + 1] = str(value)
        else:
            args += [option, str(value)]
        source += f", {option} {value} from the command line"
    from gunicorn.config import Config

    config = Config()
    parsed = config.parser().parse_args([*args, "bench.bare_app:app"])
    for key, value in vars(parsed).items():
        if value is not None and key in config.settings:
            config.set(key, value)
    extra = ("--no-control-socket",) if "control_socket_disable" in config.settings else ()
    return GunicornSettings(tuple(args), source, int(config.workers), int(config.threads),
                            str(config.worker_class_str), int(config.timeout),
                            int(config.keepalive), extra)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_env(extra: dict[str, str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in SETTING_NAMES}
    env.update(extra)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


@dataclass
class Server:
    label: str
    app: str
    settings: GunicornSettings
    env: dict[str, str]
    log_path: Path
    ready_path: str
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def command(self) -> list[str]:
        return [sys.executable, "-m", "gunicorn", *self.settings.args, *self.settings.extra,
                "--bind", f"127.0.0.1:{self.port}", self.app]

    def start(self, timeout: float = 60.0) -> None:
        self.port = free_port()
        with self.log_path.open("ab") as output:
            self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=output,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port}{self.ready_path}"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label}: gunicorn exited ({self.process.returncode})"
                                   f"\n{self.log_tail()}")
            booted = self.log_path.read_text(errors="replace").count("Booting worker")
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    ok = answer.status == 200
            except OSError:
                ok = False
            if ok and booted >= self.settings.workers:
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.label}: not ready after {timeout} s\n{self.log_tail()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the group this bench started
            process.wait(timeout=10)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def serving(server: Server) -> Iterator[Server]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- pools


def write_pool(base: Path, raws: Sequence[bytes], parts: int = 1) -> Path:
    """Requests for the load generators: ``base.{i}`` holds part i's raw requests back to
    back and ``base.{i}.idx`` their lengths, one a line (wrk thread i sends part i, so two
    threads never send the same event id)."""
    for part in range(parts):
        chunk = raws[part::parts]
        with open(f"{base}.{part}", "wb") as data, open(f"{base}.{part}.idx", "w") as index:
            for raw in chunk:
                data.write(raw)
                index.write(f"{len(raw)}\n")
    return base


def read_pool(base: Path, part: int = 0) -> list[bytes]:
    lengths = [int(line) for line in Path(f"{base}.{part}.idx").read_text().split()]
    raws = []
    with open(f"{base}.{part}", "rb") as data:
        for length in lengths:
            raws.append(data.read(length))
    return raws


# --------------------------------------------------------------------------- wrk (throughput)

WRK_SCRIPT = r"""-- bench/webhook_ack.py: rotate through pre-signed requests, count the answers
local pool = %(pool)s
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

requests_pool = {}
n, i, sent, wraps = 0, 0, 0, 0
ok, stored, duplicate, other = 0, 0, 0, 0

function init(args)
  local offset = tonumber(args[1] or "0") or 0
  local data = assert(io.open(pool .. "." .. tid, "rb"))
  local index = assert(io.open(pool .. "." .. tid .. ".idx", "r"))
  for line in index:lines() do
    n = n + 1
    requests_pool[n] = data:read(tonumber(line))
  end
  data:close()
  index:close()
  -- a repeated run goes on where the previous one stopped: no event id is sent twice
  i = offset %% n
  wraps = math.floor(offset / n)
end

function request()
  i = i + 1
  if i > n then
    i = 1
    wraps = wraps + 1
  end
  sent = sent + 1
  return requests_pool[i]
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
    if body:find('"stored"', 1, true) then
      stored = stored + 1
    elseif body:find('"duplicate"', 1, true) then
      duplicate = duplicate + 1
    end
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local parts = {}
  for _, thread in ipairs(threads) do
    parts[#parts + 1] = string.format(
      '{"sent":%%.0f,"ok":%%.0f,"stored":%%.0f,"duplicate":%%.0f,"other":%%.0f,"wraps":%%.0f}',
      thread:get("sent"), thread:get("ok"), thread:get("stored"), thread:get("duplicate"),
      thread:get("other"), thread:get("wraps"))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%%.0f,"duration_us":%%.0f,"errors":{"connect":%%.0f,"read":%%.0f,' ..
    '"write":%%.0f,"status":%%.0f,"timeout":%%.0f},"p50_us":%%.0f,"p99_us":%%.0f,' ..
    '"threads":[%%s]}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), table.concat(parts, ",")))
end
"""


@dataclass
class Throughput:
    requests: int
    seconds: float
    rps: float
    sent: int
    ok: int
    stored: int
    duplicate: int
    other_status: int
    errors: dict[str, int]
    wraps: int
    closed_loop_p50_ms: float
    closed_loop_p99_ms: float
    generator_cpu_s: float
    server_cpu_s: float
    machine_cpu_busy: float
    others_cpu_share: float
    worker_cpu_s: tuple[float, ...]
    next_offset: int  # where a repeated run on the same pool starts
    attempt: int = 1

    @property
    def unanswered(self) -> int:
        """Requests written whose answer wrk never read (in flight when it stopped)."""
        return max(self.sent - self.ok - self.other_status, 0)


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat (zeros elsewhere)."""
    try:
        # user nice system idle iowait irq softirq steal (guest time is already in user)
        fields = [float(value) for value in Path("/proc/stat").read_text().split("\n")[0]
                  .split()[1:9]]
    except OSError:
        return 0.0, 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    return sum(fields) - idle, sum(fields)


def busy_share(before: tuple[float, float], after: tuple[float, float]) -> float:
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total > 0 else 0.0


def machine_busy(seconds: float = 1.0) -> float:
    """The share of the machine's CPU time that was busy over ``seconds``."""
    before = cpu_times()
    time.sleep(seconds)
    return busy_share(before, cpu_times())


def wait_for_idle(limit: float, threshold: float = 0.15) -> tuple[float, float]:
    """Wait up to ``limit`` s for the machine to be idle: (busy share, seconds waited)."""
    started = time.perf_counter()
    busy = machine_busy(1.0 if limit > 0 else 0.2)
    while busy > threshold and time.perf_counter() - started < limit:
        busy = machine_busy(2.0)
    return busy, time.perf_counter() - started


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def tree_cpu(pid: int | None) -> dict[int, float]:
    """CPU seconds of a process and of each of its children (gunicorn's master and workers),
    from /proc: {pid: seconds}."""
    if pid is None:
        return {}
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:
            found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    return found


@dataclass(frozen=True)
class CpuUse:
    generator_s: float  # the load generator (wrk, or the open-loop process)
    server_s: float  # gunicorn, master and workers
    machine_busy: float  # share of all the machine's CPU time that was busy
    others: float  # share of it used by processes that are not part of this bench
    workers_s: tuple[float, ...]  # each gunicorn worker, least busy first


class CpuMeter:
    """Who used the CPU while one load run went on."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid
        self.started = time.monotonic()
        self.machine = cpu_times()
        self.children = children_cpu()
        self.server = tree_cpu(server_pid)
        self.own = time.process_time()

    def stop(self) -> CpuUse:
        elapsed = time.monotonic() - self.started
        machine = cpu_times()
        generator = children_cpu() - self.children
        now = tree_cpu(self.server_pid)
        per_process = {pid: seconds - self.server.get(pid, 0.0) for pid, seconds in now.items()}
        server = sum(per_process.values())
        workers = tuple(sorted(seconds for pid, seconds in per_process.items()
                               if pid != self.server_pid))
        own = time.process_time() - self.own
        busy_seconds = (machine[0] - self.machine[0]) / os.sysconf("SC_CLK_TCK")
        capacity = elapsed * (os.cpu_count() or 1)
        others = max(busy_seconds - generator - server - own, 0.0) / capacity if capacity else 0
        return CpuUse(generator, server, busy_share(self.machine, machine), others, workers)


def run_wrk(url: str, pool: Path, *, connections: int, threads: int, seconds: int,
            workdir: Path, server_pid: int | None = None, offset: int = 0) -> Throughput:
    script = workdir / f"{pool.name}.lua"
    script.write_text(WRK_SCRIPT % {"pool": json.dumps(str(pool))})
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
               "--latency", "-s", str(script), url, "--", str(offset)]
    meter = CpuMeter(server_pid)
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120,
                          check=False)
    cpu = meter.stop()
    line = next((line for line in done.stdout.splitlines() if line.startswith("BENCH_JSON ")),
                None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {' '.join(command)}\n"
                           f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    per_thread = data["threads"]
    seconds_run = data["duration_us"] / 1e6
    total = {key: int(sum(part[key] for part in per_thread))
             for key in ("sent", "ok", "stored", "duplicate", "other", "wraps")}
    most_sent = int(max((part["sent"] for part in per_thread), default=0))
    return Throughput(
        requests=int(data["requests"]), seconds=seconds_run,
        rps=data["requests"] / seconds_run, sent=total["sent"], ok=total["ok"],
        stored=total["stored"], duplicate=total["duplicate"], other_status=total["other"],
        errors={key: int(value) for key, value in data["errors"].items()},
        wraps=total["wraps"], closed_loop_p50_ms=data["p50_us"] / 1000,
        closed_loop_p99_ms=data["p99_us"] / 1000, generator_cpu_s=cpu.generator_s,
        server_cpu_s=cpu.server_s, machine_cpu_busy=cpu.machine_busy,
        others_cpu_share=cpu.others, worker_cpu_s=cpu.workers_s,
        next_offset=offset + most_sent)


# --------------------------------------------------------------------------- open loop (latency)


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 now: float) -> None:
        self.reader, self.writer, self.last_used, self.reused = reader, writer, now, False

    def close(self) -> None:
        self.writer.close()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, keep-alive) of one HTTP/1.x response."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    version, status = lines[0].split(" ", 2)[:2]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    keep = (version == "HTTP/1.1" and headers.get("connection", "").lower() != "close") or (
        headers.get("connection", "").lower() == "keep-alive")
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            chunks.append(chunk[:-2])
        body = b"".join(chunks)
    else:
        body, keep = await reader.read(), False
    return int(status), body, keep


async def open_loop(host: str, port: int, requests: Sequence[bytes], rate: float,
                    seconds: float, *, max_connections: int = 256,
                    idle_limit: float = 1.0, reuse: bool = True) -> dict[str, Any]:
    """Send ``rate`` x ``seconds`` requests on a fixed schedule (request i at start + i/rate),
    whatever the answers do: an open loop. A request's latency runs from its scheduled time
    to the end of its answer, so a queue (in the server, or for a connection here) counts.

    ``reuse=False`` (the bench's default): a new connection per request, sent with
    ``Connection: close``, so the kernel hands each request to whichever gunicorn worker
    accepts first, as requests arriving from many clients or through a load balancer would be
    spread. ``reuse=True``: keep-alive connections reused last-in first-out (one idle for
    ``idle_limit`` s is closed, gunicorn drops idle ones after its keep-alive; one the server
    closed while idle is retried once on a new connection). Then the few connections in use
    can all belong to one worker (gthread keeps a connection on the worker that accepted
    it)."""
    loop = asyncio.get_running_loop()
    count = max(1, round(rate * seconds))
    idle: list[_Connection] = []
    slots = asyncio.Semaphore(max_connections)
    results: list[tuple[int, str, float]] = [(0, "", 0.0)] * count
    counters: Counter[str] = Counter()

    async def checkout() -> _Connection:
        while idle:
            connection = idle.pop()
            if loop.time() - connection.last_used < idle_limit:
                connection.reused = True
                return connection
            connection.close()
        reader, writer = await asyncio.open_connection(host, port)
        counters["connections"] += 1
        return _Connection(reader, writer, loop.time())

    async def one(index: int, scheduled: float) -> None:
        raw = requests[index % len(requests)]
        if not reuse:
            raw = raw.replace(b"\r\n", b"\r\nConnection: close\r\n", 1)
        async with slots:
            for attempt in (1, 2):
                connection = await checkout()
                try:
                    connection.writer.write(raw)
                    await connection.writer.drain()
                    status, body, keep = await _read_response(connection.reader)
                except (OSError, asyncio.IncompleteReadError) as error:
                    connection.close()
                    if connection.reused and attempt == 1:
                        counters["retried"] += 1
                        continue
                    counters[f"error {type(error).__name__}"] += 1
                    results[index] = (0, "error", loop.time() - scheduled)
                    return
                finished = loop.time()
                kind = ("stored" if b'"stored"' in body else
                        "duplicate" if b'"duplicate"' in body else "")
                results[index] = (status, kind, finished - scheduled)
                if keep and reuse:
                    connection.last_used = finished
                    idle.append(connection)
                else:
                    connection.close()
                return

    tasks = []
    start = loop.time() + 0.05
    lag = 0.0
    for index in range(count):
        scheduled = start + index / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        lag = max(lag, loop.time() - scheduled)
        tasks.append(asyncio.create_task(one(index, scheduled)))
    sending = loop.time() - start
    await asyncio.gather(*tasks)
    for connection in idle:
        connection.close()
    return {"results": results, "max_send_lag_s": lag, "send_seconds": sending,
            "counters": dict(counters)}


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (``share`` in 0-100) of unsorted values; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(share / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Latency:
    offered_rate: float
    seconds: float
    requests: int
    achieved_send_rate: float
    ok: int
    stored: int
    duplicate: int
    not_ok: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    max_send_lag_ms: float
    connections_opened: int
    retried: int
    errors: dict[str, int]
    generator_cpu_s: float
    server_cpu_s: float
    machine_cpu_busy: float
    others_cpu_share: float
    worker_cpu_s: tuple[float, ...]
    new_connections: bool
    stored_ids: list[str] = field(default_factory=list, repr=False)


def run_open_loop(port: int, pool: Path, *, rate: float, seconds: float,
                  event_ids: Sequence[str] = (), server_pid: int | None = None,
                  reuse: bool = True) -> Latency:
    """The open-loop generator in a separate process (``--open-loop-worker``)."""
    spec = {"port": port, "pool": str(pool), "rate": rate, "seconds": seconds, "reuse": reuse}
    meter = CpuMeter(server_pid)
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--open-loop-worker",
                           json.dumps(spec)], capture_output=True, text=True,
                          timeout=seconds + 180, check=False, cwd=ROOT)
    cpu = meter.stop()
    if done.returncode != 0:
        raise RuntimeError(f"open-loop generator failed:\n{done.stderr[-3000:]}")
    data = json.loads(done.stdout)
    results = data["results"]
    latencies = [1000 * seconds_ for status, _kind, seconds_ in results if status]
    counters = data["counters"]
    stored_ids = [event_ids[index % len(event_ids)] for index, (status, kind, _) in
                  enumerate(results) if status == 200 and kind == "stored"] if event_ids else []
    return Latency(
        offered_rate=rate, seconds=seconds, requests=len(results),
        achieved_send_rate=((len(results) - 1) / data["send_seconds"]
                            if len(results) > 1 and data["send_seconds"] > 0 else rate),
        ok=sum(1 for status, _, _ in results if status == 200),
        stored=sum(1 for status, kind, _ in results if status == 200 and kind == "stored"),
        duplicate=sum(1 for status, kind, _ in results if status == 200 and kind == "duplicate"),
        not_ok=sum(1 for status, _, _ in results if status != 200),
        p50_ms=percentile(latencies, 50), p90_ms=percentile(latencies, 90),
        p99_ms=percentile(latencies, 99), max_ms=max(latencies, default=0.0),
        mean_ms=sum(latencies) / len(latencies) if latencies else 0.0,
        max_send_lag_ms=1000 * data["max_send_lag_s"],
        connections_opened=int(counters.get("connections", 0)),
        retried=int(counters.get("retried", 0)),
        errors={key: int(value) for key, value in counters.items() if key.startswith("error")},
        generator_cpu_s=cpu.generator_s, server_cpu_s=cpu.server_s,
        machine_cpu_busy=cpu.machine_busy, others_cpu_share=cpu.others,
        worker_cpu_s=cpu.workers_s, new_connections=not reuse, stored_ids=stored_ids)


def open_loop_worker(spec_text: str) -> int:
    spec = json.loads(spec_text)
    requests = read_pool(Path(spec["pool"]))
    report = asyncio.run(open_loop("127.0.0.1", int(spec["port"]), requests,
                                   float(spec["rate"]), float(spec["seconds"]),
                                   reuse=bool(spec.get("reuse", True))))
    json.dump(report, sys.stdout)
    return 0


# --------------------------------------------------------------------------- phases


@dataclass
class Plan:
    connections: int
    wrk_threads: int
    seconds: int
    warmup: int
    latency_seconds: float
    rate: float
    drain_timeout: float
    latency_keep_alive: bool = False
    attempts: int = 3
    idle_wait: float = 0.0  # before each measurement, wait up to this long for an idle machine


@dataclass
class Measured:
    throughput: Throughput  # the run reported (the last one, or the most even one)
    latency: Latency
    attempts: list[Throughput] = field(default_factory=list)  # every throughput run


def measure(server: Server, plan: Plan, workdir: Path, name: str, *,
            throughput_pool: Path, latency_pool: Path, warm_pool: Path | None = None,
            latency_ids: Sequence[str] = (), between: Any = None) -> Measured:
    """Warm up, then wrk for throughput, then the open loop for latency."""
    pid = server.process.pid if server.process else None
    wait_for_idle(plan.idle_wait)
    if warm_pool is not None and plan.warmup > 0:
        run_wrk(server.url + "/", warm_pool, connections=plan.connections,
                threads=plan.wrk_threads, seconds=plan.warmup, workdir=workdir, server_pid=pid)
        if between:
            between("warm")
    attempts: list[Throughput] = []
    offset = 0
    while True:
        run = run_wrk(server.url + "/", throughput_pool, connections=plan.connections,
                      threads=plan.wrk_threads, seconds=plan.seconds, workdir=workdir,
                      server_pid=pid, offset=offset)
        run.attempt = len(attempts) + 1
        attempts.append(run)
        offset = run.next_offset
        if between:
            between("throughput")
        # wrk opens all its connections at once, and a gthread worker keeps the connections
        # it accepted: now and then one worker gets (nearly) all of them and the other idles.
        # That measures gunicorn's accept lottery, not the endpoint: such a run is repeated.
        if _worker_share(run.worker_cpu_s) >= EVEN_ENOUGH or len(attempts) >= plan.attempts:
            break
        wait_for_idle(plan.idle_wait)
        log.warning("%s: one gunicorn worker did %.0f %% of an even share; again", name,
                    100 * _worker_share(run.worker_cpu_s))
    throughput = max(attempts, key=lambda run: (_worker_share(run.worker_cpu_s)
                                                >= EVEN_ENOUGH, run.attempt))
    log.info("%s: %.0f req/s", name, throughput.rps)
    wait_for_idle(plan.idle_wait)
    latency = run_open_loop(server.port, latency_pool, rate=plan.rate,
                            seconds=plan.latency_seconds, event_ids=latency_ids, server_pid=pid,
                            reuse=plan.latency_keep_alive)
    if between:
        between("latency")
    return Measured(throughput, latency, attempts)


@dataclass
class WrkCheck:
    phase: str
    stored_answers: int
    duplicate_answers: int
    rows: int
    unanswered: int
    wraps: int
    other_status: int

    @property
    def ok(self) -> bool:
        return (self.rows >= self.stored_answers
                and self.rows - self.stored_answers <= self.unanswered
                and self.duplicate_answers == 0 and self.wraps == 0 and self.other_status == 0)


@dataclass
class ExactCheck:
    phase: str
    stored_answers: int
    distinct_ids_answered: int
    rows: int
    missing: int
    unexpected: int
    not_ok: int

    @property
    def ok(self) -> bool:
        return (self.stored_answers == self.distinct_ids_answered == self.rows
                and not self.missing and not self.unexpected and not self.not_ok)


def check_wrk(database: Path, phase: str, prefix: str, runs: Sequence[Throughput]) -> WrkCheck:
    """Every throughput run on the pool ``prefix`` (a repeated run sent fresh event ids)."""
    return WrkCheck(phase, sum(run.stored for run in runs),
                    sum(run.duplicate for run in runs), len(inbox_rows(database, prefix)),
                    sum(run.unanswered for run in runs), sum(run.wraps for run in runs),
                    sum(run.other_status + sum(run.errors.values()) for run in runs))


def check_exact(database: Path, phase: str, prefix: str, run: Latency) -> ExactCheck:
    rows = set(inbox_rows(database, prefix))
    answered = set(run.stored_ids)
    return ExactCheck(phase, run.stored, len(answered), len(rows), len(answered - rows),
                      len(rows - answered), run.not_ok)


def pool_size(rate: float, seconds: float, margin: float = 1.3, extra: int = 1_000) -> int:
    return int(rate * seconds * margin) + extra


def product_pools(workdir: Path, prefix: str, plan: Plan, bare_rps: float,
                  max_pool: int) -> dict[str, Any]:
    """Signed webhooks with fresh event ids for warm-up, throughput and latency: enough that
    wrk never sends one twice (the product cannot outrun the bare app: sized from its rate)."""
    sizes = {"warm": min(pool_size(bare_rps, plan.warmup), max_pool),
             "tp": min(pool_size(bare_rps, plan.seconds), max_pool),
             "lat": pool_size(plan.rate, plan.latency_seconds, 1.0, 10)}
    pools: dict[str, Any] = {"sizes": sizes}
    for phase, size in sizes.items():
        requests = webhook_requests(size, f"{prefix}{phase}-")
        parts = 1 if phase == "lat" else plan.wrk_threads
        pools[phase] = write_pool(workdir / f"{prefix}{phase}", [r.raw() for r in requests],
                                  parts)
        pools[f"{phase}_ids"] = [request.event_id for request in requests]
        pools[f"{phase}_bytes"] = sum(len(request.body) for request in requests) / size
    return pools


def me_pool(workdir: Path, name: str, customers: Sequence[str], count: int,
            parts: int, bare: bool = False) -> Path:
    requests = me_requests(count, customers)
    raws = [request.retargeted(BARE_PATH) if bare else request.raw() for request in requests]
    return write_pool(workdir / name, raws, parts)


# --------------------------------------------------------------------------- report


def _row(label: str, bare: Measured, product: Measured, judged: bool) -> dict[str, Any]:
    ratio = product.throughput.rps / bare.throughput.rps if bare.throughput.rps else 0.0
    row = {
        "label": label,
        "bare_rps": round(bare.throughput.rps, 1),
        "product_rps": round(product.throughput.rps, 1),
        "ratio": round(ratio, 4),
        "bare_p50_ms": round(bare.latency.p50_ms, 2),
        "bare_p99_ms": round(bare.latency.p99_ms, 2),
        "p50_ms": round(product.latency.p50_ms, 2),
        "p90_ms": round(product.latency.p90_ms, 2),
        "p99_ms": round(product.latency.p99_ms, 2),
        "max_ms": round(product.latency.max_ms, 2),
        "judged": judged,
        "pass_ratio": ratio >= MIN_RATIO,
        "pass_p99": product.latency.p99_ms <= MAX_P99_MS,
        "bare_attempts": len(bare.attempts),
        "product_attempts": len(product.attempts),
        "bare": {"throughput": asdict(bare.throughput),
                 "latency": _latency_dict(bare.latency)},
        "product": {"throughput": asdict(product.throughput),
                    "latency": _latency_dict(product.latency)},
    }
    row["pass"] = row["pass_ratio"] and row["pass_p99"]
    return row


def _worker_share(workers: Sequence[float]) -> float:
    """The least busy gunicorn worker's share of the workers' CPU time, relative to an even
    split (1.0: even; 0: one worker did nothing)."""
    total = sum(workers)
    if len(workers) < 2 or total <= 0:
        return 1.0
    return min(workers) * len(workers) / total


def _latency_dict(latency: Latency) -> dict[str, Any]:
    data = asdict(latency)
    data.pop("stored_ids")
    return {key: round(value, 3) if isinstance(value, float) else value
            for key, value in data.items()}


def _table(rows: Sequence[dict[str, Any]]) -> str:
    header = (f"  {'':<34} {'bare req/s':>10} {'product req/s':>13} {'ratio':>6} "
              f"{'≥0.5':>5}  {'p50 ms':>7} {'p99 ms':>7} {'≤50':>5}  {'bare p50/p99 ms':>15}")
    lines = [header]
    verdict = {True: "PASS", False: "FAIL"}
    for row in rows:
        mark = (lambda ok: verdict[ok]) if row["judged"] else (lambda ok: "info")
        lines.append(
            f"  {row['label']:<34} {row['bare_rps']:>10,.0f} {row['product_rps']:>13,.0f} "
            f"{row['ratio']:>6.2f} {mark(row['pass_ratio']):>5}  {row['p50_ms']:>7.2f} "
            f"{row['p99_ms']:>7.2f} {mark(row['pass_p99']):>5}  "
            f"{row['bare_p50_ms']:>7.2f}/{row['bare_p99_ms']:<7.2f}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Webhook acknowledgement and storefront `me`: throughput and latency "
                    "against a bare Flask app under the same gunicorn settings (DESIGN.md §10).")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 2 s throughput, 3 s latency, less history")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--json-out", metavar="FILE",
                        help="also write the JSON document to FILE (for bench/chart_ack.py), "
                             "whatever is printed")
    parser.add_argument("--connections", type=int, default=64,
                        help="concurrent connections for the throughput runs (64)")
    parser.add_argument("--attempts", type=int, default=3,
                        help="throughput runs at most per target when a gunicorn worker got "
                             "(nearly) no connections (3)")
    parser.add_argument("--latency-keep-alive", action="store_true",
                        help="latency runs reuse keep-alive connections instead of opening "
                             "one per request")
    parser.add_argument("--wrk-threads", type=int, default=1,
                        help="wrk threads (1: leaves the cores to the server)")
    parser.add_argument("--duration", type=int, default=None,
                        help="seconds per throughput run (10; --quick 2)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="seconds of warm-up before each throughput run (2; --quick 1)")
    parser.add_argument("--latency-duration", type=float, default=None,
                        help="seconds of the fixed-rate latency runs (10; --quick 3)")
    parser.add_argument("--rate", type=float, default=OFFERED_RATE,
                        help="offered rate of the latency runs, req/s (200)")
    parser.add_argument("--members", type=int, default=None,
                        help="shoppers with history for `me` (20; --quick 5)")
    parser.add_argument("--history", type=int, default=None,
                        help="paid orders per such shopper (25; --quick 5)")
    parser.add_argument("--workers", type=int, default=None,
                        help="override the Procfile's gunicorn --workers")
    parser.add_argument("--threads", type=int, default=None,
                        help="override the Procfile's gunicorn --threads")
    parser.add_argument("--max-pool", type=int, default=150_000,
                        help="at most this many pre-signed webhooks per wrk run (150000)")
    parser.add_argument("--skip-ack-only", action="store_true",
                        help="skip the information row with the processing left out")
    parser.add_argument("--wait-idle", type=float, default=60.0,
                        help="wait up to this many seconds for the machine to be idle (CPU "
                             "busy under 15 %%) before starting, and up to 30 s of it before "
                             "each measurement (60; 0: do not wait)")
    parser.add_argument("--keep-dir", metavar="DIR",
                        help="work in DIR and keep it (databases, server logs, pools, wrk "
                             "scripts) instead of a temporary directory")
    parser.add_argument("--open-loop-worker", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = args.quick
    args.duration = args.duration or (2 if quick else 10)
    args.warmup = args.warmup if args.warmup is not None else (1 if quick else 2)
    args.latency_duration = args.latency_duration or (3.0 if quick else 10.0)
    args.members = args.members or (5 if quick else 20)
    args.history = args.history or (5 if quick else 25)
    if args.connections < 1 or args.wrk_threads < 1 or args.rate <= 0:
        parser.error("--connections, --wrk-threads and --rate must be positive")
    return args


def wrk_version() -> str:
    try:
        done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    except OSError:
        return ""
    return (done.stdout or done.stderr).splitlines()[0].split(" [")[0] if (
        done.stdout or done.stderr) else "wrk"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.open_loop_worker:
        return open_loop_worker(args.open_loop_worker)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install -y wrk)", file=sys.stderr)
        return 2
    say = (lambda *_: None) if args.json else (
        lambda text: print(text, file=sys.stderr, flush=True))
    idle_busy, idle_waited = wait_for_idle(args.wait_idle)
    if idle_busy > 0.15:
        say(f"warning: the machine is {100 * idle_busy:.0f} % busy before the run; "
            f"the figures will be low")
    wall = time.perf_counter()
    settings = gunicorn_settings(workers=args.workers, threads=args.threads)
    plan = Plan(args.connections, args.wrk_threads, args.duration, args.warmup,
                args.latency_duration, args.rate, drain_timeout=300.0,
                latency_keep_alive=args.latency_keep_alive, attempts=max(args.attempts, 1),
                idle_wait=min(args.wait_idle, 30.0))

    with tempfile.TemporaryDirectory(prefix="loyalty-ack-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if args.keep_dir:
            tmp = Path(args.keep_dir)
            tmp.mkdir(parents=True, exist_ok=True)
            for stale in ("product.sqlite3", "ack-only.sqlite3"):
                for suffix in ("", "-wal", "-shm"):
                    (tmp / f"{stale}{suffix}").unlink(missing_ok=True)
        database, ack_only_db = tmp / "product.sqlite3", tmp / "ack-only.sqlite3"
        say(f"setup: database, shop, {args.members} members x {args.history} orders ...")
        prepared = prepare_database(database, args.members, args.history)
        copy_database(database, ack_only_db)
        customers = me_customers(args.members)
        setup_seconds = time.perf_counter() - wall
        bare_post = webhook_requests(5_000, "bare-")
        bare_post_pool = write_pool(tmp / "bare-post", [r.retargeted(BARE_PATH)
                                                        for r in bare_post], plan.wrk_threads)
        bare_post_lat = write_pool(tmp / "bare-post-lat", [r.retargeted(BARE_PATH)
                                                           for r in bare_post], 1)
        body_bytes = sum(len(r.body) for r in bare_post) / len(bare_post)
        me_count = pool_size(plan.rate, plan.latency_seconds, 1.0, 10)

        # 1. The bare baseline.
        bare = Server("bare", "bench.bare_app:app", settings, server_env({}),
                      tmp / "bare.log", BARE_PATH)
        with serving(bare):
            say(f"bare Flask on :{bare.port}: POST /json ...")
            bare_webhook = measure(bare, plan, tmp, "bare POST", throughput_pool=bare_post_pool,
                                   latency_pool=bare_post_lat, warm_pool=bare_post_pool)
            say("bare Flask: GET /json ...")
            warm = me_pool(tmp, "bare-get-warm", customers, 2_000, plan.wrk_threads, bare=True)
            tp = me_pool(tmp, "bare-get-tp", customers, 5_000, plan.wrk_threads, bare=True)
            bare_me = measure(bare, plan, tmp, "bare GET", throughput_pool=tp,
                              latency_pool=me_pool(tmp, "bare-get-lat", customers, me_count, 1,
                                                   bare=True), warm_pool=warm)

        # 2. The product, processing on each worker's job thread (the in-process default).
        say("signing webhooks ...")
        pools = product_pools(tmp, "bench-", plan, bare_webhook.throughput.rps, args.max_pool)
        drains: dict[str, dict[str, float]] = {}

        def drained(phase: str) -> None:
            """Let the job threads finish before the next measurement; note how long it took."""
            prefix = {"warm": "bench-warm-", "throughput": "bench-tp-", "latency": "bench-lat-"}
            backlog, seconds = wait_processed(database, prefix[phase], plan.drain_timeout)
            drains[phase] = {"backlog_when_load_stopped": backlog,
                             "seconds_to_drain": round(seconds, 2)}

        product = Server("product", "plugin_server.wsgi:app", settings,
                         server_env(server_settings(database, "thread")), tmp / "product.log",
                         "/healthz")
        with serving(product):
            say(f"product on :{product.port} (JOBS_MODE=thread): POST {WEBHOOK_PATH} ...")
            webhook = measure(product, plan, tmp, "webhook", throughput_pool=pools["tp"],
                              latency_pool=pools["lat"], warm_pool=pools["warm"],
                              latency_ids=pools["lat_ids"], between=drained)
            say(f"product: GET {ME_PATH} ...")
            warm = me_pool(tmp, "me-warm", customers, 2_000, plan.wrk_threads)
            tp = me_pool(tmp, "me-tp", customers, 5_000, plan.wrk_threads)
            me = measure(product, plan, tmp, "me", throughput_pool=tp,
                         latency_pool=me_pool(tmp, "me-lat", customers, me_count, 1),
                         warm_pool=warm)
        product_log = product.log_tail(200)

        # 3. Information: the acknowledgement alone (the processing job dropped).
        ack_only: Measured | None = None
        if not args.skip_ack_only:
            alone = Server("ack-only", "bench.ack_only_app:app", settings,
                           server_env(server_settings(ack_only_db, "thread")),
                           tmp / "ack-only.log", "/healthz")
            with serving(alone):
                say(f"product, processing left out, on :{alone.port}: POST {WEBHOOK_PATH} ...")
                ack_only = measure(alone, plan, tmp, "ack only", throughput_pool=pools["tp"],
                                   latency_pool=pools["lat"], warm_pool=pools["warm"],
                                   latency_ids=pools["lat_ids"])

        # 4. Checks against the SQLite files.
        checks: list[Any] = [
            check_wrk(database, "webhook throughput (thread)", "bench-tp-", webhook.attempts),
            check_exact(database, "webhook latency (thread)", "bench-lat-", webhook.latency),
        ]
        states = Counter(inbox_rows(database, "bench-").values())
        if ack_only is not None:
            checks += [
                check_wrk(ack_only_db, "webhook throughput (ack only)", "bench-tp-",
                          ack_only.attempts),
                check_exact(ack_only_db, "webhook latency (ack only)", "bench-lat-",
                            ack_only.latency),
            ]
        ack_only_states = Counter(inbox_rows(ack_only_db, "bench-").values())
        me_errors = (sum(run.other_status + sum(run.errors.values()) for run in me.attempts)
                     + me.latency.not_ok)
        processed_ok = set(states) <= {"processed"}
        checks_ok = all(check.ok for check in checks) and processed_ok and me_errors == 0

    rows = [_row("webhook ack (JOBS_MODE=thread)", bare_webhook, webhook, True)]
    if ack_only is not None:
        rows.append(_row("webhook ack alone (no processing)", bare_webhook, ack_only, False))
    rows.append(_row("storefront GET /proxy/api/me", bare_me, me, True))
    budgets_ok = all(row["pass"] for row in rows if row["judged"])
    report: dict[str, Any] = {
        "gunicorn": {"args": list(settings.args), "source": settings.source,
                     "workers": settings.workers, "threads": settings.threads,
                     "worker_class": settings.worker_class, "timeout": settings.timeout,
                     "keepalive": settings.keepalive,
                     "bare_command": " ".join(shlex.quote(p) for p in bare.command[2:]),
                     "product_command": " ".join(shlex.quote(p) for p in product.command[2:])},
        "cpus": os.cpu_count(),
        "machine_busy_before_run": round(idle_busy, 3),
        "waited_for_idle_seconds": round(idle_waited, 1),
        "throughput_generator": f"{wrk_version()}, {plan.wrk_threads} thread(s), "
                                f"{plan.connections} connections, closed loop",
        "latency_generator": "asyncio raw-socket open loop, separate process, "
                             + ("keep-alive connections" if plan.latency_keep_alive
                                else "a new connection per request"),
        "jobs_mode": "thread",
        "connections": plan.connections,
        "throughput_seconds": plan.seconds,
        "warmup_seconds": plan.warmup,
        "latency_seconds": plan.latency_seconds,
        "offered_rate": plan.rate,
        "webhook_body_bytes_mean": round(body_bytes, 1),
        "webhook_pool_sizes": pools["sizes"],
        "members": prepared.members,
        "history_orders_per_member": args.history,
        "budget_ratio": MIN_RATIO,
        "budget_p99_ms": MAX_P99_MS,
        "rows": rows,
        "webhook_ratio": rows[0]["ratio"],
        "webhook_p99_ms": rows[0]["p99_ms"],
        "me_ratio": rows[-1]["ratio"],
        "me_p99_ms": rows[-1]["p99_ms"],
        "processing": {"thread_mode_states": dict(states), "drain": drains,
                       "ack_only_states": dict(ack_only_states)},
        "checks": [{**asdict(check), "ok": check.ok} for check in checks],
        "me_errors": me_errors,
        "checks_ok": checks_ok,
        "pass_budgets": budgets_ok,
        "setup_seconds": round(setup_seconds, 1),
    }
    # Throughput runs only: at 200 req/s a worker with less to do changes nothing.
    report["min_worker_cpu_share"] = round(min(
        _worker_share(row[side]["throughput"]["worker_cpu_s"]) for row in rows
        for side in ("bare", "product")), 3)
    report["max_others_cpu_share"] = round(max(
        run["others_cpu_share"] for row in rows for side in ("bare", "product")
        for run in (row[side]["throughput"], row[side]["latency"])), 3)
    report["pass"] = bool(budgets_ok and checks_ok)
    report["wall_seconds"] = round(time.perf_counter() - wall, 1)
    if not checks_ok and "Traceback" in product_log:
        report["product_log_tail"] = product_log[-4000:]

    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n")
    if args.json:
        print(json.dumps(report, indent=2))
        return 0 if report["pass"] else 1
    print_report(report, rows, checks, settings, plan)
    return 0 if report["pass"] else 1


def print_report(report: dict[str, Any], rows: Sequence[dict[str, Any]], checks: Sequence[Any],
                 settings: GunicornSettings, plan: Plan) -> None:
    verdict = {True: "PASS", False: "FAIL"}
    webhook = rows[0]["product"]
    print("Webhook acknowledgement and storefront `me` vs a bare Flask JSON endpoint "
          "(DESIGN.md §10), one run, loopback")
    print(f"gunicorn:   {settings.describe()}")
    print(f"            bare:    {report['gunicorn']['bare_command']}")
    print(f"            product: {report['gunicorn']['product_command']}")
    print(f"machine:    {report['cpus']} CPUs, {100 * report['machine_busy_before_run']:.0f} % "
          f"busy just before the run; SQLite (WAL) in a temporary directory")
    print(f"throughput: {report['throughput_generator']}, {plan.seconds} s after "
          f"{plan.warmup} s warm-up; the same request bytes to the bare app (path /json)")
    print(f"latency:    {report['latency_generator']}, {plan.rate:g} req/s offered for "
          f"{plan.latency_seconds:g} s; latency from each request's scheduled send time")
    print(f"webhooks:   signed orders/paid, {report['webhook_body_bytes_mean']:,.0f} bytes on "
          f"average, a distinct X-Shopify-Event-Id each; shop installed, demo program")
    print(f"me:         {report['members']} members with {report['history_orders_per_member']}"
          f" paid orders each (history, tier, rewards), signed App Proxy queries, fresh "
          f"timestamps")
    print("jobs:       JOBS_MODE=thread, the in-process default (plugin_server.wsgi without "
          "Redis): each delivery is processed\n            on a job thread of the gunicorn "
          "worker that stored it, concurrently with the acknowledgements; eager would\n"
          "            process inside the request, which is not the acknowledgement §6 "
          "describes. The 'alone' row drops the\n            job (bench/ack_only_app.py), "
          "for information.\n")
    print(_table(rows))
    drain = report["processing"]["drain"]
    tp = drain.get("throughput", {})
    print(f"\nprocessing (thread mode): when wrk stopped, {tp.get('backlog_when_load_stopped')}"
          f" of {webhook['throughput']['stored']} stored deliveries were still waiting; "
          f"drained in {tp.get('seconds_to_drain')} s. "
          f"States now: {report['processing']['thread_mode_states']}")
    print("\nper row (throughput run / latency run); CPU: server = gunicorn master + workers, "
          "generator = wrk or the open-loop process,\n  others = processes outside this bench "
          "(share of the whole machine):")
    for row in rows:
        for side in ("bare", "product"):
            t, lat = row[side]["throughput"], row[side]["latency"]
            answers = (f" ({t['stored']} stored, {t['duplicate']} duplicate)"
                       if row["label"].startswith("webhook") and side == "product" else "")
            tries = row[f"{side}_attempts"]
            again = (f" (run {t['attempt']} of {tries}, repeated: a gunicorn worker idled)"
                     if tries > 1 else "")
            print(f"  {row['label']}, {side}: wrk {t['ok']} x 200{answers}{again}, "
                  f"{t['other_status']} other, {sum(t['errors'].values())} errors, "
                  f"closed-loop p50/p99 {t['closed_loop_p50_ms']:.1f}/"
                  f"{t['closed_loop_p99_ms']:.1f} ms; CPU server {t['server_cpu_s']:.1f} s "
                  f"(workers {'/'.join(f'{w:.1f}' for w in t['worker_cpu_s'])}), "
                  f"generator {t['generator_cpu_s']:.1f} s, machine busy "
                  f"{100 * t['machine_cpu_busy']:.0f} %, others {100 * t['others_cpu_share']:.0f} %"
                  f"\n    at {plan.rate:g}/s: {lat['ok']}/{lat['requests']} x 200, p90 "
                  f"{lat['p90_ms']:.2f} ms, max {lat['max_ms']:.2f} ms, send lag max "
                  f"{lat['max_send_lag_ms']:.1f} ms, {lat['connections_opened']} connections; "
                  f"CPU server {lat['server_cpu_s']:.1f} s (workers "
                  f"{'/'.join(f'{w:.1f}' for w in lat['worker_cpu_s'])}), generator "
                  f"{lat['generator_cpu_s']:.1f} s, others {100 * lat['others_cpu_share']:.0f} %")
    if report["min_worker_cpu_share"] < 0.5:
        print(f"  note: in a throughput run a gunicorn worker did only "
              f"{100 * report['min_worker_cpu_share'] / settings.workers:.0f} % of the work "
              f"(even: {100 / settings.workers:.0f} %) after {plan.attempts} tries: wrk's "
              f"connections were not spread over the workers; run again")
    if report["max_others_cpu_share"] > 0.05:
        print(f"  note: other processes used up to {100 * report['max_others_cpu_share']:.0f} % "
              f"of the machine during a measurement: the figures are disturbed; run again on an "
              f"idle machine")
    print("\ncorrectness (inbox rows in the SQLite file vs 'stored' answers):")
    for check in checks:
        if isinstance(check, WrkCheck):
            print(f"  {verdict[check.ok]}  {check.phase}: {check.rows} rows, "
                  f"{check.stored_answers} answered 'stored', {check.unanswered} in flight "
                  f"when wrk stopped (sent, answer not read), {check.duplicate_answers} "
                  f"duplicates, pool wraps {check.wraps}")
        else:
            print(f"  {verdict[check.ok]}  {check.phase}: {check.rows} rows = "
                  f"{check.stored_answers} answered 'stored' for {check.distinct_ids_answered}"
                  f" distinct event ids; missing {check.missing}, unexpected "
                  f"{check.unexpected}, not 200: {check.not_ok}")
    print(f"  {verdict[report['me_errors'] == 0]}  me: {report['me_errors']} non-200 answers or "
          f"errors")
    print(f"\nOverall: {verdict[report['pass']]}  (budgets {verdict[report['pass_budgets']]}, "
          f"checks {verdict[report['checks_ok']]}; wall time {report['wall_seconds']} s)")


if __name__ == "__main__":
    sys.exit(main())
