"""Store URLs a merchant types, made canonical; hostile ones refused with a clear reason. And
connections to a store pinned to the addresses checked for them (``transport``)."""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pytest_httpserver import HTTPServer

from integrations.woocommerce.stores import InvalidStoreUrl, address_problem, normalize_store_url
from integrations.woocommerce.transport import ForbiddenAddress, new_session


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


# ---- connections pinned to checked addresses -------------------------------------------------

def resolve_with(monkeypatch: pytest.MonkeyPatch, answer: Any) -> list[str]:
    """``getaddrinfo`` answers ``answer(host)`` (an IPv4 address) for names under
    example.com and nip.io; returns the names looked up, in order."""
    looked_up: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if not host.endswith(("example.com", "nip.io")):
            return real(host, port, *args, **kwargs)
        address = answer(host)
        looked_up.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return looked_up


def only_127_0_0_1(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Stands in for "public" so the tests can connect on loopback."""
    return None if str(address) == "127.0.0.1" else f"{address} is not allowed here"


def test_address_problem_sees_through_ipv6_embeddings() -> None:
    assert address_problem(ipaddress.ip_address("93.184.215.14")) is None
    assert "loopback" in (address_problem(ipaddress.ip_address("::ffff:127.0.0.1")) or "")


def test_a_name_that_passes_as_text_is_refused_when_it_resolves_to_loopback(
        monkeypatch: pytest.MonkeyPatch) -> None:
    url = normalize_store_url("https://127.0.0.1.nip.io", production=True)
    resolve_with(monkeypatch, lambda host: "127.0.0.1")
    with pytest.raises(ForbiddenAddress, match=r"127\.0\.0\.1 is a loopback address"):
        new_session(public_only=True).get(url + "/wp-json/", timeout=1)


def test_a_connection_goes_to_the_address_that_was_checked(
        httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    httpserver.expect_request("/ok").respond_with_data("ok")
    # The first answer is allowed; every later one rebinds to an address that is not.
    looked_up = resolve_with(monkeypatch, lambda host: "127.0.0.2" if looked_up else "127.0.0.1")
    session = new_session(public_only=True, address_check=only_127_0_0_1)
    url = f"http://shop.example.com:{httpserver.port}/ok"
    assert session.get(url, timeout=2).text == "ok"
    assert looked_up == ["shop.example.com"]  # resolved once: no second answer to connect to
    session.close()  # the next call opens a new connection, and resolves again
    with pytest.raises(ForbiddenAddress, match=r"127\.0\.0\.2 is not allowed here"):
        session.get(url, timeout=2)
    assert len(httpserver.log) == 1


@pytest.fixture
def tls_store(tmp_path: Path) -> Iterator[tuple[HTTPServer, str]]:
    """An https server on loopback with a self-signed certificate for shop.example.com; yields
    it and the certificate file to trust."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shop.example.com")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("shop.example.com")]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server = HTTPServer(host="127.0.0.1", ssl_context=context)
    server.start()
    try:
        yield server, str(cert_file)
    finally:
        server.clear()
        server.stop()


def test_tls_still_verifies_the_host_name(tls_store: tuple[HTTPServer, str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    server, trusted = tls_store
    server.expect_request("/ok").respond_with_data("ok")
    resolve_with(monkeypatch, lambda host: "127.0.0.1")
    session = new_session(public_only=True, address_check=only_127_0_0_1)
    answer = session.get(f"https://shop.example.com:{server.port}/ok", verify=trusted, timeout=2)
    assert answer.text == "ok"
    with pytest.raises(requests.exceptions.SSLError, match=r"other\.example\.com"):
        session.get(f"https://other.example.com:{server.port}/ok", verify=trusted, timeout=2)
    assert len(server.log) == 1
