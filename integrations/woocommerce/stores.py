"""A WooCommerce store's address, as the merchant typed it, made canonical and safe to call.

Whatever passes here becomes the base of outbound REST calls made with the store's API keys
and of the wc-auth redirect, so it is refused rather than repaired whenever it is ambiguous:
credentials in the URL, whitespace, numeric host spellings that resolvers read differently,
and (in production) hosts that name this machine or its private network. A public-looking
name can still resolve to a private address: ``transport`` checks what it resolves to.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import quote, urlsplit

import idna

MAX_LENGTH = 2_000
DEFAULT_PORTS = {"http": 80, "https": 443}
# Special-use names (RFC 6761, RFC 8375) and suffixes that only ever resolve inside a network.
INTERNAL_SUFFIXES = ("localhost", "local", "internal", "localdomain", "home.arpa", "lan",
                     "intranet", "test", "invalid")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# Resolvers (inet_aton) read "2130706433", "0x7f.1" and "0177.0.0.1" as IP addresses.
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)")
# NAT64 (RFC 6052) embeds an IPv4 address in the low 32 bits of this prefix.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"


class InvalidStoreUrl(ValueError):
    """The store URL cannot be used; the message says what is wrong with it."""


def _shown(raw: str) -> str:
    return repr(raw if len(raw) <= 80 else raw[:77] + "...")


def _check_characters(raw: str) -> None:
    for index, char in enumerate(raw):
        category = unicodedata.category(char)
        if char.isspace() or category in ("Zs", "Zl", "Zp"):
            raise InvalidStoreUrl(f"store URL contains whitespace at position {index}; "
                                  "paste the address alone, e.g. https://shop.example.com")
        if category in ("Cc", "Cf"):
            raise InvalidStoreUrl(f"store URL contains a control or invisible character "
                                  f"(U+{ord(char):04X}) at position {index}")
    if "\\" in raw:
        # Browsers read "\" as "/", Python does not: the two would disagree on the host.
        raise InvalidStoreUrl("store URL must not contain a backslash")


def address_problem(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why this address is not a public one, or None. Used on the URL's host here and on every
    address the host resolves to when a connection is opened (``transport``)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            inner = address_problem(embedded)
            return None if inner is None else f"{inner} (embedded in {address})"
    for name, kind in (("is_loopback", "a loopback"), ("is_unspecified", "an unspecified"),
                       ("is_link_local", "a link-local"), ("is_multicast", "a multicast"),
                       ("is_reserved", "a reserved"), ("is_private", "a private")):
        if getattr(address, name):
            return f"{address} is {kind} address"
    if not address.is_global:  # shared (CGNAT), documentation and benchmarking ranges
        return f"{address} is not a public address"
    return None


def _host(hostname: str, production: bool) -> str:
    """The canonical host (punycode, lowercase, brackets around IPv6) or InvalidStoreUrl."""
    if "%" in hostname:
        raise InvalidStoreUrl("store URL host must not contain '%' (percent-encoding or an "
                              "IPv6 zone)")
    try:
        address = ipaddress.ip_address(hostname)
    except ValueError:
        address = None
    if address is not None:
        if production and (problem := address_problem(address)):
            raise InvalidStoreUrl(f"store URL host {problem}; use the store's public "
                                  "domain name")
        return f"[{address.compressed}]" if address.version == 6 else str(address)
    name = hostname[:-1] if hostname.endswith(".") else hostname  # "shop.com." is shop.com
    if not name:
        raise InvalidStoreUrl("store URL has no host name")
    try:
        ascii_host = idna.encode(name, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as error:
        raise InvalidStoreUrl(f"store URL host {name!r} is not a valid domain name: "
                              f"{error}") from None
    labels = ascii_host.split(".")
    if len(ascii_host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise InvalidStoreUrl(f"store URL host {ascii_host!r} is not a valid domain name "
                              "(letters, digits and hyphens between dots)")
    if production:
        if _NUMERIC_LABEL.fullmatch(labels[-1]):
            raise InvalidStoreUrl(f"store URL host {ascii_host!r} looks like a numeric IP "
                                  "address; use the store's public domain name")
        for suffix in INTERNAL_SUFFIXES:
            if ascii_host == suffix or ascii_host.endswith("." + suffix):
                raise InvalidStoreUrl(f"store URL host {ascii_host!r} is an internal name "
                                      f"(.{suffix}); use the store's public domain name")
        if len(labels) == 1:
            raise InvalidStoreUrl(f"store URL host {ascii_host!r} is not a public domain name "
                                  "(it has no dot)")
    return ascii_host


def _path(path: str) -> str:
    segments = path.split("/")
    if any(segment in (".", "..") for segment in segments):
        raise InvalidStoreUrl("store URL path must not contain '.' or '..' segments")
    # Non-ASCII path characters are percent-encoded so the URL is plain ASCII everywhere.
    return quote(path, safe=_PATH_SAFE).rstrip("/")


def normalize_store_url(raw: str, *, production: bool) -> str:
    """The store's canonical base URL, e.g. ``https://shop.example.com`` or
    ``https://example.com/shop`` (WordPress may live under a path), or InvalidStoreUrl.

    A fragment is refused; a query is dropped; a default port is dropped; the host is lowercased and
    punycoded. ``production`` requires https and a public host."""
    if not isinstance(raw, str):
        raise InvalidStoreUrl(f"store URL must be text, got {type(raw).__name__}")
    if not raw:
        raise InvalidStoreUrl("store URL is empty")
    if len(raw) > MAX_LENGTH:
        raise InvalidStoreUrl(f"store URL is {len(raw)} characters long; the limit is "
                              f"{MAX_LENGTH}")
    _check_characters(raw)
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as error:
        raise InvalidStoreUrl(f"store URL {_shown(raw)} cannot be parsed: {error}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not raw[len(scheme):].startswith("://"):
        raise InvalidStoreUrl(f"store URL must start with https:// (or http:// outside "
                              f"production), got {_shown(raw)}")
    if production and scheme != "https":
        raise InvalidStoreUrl("store URL must use https in production: the API keys travel "
                              "with every request")
    if "#" in raw:
        raise InvalidStoreUrl("store URL must not contain a fragment (#...): give the "
                              "site's address only")
    if "@" in parts.netloc:
        raise InvalidStoreUrl("store URL must not contain a user name or password "
                              "(user:password@)")
    if not parts.hostname:
        raise InvalidStoreUrl(f"store URL has no host: {_shown(raw)}")
    if port == 0:
        raise InvalidStoreUrl("store URL port must be between 1 and 65535")
    host = _host(parts.hostname, production)
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    return f"{scheme}://{netloc}{_path(parts.path)}"
