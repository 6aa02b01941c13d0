"""HTTP sessions for calls to WooCommerce stores, optionally pinned to public addresses.

A store's host name is checked as text when the merchant connects (``stores``), but a public
name can resolve to this machine or its private network (``127.0.0.1.nip.io``), and DNS can
answer differently between a check and the connection (rebinding). So a pinned session checks
at connection time instead: every connection resolves the host itself, refuses when any of the
addresses is not public, and connects to one of the addresses it just checked. TLS still
verifies the certificate against the host name (SNI included), since only the socket changes.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family

from .stores import address_problem

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddressCheck = Callable[[IPAddress], str | None]
AddressInfo = tuple[Any, ...]  # one socket.getaddrinfo entry


class ForbiddenAddress(Exception):
    """The store's host resolved to an address that must not be called; nothing was sent.

    Deliberately not an OSError: urllib3 and requests would take one for a network failure
    (and urllib3 would retry it)."""

    def __init__(self, host: str, problem: str) -> None:
        super().__init__(f"{host} resolves to an address that is not public: {problem}")
        self.host = host
        self.problem = problem


def checked_addresses(host: str, port: int, check: AddressCheck = address_problem
                      ) -> list[AddressInfo]:
    """Every address ``host`` resolves to, or ForbiddenAddress when any one fails ``check``
    (one bad address is enough: a connection could fall back to it)."""
    found = socket.getaddrinfo(host.strip("[]"), port, allowed_gai_family(), socket.SOCK_STREAM)
    for entry in found:
        raw = str(entry[4][0])
        try:
            address = ipaddress.ip_address(raw)
        except ValueError:  # e.g. an IPv6 zone: never a public address
            raise ForbiddenAddress(host, f"{raw} is not a plain IP address") from None
        if (problem := check(address)) is not None:
            raise ForbiddenAddress(host, problem)
    return found


def _connect(connection: HTTPConnection, check: AddressCheck) -> socket.socket:
    """What urllib3's ``create_connection`` does, but only to addresses that passed ``check``,
    with urllib3's own exceptions so requests reports failures as it always does."""
    try:
        found = checked_addresses(connection._dns_host, connection.port, check)
    except socket.gaierror as error:
        raise NameResolutionError(connection.host, connection, error) from error
    if not found:
        raise NewConnectionError(connection, "Failed to establish a new connection: "
                                 f"{connection.host} resolves to no address")
    failure: OSError | None = None
    for family, kind, protocol, _, address in found:
        sock = socket.socket(family, kind, protocol)
        try:
            for option in connection.socket_options or ():
                sock.setsockopt(*option)
            sock.settimeout(connection.timeout)
            if connection.source_address:
                sock.bind(connection.source_address)
            sock.connect(address)
            return sock
        except OSError as error:  # the next address may answer
            sock.close()
            failure = error
    if isinstance(failure, TimeoutError):
        raise ConnectTimeoutError(connection, f"Connection to {connection.host} timed out. "
                                  f"(connect timeout={connection.timeout})") from failure
    raise NewConnectionError(connection,
                             f"Failed to establish a new connection: {failure}") from failure


class _Pinned:
    """Opens its socket through ``_connect``: to checked addresses only."""

    def __init__(self, *args: Any, address_check: AddressCheck = address_problem,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.address_check = address_check

    def _new_conn(self) -> socket.socket:
        return _connect(self, self.address_check)  # type: ignore[arg-type]


class PinnedHTTPConnection(_Pinned, HTTPConnection):
    pass


class PinnedHTTPSConnection(_Pinned, HTTPSConnection):
    pass


class _PinnedHTTPPool(HTTPConnectionPool):
    ConnectionCls = PinnedHTTPConnection


class _PinnedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = PinnedHTTPSConnection


class _PinnedPoolManager(PoolManager):
    def __init__(self, address_check: AddressCheck, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.address_check = address_check
        self.pool_classes_by_scheme = {"http": _PinnedHTTPPool, "https": _PinnedHTTPSPool}

    def _new_pool(self, scheme: str, host: str, port: int,
                  request_context: dict[str, Any] | None = None) -> HTTPConnectionPool:
        # The pool hands extra keywords to every connection it opens.
        context = dict(self.connection_pool_kw if request_context is None else request_context)
        context["address_check"] = self.address_check
        return super()._new_pool(scheme, host, port, context)


class PublicOnlyAdapter(HTTPAdapter):
    """A requests adapter whose every connection is pinned to addresses that pass
    ``address_check`` (public ones by default)."""

    def __init__(self, address_check: AddressCheck = address_problem, **kwargs: Any) -> None:
        self.address_check = address_check  # init_poolmanager runs inside super().__init__
        super().__init__(**kwargs)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False,
                         **pool_kwargs: Any) -> None:
        self._pool_connections = connections
        self._pool_maxsize = maxsize
        self._pool_block = block
        self.poolmanager = _PinnedPoolManager(self.address_check, num_pools=connections,
                                              maxsize=maxsize, block=block, **pool_kwargs)


def new_session(*, public_only: bool,
                address_check: AddressCheck = address_problem) -> requests.Session:
    """A session for one store's calls. Cookies are never kept: a store (or its CDN) setting
    one must not change how the next call is authenticated."""
    session = requests.Session()
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    if public_only:
        # A proxy from the environment would resolve the host itself, out of the check's reach.
        session.trust_env = False
        adapter = PublicOnlyAdapter(address_check)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
    return session
