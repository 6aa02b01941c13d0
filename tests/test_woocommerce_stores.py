"""Store URLs a merchant types, made canonical; hostile ones refused with a clear reason."""

from __future__ import annotations

import pytest

from integrations.woocommerce.stores import InvalidStoreUrl, normalize_store_url


@pytest.mark.parametrize(("raw", "canonical"), [
    ("https://shop.example.com", "https://shop.example.com"),
    ("https://shop.example.com/", "https://shop.example.com"),
    ("HTTPS://Shop.Example.COM:443/", "https://shop.example.com"),
    ("https://example.com/shop/", "https://example.com/shop"),
    ("https://example.com/Shop//", "https://example.com/Shop"),
    ("https://example.com/shop?utm_source=x", "https://example.com/shop"),
    ("https://example.com:8443/wp", "https://example.com:8443/wp"),
    ("https://bücher.example/", "https://xn--bcher-kva.example"),
    ("https://xn--bcher-kva.example", "https://xn--bcher-kva.example"),
    ("https://example.com/boutique/é", "https://example.com/boutique/%C3%A9"),
    ("https://shop.example.com.", "https://shop.example.com"),
    ("https://93.184.215.14/", "https://93.184.215.14"),
    ("https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/",
     "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]"),
])
def test_canonical_in_production(raw: str, canonical: str) -> None:
    assert normalize_store_url(raw, production=True) == canonical


@pytest.mark.parametrize(("raw", "canonical"), [
    ("http://localhost:8080/", "http://localhost:8080"),
    ("http://localhost:80", "http://localhost"),
    ("http://127.0.0.1:5000/shop", "http://127.0.0.1:5000/shop"),
    ("http://[::1]:8000", "http://[::1]:8000"),
    ("http://wordpress.local", "http://wordpress.local"),
    ("http://192.168.1.20", "http://192.168.1.20"),
    ("http://store", "http://store"),
])
def test_development_allows_local_stores(raw: str, canonical: str) -> None:
    assert normalize_store_url(raw, production=False) == canonical
    with pytest.raises(InvalidStoreUrl):
        normalize_store_url(raw, production=True)


HOSTILE = [
    # (raw, words the message must contain)
    ("", "empty"),
    ("https://shop.example.com/#top", "fragment"),
    ("x" * 2001, "2001 characters long"),
    ("shop.example.com", "must start with https://"),
    ("//shop.example.com", "must start with https://"),
    ("https:shop.example.com", "must start with https://"),
    ("ftp://shop.example.com", "must start with https://"),
    ("javascript:alert(1)", "must start with https://"),
    ("file:///etc/passwd", "must start with https://"),
    ("http://shop.example.com", "must use https in production"),
    ("https://user:pass@shop.example.com", "user name or password"),
    ("https://shop.example.com@evil.example", "user name or password"),
    ("https://evil.example\\@shop.example.com", "backslash"),
    ("https://shop.example.com /", "whitespace"),
    (" https://shop.example.com", "whitespace"),
    ("https://shop.example.com\n", "whitespace"),
    ("https://shop.exa\tmple.com", "whitespace"),
    ("https://shop.example.com\x00", "control"),
    ("https://shop.example\u200b.com", "invisible"),
    ("https://", "no host"),
    ("https://:443", "no host"),
    ("https://shop.example.com:0", "port"),
    ("https://shop.example.com:99999", "cannot be parsed"),
    ("https://shop.example.com:http", "cannot be parsed"),
    ("https://sh_op.example.com", "not a valid domain name"),
    ("https://-shop.example.com", "not a valid domain name"),
    ("https://%6c%6fcalhost", "'%'"),
    ("https://shop.example.com/../admin", "'..'"),
    ("https://localhost", "internal name"),
    ("https://LOCALHOST.", "internal name"),
    ("https://api.localhost", "internal name"),
    ("https://wordpress.local", "internal name"),
    ("https://db.internal", "internal name"),
    ("https://router.home.arpa", "internal name"),
    ("https://store", "no dot"),
    ("https://wiki.intranet", "internal name"),
    ("https://127.0.0.1", "loopback"),
    ("https://127.1.2.3:8443", "loopback"),
    ("https://10.0.0.5", "private"),
    ("https://172.16.0.1", "private"),
    ("https://192.168.0.1", "private"),
    ("https://169.254.169.254/latest/meta-data", "link-local"),
    ("https://0.0.0.0", "unspecified"),
    ("https://224.0.0.1", "multicast"),
    ("https://240.0.0.1", "reserved"),
    ("https://100.64.0.1", "not a public address"),
    ("https://[::1]", "loopback"),
    ("https://[::]", "unspecified"),
    ("https://[fe80::1]", "link-local"),
    ("https://[fc00::1]", "private"),
    ("https://[ff02::1]", "multicast"),
    ("https://[::ffff:127.0.0.1]", "loopback"),
    ("https://[::ffff:10.0.0.1]", "private"),
    ("https://[::ffff:169.254.169.254]", "link-local"),
    ("https://[2002:7f00:1::]", "loopback"),
    ("https://[64:ff9b::a00:1]", "private"),
    ("https://[fe80::1%25eth0]", "IPv6 zone"),
    ("https://2130706433", "numeric IP"),
    ("https://0x7f000001", "numeric IP"),
    ("https://0177.0.0.1", "numeric IP"),
    ("https://127.1", "numeric IP"),
    ("https://0x7f.0.0.1", "numeric IP"),
    ("https://127.000.000.001", "numeric IP"),
]


@pytest.mark.parametrize(("raw", "reason"), HOSTILE)
def test_hostile_urls_are_refused(raw: str, reason: str) -> None:
    with pytest.raises(InvalidStoreUrl) as caught:
        normalize_store_url(raw, production=True)
    assert reason in str(caught.value)


@pytest.mark.parametrize("raw", [
    "https://user:pass@localhost", "ftp://localhost", "http://localhost\r\nX-Injected: 1",
    "http://local host", "http://[::1", "", "http://localhost/../x",
])
def test_development_still_refuses_malformed_urls(raw: str) -> None:
    with pytest.raises(InvalidStoreUrl):
        normalize_store_url(raw, production=False)


def test_not_text() -> None:
    with pytest.raises(InvalidStoreUrl, match="must be text"):
        normalize_store_url(None, production=True)  # type: ignore[arg-type]
