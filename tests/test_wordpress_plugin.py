"""The WordPress companion plugin (integrations/woocommerce/wordpress-plugin): every PHP file
parses, its signatures agree byte for byte with the server's Python verifier (DESIGN §8), its
pure helpers (locales, server URLs, the script tag) behave, and simple greps keep the code
within WordPress practice. The PHP runs through the ``php`` command line: locally a missing
``php`` skips these tests, in CI (``CI`` set) it fails them (scripts/test.sh installs php-cli)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from integrations.woocommerce.identity import (
    IdentityRejected,
    identity_signature,
    verify_identity,
)

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIR = ROOT / "integrations" / "woocommerce" / "wordpress-plugin"
MAIN_FILE = PLUGIN_DIR / "loyalty-for-woocommerce.php"
SIGN_SCRIPT = PLUGIN_DIR / "tests" / "sign.php"
INCLUDES = PLUGIN_DIR / "includes"
PHP_FILES = sorted(PLUGIN_DIR.rglob("*.php"))
# Plugin code proper: what WordPress loads (the test helper is command-line only).
PLUGIN_PHP_FILES = [p for p in PHP_FILES if "tests" not in p.relative_to(PLUGIN_DIR).parts]
TEXT_DOMAIN = "loyalty-for-woocommerce"
WIDGET_LANGUAGES = {"en", "ja", "vi", "te", "hy", "es", "fr", "de", "pt-BR", "zh-CN", "hi", "ar"}
SECRET = "k3yK3yk3yK3yk3yK3yk3yK3yk3yK3yk3yK3yk3yK"


@pytest.fixture(scope="module")
def php() -> str:
    found = shutil.which("php")
    if not found:
        if os.environ.get("CI"):
            pytest.fail("php is not installed: run the tests with scripts/test.sh, which "
                        "installs php-cli")
        pytest.skip("the WordPress plugin tests need php (apt-get install php-cli)")
    return found


def run_php(php: str, args: list[str], stdin: str = "") -> str:
    result = subprocess.run([php, *args], input=stdin.encode("utf-8"), capture_output=True,
                            timeout=30, check=False)
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace") + \
        result.stdout.decode("utf-8", "replace")
    return result.stdout.decode("utf-8")


def run_snippet(php: str, requires: list[str], body: str, data: Any = None) -> Any:
    """Runs ``body`` with the named includes loaded outside WordPress; ``$in`` is ``data``
    (sent as JSON on stdin); what the snippet echoes is read back as JSON."""
    loads = "".join(f"require {json.dumps(str(INCLUDES / name))};" for name in requires)
    code = ("define('ABSPATH', __DIR__);" + loads +
            "$in = json_decode(stream_get_contents(STDIN), true);" + body)
    return json.loads(run_php(php, ["-d", "display_errors=stderr", "-r", code],
                              json.dumps(data)))


# --- (a) every file parses ------------------------------------------------------------------

def test_plugin_has_the_expected_files() -> None:
    names = {p.relative_to(PLUGIN_DIR).as_posix() for p in PLUGIN_DIR.rglob("*") if p.is_file()}
    assert {"loyalty-for-woocommerce.php", "uninstall.php", "readme.txt", "assets/account.js",
            "includes/class-loyalty-identity.php", "includes/class-loyalty-settings.php",
            "includes/class-loyalty-storefront.php", "tests/sign.php"} <= names


@pytest.mark.parametrize("path", PHP_FILES, ids=lambda p: p.relative_to(PLUGIN_DIR).as_posix())
def test_php_file_parses(php: str, path: Path) -> None:
    result = subprocess.run([php, "-l", str(path)], capture_output=True, text=True, timeout=30,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# --- (b) the PHP signature is the Python one ------------------------------------------------

IDENTITY_CASES = [
    pytest.param("a1b2c3d4e5f60718", "42", "jane@example.com", 1_700_000_000, id="ascii"),
    pytest.param("a1b2c3d4e5f60718", "7", "ÿ@例え.jp", 1_700_000_123, id="unicode-email"),
    pytest.param("s" * 64, "9" * 64, "long.name+tag@sub.example.co.uk", 2_000_000_000,
                 id="longest-ids"),
    pytest.param("store-1", "1", "", 0, id="empty-email-ts-zero"),
    pytest.param("store.1_x", "123456", "o'neil&amp;\"q\"<b>@example.com", 1_234_567_890,
                 id="html-characters"),
    pytest.param("a1b2", "5", "x@" + "é" * 250, 1_699_999_999, id="longest-email"),
]


@pytest.mark.parametrize(("store_id", "customer_id", "email", "ts"), IDENTITY_CASES)
def test_php_identity_is_accepted_by_the_python_verifier(php: str, store_id: str,
                                                         customer_id: str, email: str,
                                                         ts: int) -> None:
    out = run_php(php, [str(SIGN_SCRIPT)], json.dumps(
        {"secret": SECRET, "store_id": store_id, "customer_id": customer_id, "email": email,
         "ts": ts}))
    identity = json.loads(out)
    assert list(identity) == ["store_id", "customer_id", "email", "ts", "sig"]
    assert identity["store_id"] == store_id and identity["customer_id"] == customer_id
    assert identity["email"] == email
    assert type(identity["ts"]) is int and identity["ts"] == ts
    assert identity["sig"] == identity_signature(SECRET, store_id, customer_id, email, ts)
    assert re.fullmatch(r"[0-9a-f]{64}", identity["sig"])
    shopper = verify_identity(identity, SECRET, now=ts)
    assert (shopper.store_id, shopper.customer_id, shopper.email, shopper.ts) == \
        (store_id, customer_id, email, ts)
    with pytest.raises(IdentityRejected):
        verify_identity(identity, SECRET + "x", now=ts)


def test_php_identity_takes_integer_ids_as_text(php: str) -> None:
    out = run_php(php, [str(SIGN_SCRIPT)], json.dumps(
        {"secret": SECRET, "store_id": "abc", "customer_id": 31, "email": "a@b.c",
         "ts": 1_700_000_000}))
    identity = json.loads(out)
    assert identity["customer_id"] == "31"
    verify_identity(identity, SECRET, now=1_700_000_000)


@pytest.mark.parametrize(("store_id", "customer_id", "email"), [
    pytest.param("st|ore", "1", "a@b.c", id="separator-in-store"),
    pytest.param("store", "1|2", "a@b.c", id="separator-in-customer"),
    pytest.param("store", "", "a@b.c", id="empty-customer"),
    pytest.param("s" * 65, "1", "a@b.c", id="store-too-long"),
    pytest.param("store", "1", "x@" + "e" * 253, id="email-too-long"),
])
def test_php_prints_no_identity_the_server_would_refuse(php: str, store_id: str,
                                                        customer_id: str, email: str) -> None:
    fields = {"store_id": store_id, "customer_id": customer_id, "email": email,
              "ts": 1_700_000_000}
    out = run_php(php, [str(SIGN_SCRIPT)], json.dumps({"secret": SECRET, **fields}))
    assert json.loads(out) is None
    signed = {**fields, "sig": identity_signature(SECRET, store_id, customer_id, email,
                                                  1_700_000_000)}
    with pytest.raises(IdentityRejected):
        verify_identity(signed, SECRET, now=1_700_000_000)


@pytest.mark.parametrize(("store_id", "ts"), [("a1b2c3d4e5f60718", 1_700_000_000),
                                              ("store-ü", 0)])
def test_php_admin_request_signature(php: str, store_id: str, ts: int) -> None:
    out = run_php(php, [str(SIGN_SCRIPT), "admin"],
                  json.dumps({"secret": SECRET, "store_id": store_id, "ts": ts}))
    body = json.loads(out)
    expected = hmac.new(SECRET.encode(), f"admin|{store_id}|{ts}".encode(),
                        hashlib.sha256).hexdigest()
    assert body == {"store_id": store_id, "ts": ts, "sig": expected}


# --- pure helpers -----------------------------------------------------------------------------

LOCALES = {
    "en_US": "en", "en_GB": "en", "ja": "ja", "vi": "vi", "te": "te", "hy": "hy",
    "es_ES": "es", "es_MX": "es", "fr_FR": "fr", "fr_CA": "fr", "de_DE": "de",
    "de_DE_formal": "de", "de_CH_informal": "de", "pt_BR": "pt-BR", "pt_PT": "pt-BR",
    "pt_PT_ao90": "pt-BR", "zh_CN": "zh-CN", "zh_SG": "zh-CN", "zh_TW": "en", "zh_HK": "en",
    "hi_IN": "hi", "ar": "ar", "it_IT": "en", "nl_NL": "en", "": "en", "pt-BR": "pt-BR",
}


def test_locale_mapping(php: str) -> None:
    got = run_snippet(php, ["class-loyalty-locale.php"],
                      "echo json_encode(array_map(['Loyalty_Locale', 'widget_locale'], $in));",
                      list(LOCALES))
    assert dict(zip(LOCALES, got, strict=True)) == LOCALES
    assert set(LOCALES.values()) <= WIDGET_LANGUAGES


SERVER_URLS = {
    "https://loyalty.example.com": "https://loyalty.example.com",
    " https://Loyalty.Example.com/ ": "https://loyalty.example.com",
    "https://example.com:8443/loyalty/": "https://example.com:8443/loyalty",
    "http://localhost:5000": "http://localhost:5000",
    "http://127.0.0.1:5000/": "http://127.0.0.1:5000",
    "http://[::1]:5000": "http://[::1]:5000",
    "http://shop.localhost": "http://shop.localhost",
    "http://loyalty.example.com": None,
    "http://localhost.example.com": None,
    "ftp://loyalty.example.com": None,
    "loyalty.example.com": None,
    "https://user:pass@loyalty.example.com": None,
    "https://loyalty.example.com/?x=1": None,
    "https://loyalty.example.com/#top": None,
    "javascript:alert(1)": None,
    "https://loyalty example.com": None,
    "": None,
}


def test_server_url_normalization(php: str) -> None:
    got = run_snippet(php, ["class-loyalty-urls.php"],
                      "echo json_encode(array_map(['Loyalty_Urls', 'normalize_server'], $in));",
                      list(SERVER_URLS))
    assert dict(zip(SERVER_URLS, got, strict=True)) == SERVER_URLS


REDIRECTS = {
    "https://loyalty.example.com/admin/login?token=abc.def": True,
    "http://localhost:5000/admin/login?token=abc": True,
    "http://127.0.0.1:5000/admin/login?token=abc": True,
    "http://loyalty.example.com/admin/login?token=abc": False,
    "//evil.example.com/admin": False,
    "/admin/login?token=abc": False,
    "javascript:alert(1)": False,
    "https://loyalty.example.com/\r\nSet-Cookie: x=1": False,
    "https://user@loyalty.example.com/": False,
}


def test_admin_link_redirects_only_to_https_or_localhost(php: str) -> None:
    got = run_snippet(php, ["class-loyalty-urls.php"],
                      "echo json_encode(array_map(['Loyalty_Urls', 'is_allowed_redirect'], $in));",
                      list(REDIRECTS))
    assert dict(zip(REDIRECTS, got, strict=True)) == REDIRECTS


def test_plugin_urls(php: str) -> None:
    got = run_snippet(php, ["class-loyalty-urls.php"], """
        $s = 'https://loyalty.example.com';
        echo json_encode([Loyalty_Urls::connect_url($s, 'https://shop.example.com/wp?a=b&c'),
            Loyalty_Urls::loader_url($s), Loyalty_Urls::api_base($s),
            Loyalty_Urls::admin_link_endpoint($s)]);""")
    assert got == [
        "https://loyalty.example.com/woocommerce/connect?store_url="
        "https%3A%2F%2Fshop.example.com%2Fwp%3Fa%3Db%26c",
        "https://loyalty.example.com/widget/loader.js",
        "https://loyalty.example.com/api/storefront",
        "https://loyalty.example.com/api/woocommerce/admin-link",
    ]


class _ScriptTags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.tags.append(dict(attrs))


# What WordPress prints for the handle: 6.3+ with the defer strategy, and older versions
# (single quotes, type attribute), with an inline script attached before it.
WP_TAGS = [
    '<script src="https://loyalty.example.com/widget/loader.js" id="loyalty-widget-js" '
    'defer data-wp-strategy="defer"></script>\n',
    "<script id='loyalty-widget-js-before'>var x = 1;</script>\n<script type='text/javascript' "
    "src='https://loyalty.example.com/widget/loader.js' id='loyalty-widget-js'></script>\n",
]

# WordPress's esc_attr() and wp_json_encode(), closely enough for the escaping round trip.
WP_STUBS = """
function esc_attr($text) { return htmlspecialchars((string) $text, ENT_QUOTES, 'UTF-8', false); }
function wp_json_encode($data, $flags = 0) { return json_encode($data, $flags); }
"""


@pytest.mark.parametrize("wp_tag", WP_TAGS, ids=["wp-6.3", "wp-older"])
@pytest.mark.parametrize("email", ["jane@example.com", "o'neil&amp;\"q\"<b>@例え.jp"])
def test_script_tag_carries_a_verifiable_identity(php: str, wp_tag: str, email: str) -> None:
    ts = 1_700_000_000
    html = run_snippet(php, ["class-loyalty-identity.php", "class-loyalty-storefront.php"],
                       WP_STUBS + """
        $identity = Loyalty_Identity::identity($in['secret'], 'a1b2c3d4e5f60718', 42,
            $in['email'], $in['ts']);
        $attributes = ['data-platform' => 'woocommerce', 'data-shop' => 'a1b2c3d4e5f60718',
            'data-customer-id' => '42', 'data-locale' => 'ja', 'data-currency' => 'JPY',
            'data-api-base' => 'https://loyalty.example.com/api/storefront',
            'data-identity' => Loyalty_Storefront::identity_json($identity)];
        echo json_encode(Loyalty_Storefront::add_to_tag($in['tag'], 'loyalty-widget-js',
            Loyalty_Storefront::attributes_html($attributes)));""",
                       {"secret": SECRET, "email": email, "ts": ts, "tag": wp_tag})
    parser = _ScriptTags()
    parser.feed(html)
    loader = [t for t in parser.tags if t.get("id") == "loyalty-widget-js"]
    assert len(loader) == 1 and len(parser.tags) == wp_tag.count("<script")
    tag = loader[0]
    assert "defer" in tag and html.count(" defer") == 1
    assert tag["src"] == "https://loyalty.example.com/widget/loader.js"
    assert {k: tag[k] for k in ("data-platform", "data-shop", "data-customer-id",
                                 "data-locale", "data-currency", "data-api-base")} == {
        "data-platform": "woocommerce", "data-shop": "a1b2c3d4e5f60718",
        "data-customer-id": "42", "data-locale": "ja", "data-currency": "JPY",
        "data-api-base": "https://loyalty.example.com/api/storefront"}
    identity = json.loads(tag["data-identity"] or "")
    assert identity["email"] == email and identity["customer_id"] == "42"
    verify_identity(identity, SECRET, now=ts)
    assert "<script id='loyalty-widget-js-before'>" in html or "before" not in wp_tag


# WordPress and WooCommerce, as much as Loyalty_Storefront::attributes() and filter_tag() use.
STOREFRONT_STUBS = WP_STUBS + """
function get_option($name, $default = false) { global $in; return $in['settings']; }
function get_current_user_id() { global $in; return $in['user_id']; }
function wp_get_current_user() { global $in; return (object) ['user_email' => $in['email']]; }
function determine_locale() { return 'pt_BR'; }
function get_woocommerce_currency() { return 'BRL'; }
"""
STOREFRONT_INCLUDES = ["class-loyalty-identity.php", "class-loyalty-locale.php",
                       "class-loyalty-urls.php", "class-loyalty-settings.php",
                       "class-loyalty-storefront.php"]


@pytest.mark.parametrize("user_id", [42, 0], ids=["customer", "guest"])
def test_storefront_tag_from_the_settings(php: str, user_id: int) -> None:
    settings = {"server_url": "https://loyalty.example.com/", "store_id": "a1b2c3d4e5f60718",
                "widget_secret": SECRET}
    before = int(time.time())
    html = run_snippet(php, STOREFRONT_INCLUDES, STOREFRONT_STUBS + """
        echo json_encode(Loyalty_Storefront::filter_tag($in['tag'], 'loyalty-widget'));""",
                       {"settings": settings, "user_id": user_id, "email": "ana@例え.br",
                        "tag": WP_TAGS[1]})
    parser = _ScriptTags()
    parser.feed(html)
    tag = next(t for t in parser.tags if t.get("id") == "loyalty-widget-js")
    assert "defer" in tag
    assert {k: v for k, v in tag.items() if k.startswith("data-") and k != "data-identity"} == {
        "data-platform": "woocommerce", "data-shop": "a1b2c3d4e5f60718",
        "data-customer-id": str(user_id or ""), "data-locale": "pt-BR", "data-currency": "BRL",
        "data-api-base": "https://loyalty.example.com/api/storefront"}
    if not user_id:
        assert "data-identity" not in tag
        return
    identity = json.loads(tag["data-identity"] or "")
    assert identity["store_id"] == "a1b2c3d4e5f60718" and identity["customer_id"] == "42"
    assert identity["email"] == "ana@例え.br" and identity["ts"] >= before
    verify_identity(identity, SECRET, now=identity["ts"])


def test_storefront_leaves_other_tags_alone(php: str) -> None:
    other = "<script src='https://x.example/a.js' id='other-js'></script>\n"
    got = run_snippet(php, STOREFRONT_INCLUDES, STOREFRONT_STUBS + """
        echo json_encode([Loyalty_Storefront::filter_tag($in['tag'], 'other'),
            Loyalty_Storefront::add_to_tag($in['tag'], 'loyalty-widget-js', ' data-x="1"')]);""",
                      {"settings": {}, "user_id": 0, "email": "", "tag": other})
    assert got == [other, other]


def test_earn_lines_markup() -> None:
    code = (INCLUDES / "class-loyalty-storefront.php").read_text(encoding="utf-8")
    assert "'woocommerce_single_product_summary', array( __CLASS__, 'product_line' ), 11" in code
    assert '<p class="loyalty-earn" data-loyalty-earn data-price="\' . esc_attr( $price )' in code
    assert '<p class="loyalty-earn" data-loyalty-earn="cart" data-price="\' . esc_attr( $total )' \
        in code
    assert "'strategy'  => 'defer'" in code and "'script_loader_tag'" in code


# --- (c) header, readme and code hygiene ----------------------------------------------------

def _header(path: Path) -> dict[str, str]:
    block = path.read_text(encoding="utf-8").split("*/", 1)[0]
    fields = {}
    for line in block.splitlines():
        match = re.match(r"\s*\*?\s*([A-Z][A-Za-z ]+?):\s+(.+?)\s*$", line)
        if match:
            fields.setdefault(match.group(1), match.group(2))
    return fields


def test_plugin_header() -> None:
    header = _header(MAIN_FILE)
    assert header["Plugin Name"] == "Loyalty for WooCommerce"
    assert header["Version"] == "0.1.0"
    assert header["Requires PHP"] == "7.4"
    assert header["License"] == "MIT"
    assert header["Text Domain"] == TEXT_DOMAIN
    assert header["Description"]
    assert "define( 'LOYALTY_WC_VERSION', '0.1.0' )" in MAIN_FILE.read_text(encoding="utf-8")


def test_readme_txt() -> None:
    text = (PLUGIN_DIR / "readme.txt").read_text(encoding="utf-8")
    assert text.startswith("=== Loyalty for WooCommerce ===\n")
    assert re.search(r"^Stable tag: 0\.1\.0$", text, re.M)
    assert re.search(r"^Requires PHP: 7\.4$", text, re.M)
    assert re.search(r"^License: MIT$", text, re.M)
    for section in ("Description", "Installation", "Changelog", "Server contract"):
        assert f"== {section} ==" in text
    # The admin sign-in contract is written down where server authors will look.
    assert "/api/woocommerce/admin-link" in text and "admin|store_id|ts" in text
    assert "store_id|customer_id|email|ts" in text


def test_every_plugin_file_refuses_direct_access() -> None:
    for path in PLUGIN_PHP_FILES:
        assert "defined( 'ABSPATH' ) || exit;" in path.read_text(encoding="utf-8"), path
    assert "defined( 'WP_UNINSTALL_PLUGIN' ) || exit;" in \
        (PLUGIN_DIR / "uninstall.php").read_text(encoding="utf-8")
    # The command-line helper defines ABSPATH itself, and only from the command line.
    sign = SIGN_SCRIPT.read_text(encoding="utf-8")
    assert sign.index("PHP_SAPI !== 'cli'") < sign.index("define( 'ABSPATH'")


@pytest.mark.parametrize("path", PHP_FILES + sorted(PLUGIN_DIR.rglob("*.js")),
                         ids=lambda p: p.relative_to(PLUGIN_DIR).as_posix())
def test_no_dangerous_calls(path: Path) -> None:
    code = path.read_text(encoding="utf-8")
    for banned in (r"\beval\s*\(", r"\bbase64_decode\b", r"\bcreate_function\b",
                   r"\bextract\s*\(", r"\bunserialize\s*\(", r"\bshell_exec\b", r"`",
                   r"\binnerHTML\b", r"\bdocument\.write\b"):
        if path.suffix == ".js" and banned == r"`":
            continue
        assert not re.search(banned, code), f"{path.name}: {banned}"


# PHP 8 features a PHP 7.4 site cannot parse or run.
PHP8_ONLY = [r"\bstr_contains\s*\(", r"\bstr_starts_with\s*\(", r"\bstr_ends_with\s*\(",
             r"\bmatch\s*\(", r"\?->", r"#\[", r"\):\s*(mixed|never|static)\b",
             r"\b(public|private|protected)\s+(readonly\s+)?[\w\\?|]+\s+\$\w+\s*[,)]"
             r"(?=[^{]*\)\s*\{)", r"\benum\s+\w+", r"\w\s*:\s*\$\w+\s*[,)]"]


@pytest.mark.parametrize("path", PHP_FILES, ids=lambda p: p.relative_to(PLUGIN_DIR).as_posix())
def test_php_7_4_compatible(path: Path) -> None:
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", path.read_text(encoding="utf-8"), flags=re.S)
    code = re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", "''", code)
    for pattern in PHP8_ONLY:
        assert not re.search(pattern, code), f"{path.name}: {pattern}"


ESCAPERS = ("esc_html", "esc_attr", "esc_url", "esc_html__", "esc_attr__", "esc_html_e",
            "esc_attr_e", "wp_kses", "wp_kses_post", "absint", "intval")


def _unescaped_echoes(code: str) -> list[str]:
    """Echo/print statements that output a variable or call result outside an escaper."""
    found = []
    # Comments first: block comments, and lines that are only a comment.
    code = re.sub(r"/\*.*?\*/", "", code, flags=re.S)
    code = re.sub(r"^\s*(?://|#).*$", "", code, flags=re.M)
    for match in re.finditer(r"\b(?:echo|print)\b\s*(.+?);\s*(?://[^\n]*)?$", code, re.M | re.S):
        statement = match.group(1)
        # Drop string literals (single-quoted ones cannot interpolate), then escaped calls.
        rest = re.sub(r"'(?:[^'\\]|\\.)*'", "''", statement)
        if re.search(r'"[^"]*\$', rest):
            found.append(match.group(0))
            continue
        for escaper in ESCAPERS:
            rest = re.sub(rf"\b{escaper}\s*\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)", "''", rest)
        if re.search(r"\$\w|\b\w+\s*\(", rest):
            found.append(match.group(0))
    found += re.findall(r"<\?=\s*[^?]*", code)
    return found


def test_no_unescaped_output() -> None:
    for path in PLUGIN_PHP_FILES:
        code = path.read_text(encoding="utf-8")
        assert _unescaped_echoes(code) == [], path.name
        # printf/sprintf into HTML: every argument after the format goes through an escaper.
        for call in re.finditer(r"\bprintf\s*\(\s*'[^']*'\s*,(.*?)\);", code, re.S):
            for argument in call.group(1).split(","):
                argument = argument.strip()
                assert argument.startswith(ESCAPERS), f"{path.name}: printf({argument})"


def test_the_hygiene_heuristics_catch_unescaped_output() -> None:
    assert _unescaped_echoes("echo $name;")
    assert _unescaped_echoes("echo '<p>' . $name . '</p>';")
    assert _unescaped_echoes('echo "<p>$name</p>";')
    assert _unescaped_echoes("echo get_option( 'x' );")
    assert _unescaped_echoes("<?= $name ?>")
    assert not _unescaped_echoes("echo '<p>' . esc_html( $name ) . '</p>';")
    assert not _unescaped_echoes("echo '<a href=\"' . esc_url( admin_url( 'x' ) ) . '\">';")


GETTEXT = r"\b(?:__|_e|esc_html__|esc_html_e|esc_attr__|esc_attr_e)\s*\("


def test_translations_use_the_text_domain() -> None:
    literal = r"'(?:[^'\\]|\\.)*'"
    for path in PLUGIN_PHP_FILES:
        code = path.read_text(encoding="utf-8")
        calls = re.findall(GETTEXT, code)
        domains = re.findall(GETTEXT + rf"\s*{literal}\s*,\s*'([^']*)'\s*\)", code)
        assert len(domains) == len(calls), f"{path.name}: a translation call is not literal"
        assert set(domains) <= {TEXT_DOMAIN}, path.name


def test_settings_page_practices() -> None:
    settings = (INCLUDES / "class-loyalty-settings.php").read_text(encoding="utf-8")
    assert "register_setting(" in settings and "'sanitize_callback'" in settings
    assert "settings_fields( self::GROUP )" in settings  # prints the nonce options.php checks
    assert "current_user_can( self::capability() )" in settings
    assert "option_page_capability_" in settings
    # The secret is a password field that is never filled in.
    assert re.search(r'type="password"[^>]*name="%1\$s\[widget_secret\]" value=""', settings)
    assert "/woocommerce/connect?store_url=" in \
        (INCLUDES / "class-loyalty-urls.php").read_text(encoding="utf-8")


def test_admin_link_practices() -> None:
    code = (INCLUDES / "class-loyalty-admin-link.php").read_text(encoding="utf-8")
    assert "wp_remote_post(" in code and "'timeout'     => 10" in code
    assert "Loyalty_Urls::is_allowed_redirect( $url )" in code
    assert "current_user_can( Loyalty_Settings::capability() )" in code
    assert "notice-error" in code


def test_account_tab_opens_the_widget_from_an_enqueued_file() -> None:
    account = (INCLUDES / "class-loyalty-account.php").read_text(encoding="utf-8")
    assert "const ENDPOINT = 'loyalty';" in account
    assert "'assets/account.js'" in account and "wp_enqueue_script(" in account
    assert '<div id="loyalty-account"></div>' in account
    for path in PLUGIN_PHP_FILES:
        code = re.sub(r"/\*.*?\*/", "", path.read_text(encoding="utf-8"), flags=re.S)
        assert "wp_add_inline_script" not in code and "<script>" not in code, path.name
    script = (PLUGIN_DIR / "assets" / "account.js").read_text(encoding="utf-8")
    assert "(window.LoyaltyWidget.q = window.LoyaltyWidget.q || []).push(arguments)" in script
    assert 'window.LoyaltyWidget("open")' in script
    plugin = (INCLUDES / "class-loyalty-plugin.php").read_text(encoding="utf-8")
    assert plugin.count("flush_rewrite_rules()") == 2


def test_uninstall_deletes_only_the_plugins_data() -> None:
    code = (PLUGIN_DIR / "uninstall.php").read_text(encoding="utf-8")
    keys = re.findall(r"'(loyalty_wc_[a-z_]+)'", code)
    assert set(keys) == {"loyalty_wc_settings", "loyalty_wc_setup_notice_dismissed"}
    names_in_code = "".join(p.read_text(encoding="utf-8") for p in PLUGIN_PHP_FILES)
    assert "const OPTION = 'loyalty_wc_settings';" in names_in_code
    assert "NOTICE_DISMISSED_META = 'loyalty_wc_setup_notice_dismissed';" in names_in_code
    for call in ("delete_option(", "delete_metadata("):
        assert call in code
    assert not re.search(r"\$wpdb|DROP\s|TRUNCATE|delete_post|wp_delete", code)
