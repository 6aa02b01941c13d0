"""The widget's files as the server serves them: byte budgets measured on the served
responses (DESIGN §10), encodings, caching, and what the sources must never contain."""

from __future__ import annotations

import gzip
import json
import re

import brotli
import pytest
from calmjs.parse import es5
from flask import Flask
from flask.testing import FlaskClient

from plugin_server import widget_bundle
from storefront_widget import WIDGET_DIR

LOADER_BUDGET = 5_000
PANEL_BUDGET = 15_000
CATALOG_BUDGET = 2_000


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def served(client: FlaskClient, path: str, encoding: str = "gzip") -> bytes:
    answer = client.get(path, headers={"Accept-Encoding": encoding})
    assert answer.status_code == 200, path
    assert answer.headers.get("Content-Encoding") == encoding
    return answer.get_data()


def manifest_of(loader: str) -> dict[str, str]:
    """The hashed names the loader refers to."""
    names = re.findall(r'"((?:panel|i18n/[\w-]+)\.[0-9a-f]{12}\.(?:js|json))"', loader)
    return {name.split(".")[0]: name for name in names}


def test_byte_budgets_on_the_served_responses(client: FlaskClient) -> None:
    loader = served(client, "/widget/loader.js")
    assert len(loader) <= LOADER_BUDGET
    names = manifest_of(gzip.decompress(loader).decode())
    assert sorted(names) == sorted(["panel"] + [f"i18n/{lang}"
                                                for lang in widget_bundle.LANGUAGES])
    panel = served(client, f"/widget/{names['panel']}")
    assert len(panel) <= PANEL_BUDGET
    # The styles travel inside the panel file: one request, one budget.
    assert b".backdrop" in gzip.decompress(panel)
    for lang in widget_bundle.LANGUAGES:
        assert len(served(client, f"/widget/{names[f'i18n/{lang}']}")) <= CATALOG_BUDGET


def test_every_encoding_carries_the_same_bytes(client: FlaskClient) -> None:
    plain = client.get("/widget/loader.js", headers={"Accept-Encoding": ""})
    assert plain.headers.get("Content-Encoding") is None
    assert gzip.decompress(served(client, "/widget/loader.js")) == plain.get_data()
    assert brotli.decompress(served(client, "/widget/loader.js", "br")) == plain.get_data()
    assert plain.headers["Vary"] == "Accept-Encoding"
    assert plain.mimetype == "text/javascript"


def test_loader_revalidates_and_hashed_files_are_immutable(client: FlaskClient) -> None:
    first = client.get("/widget/loader.js", headers={"Accept-Encoding": "gzip"})
    assert "immutable" not in first.headers["Cache-Control"]
    etag = first.headers["ETag"]
    again = client.get("/widget/loader.js", headers={"Accept-Encoding": "gzip",
                                                     "If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    # Another encoding is another representation: it must not match this ETag.
    brotli_answer = client.get("/widget/loader.js", headers={"Accept-Encoding": "br",
                                                             "If-None-Match": etag})
    assert brotli_answer.status_code == 200
    names = manifest_of(gzip.decompress(first.get_data()).decode())
    for name in names.values():
        answer = client.get(f"/widget/{name}")
        assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert answer.headers["Access-Control-Allow-Origin"] == "*"


def test_unknown_and_unhashed_names_are_not_served(client: FlaskClient) -> None:
    for path in ("/widget/panel.js", "/widget/src/panel.js", "/widget/i18n/en.json",
                 "/widget/../plugin_server/config.py", "/widget/panel.000000000000.js"):
        assert client.get(path).status_code == 404, path


def test_hashed_names_follow_the_content(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("widget")
    for path in widget_bundle.source_files():
        target = root / path.relative_to(WIDGET_DIR)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    before = widget_bundle.build(root)
    catalog = root / "i18n" / "ja.json"
    catalog.write_text(catalog.read_text("utf-8").replace("リワード", "特典"), "utf-8")
    after = widget_bundle.build(root)
    changed = set(after.assets) - set(before.assets)
    assert [name.split(".")[0] for name in changed] == ["i18n/ja"]
    assert before.loader.body != after.loader.body  # the loader names the new file
    assert before.named("panel.").name == after.named("panel.").name


def test_sources_never_build_html_or_run_strings() -> None:
    for path in widget_bundle.source_files():
        if path.suffix != ".js":
            continue
        code = re.sub(r"/\*.*?\*/|//[^\n]*", "", path.read_text("utf-8"), flags=re.S)
        for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                          "eval(", "new Function", "setAttribute(\"style\"", ".onclick ="):
            assert forbidden not in code, (path.name, forbidden)


def test_the_panel_is_built_from_every_part_in_order() -> None:
    """Each file in src/panel/ is listed, and parses alone: a syntax error is found in its own
    file, at its own line; the placeholders live in the frame, once."""
    listed = widget_bundle.panel_files()
    assert sorted(listed) == sorted((WIDGET_DIR / "src" / "panel").glob("*.js"))
    for path in listed:
        es5(path.read_text("utf-8"))
    joined = widget_bundle.panel_source()
    # Inside mount(), before what it returns, in the listed order.
    places = [joined.index(path.read_text("utf-8")) for path in listed[1:]]
    assert joined.index("function mount(ctx) {") < places[0]
    assert places == sorted(places) and places[-1] < joined.index("return {")
    for marker in ("__PANEL_CSS__", "__EN_CATALOG__"):
        assert joined.count(marker) == 1


def test_catalog_strings_cannot_close_the_script(tmp_path_factory: pytest.TempPathFactory
                                                 ) -> None:
    root = tmp_path_factory.mktemp("widget")
    for path in widget_bundle.source_files():
        target = root / path.relative_to(WIDGET_DIR)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    english = json.loads((root / "i18n" / "en.json").read_text("utf-8"))
    english["launcher"] = "</script><script>alert(1)</script>"
    (root / "i18n" / "en.json").write_text(json.dumps(english), "utf-8")
    bundle = widget_bundle.build(root)
    assert b"</script>" not in bundle.loader.body
    assert b"</script>" not in bundle.named("panel.").body


def test_demo_store_page_runs_under_a_strict_policy(app: Flask) -> None:
    from plugin_server.demo import open_demo_store
    from plugin_server.demo_shopify import DemoShopify
    from plugin_server.web.demo_store import register_demo_store

    shopify = DemoShopify(app)
    shopify.start()
    try:
        register_demo_store(app, shopify)
        open_demo_store(shopify, reinstall=True)
        page = app.test_client().get("/store?lang=ar")
    finally:
        shopify.stop()
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "'unsafe-inline'" not in policy
    html = page.get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in html
    assert re.search(r'<script src="http://localhost/widget/loader\.js" data-platform="shopify" '
                     r'data-shop="demo-tea-house\.myshopify\.com" data-customer-id="" '
                     r'data-locale="ar" data-currency="USD" '
                     r'data-api-base="/apps/loyalty/api" defer></script>', html)
    assert "<style" not in html and " style=" not in html and "onclick" not in html
