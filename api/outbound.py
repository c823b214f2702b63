"""Requests the API makes to addresses someone else chose: webhook endpoints, lead images.

Anyone who can set such a URL could point it at this machine or the
network behind it (SSRF): the database, Redis, a cloud's metadata service.
So the address a connection really reaches is checked after DNS, on the
connected socket itself (a name that resolves to a public address when
checked and a private one when used is caught too), and refused unless it
is a global address, or API_ALLOW_PRIVATE_ADDRESSES allows the others.
No redirect is followed, no proxy from the environment is used, and every
request has a connect and a read timeout and a cap on what is read.
"""

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

import urllib3
from django.conf import settings
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0


class RefusedAddress(Exception):
    """The URL leads to an address outgoing requests may not reach."""


def address_allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(settings.API_ALLOW_PRIVATE_ADDRESSES) or ip.is_global


def check_url(url: str) -> None:
    """Refuse, before anything is stored, a URL whose host resolves to a refused address.

    The connection checks again (check_peer): DNS may answer differently then.
    """
    parsed = urllib3.util.parse_url(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise RefusedAddress("Only http:// and https:// addresses are allowed.")
    host = parsed.host.strip("[]")
    try:
        infos = socket.getaddrinfo(host, parsed.port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise RefusedAddress(f"{host} does not resolve.") from None
    for info in infos:
        if not address_allowed(str(info[4][0])):
            raise RefusedAddress(f"{host} is a private, loopback or otherwise non-public address.")


def check_peer(sock: socket.socket) -> None:
    peer = str(sock.getpeername()[0])
    if not address_allowed(peer):
        sock.close()
        raise RefusedAddress(f"Refused to connect to the non-public address {peer}.")


class _GuardedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        check_peer(sock)
        return sock


class _GuardedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        check_peer(sock)
        return sock


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


def _pool_manager() -> urllib3.PoolManager:
    manager = urllib3.PoolManager(
        num_pools=20,
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
        retries=False,
    )
    manager.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}
    return manager


_manager = _pool_manager()


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str
    truncated: bool


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    max_bytes: int = 64 * 1024,
) -> Answer:
    """One request, no redirects followed; RefusedAddress, or urllib3's errors, on failure."""
    check_url(url)
    try:
        response: Any = _manager.request(
            method,
            url,
            body=body,
            headers=headers,
            redirect=False,
            preload_content=False,
        )
    except urllib3.exceptions.MaxRetryError as error:
        # retries=False raises the underlying error itself; kept for safety.
        reason = error.reason
        if isinstance(reason, RefusedAddress):
            raise reason from None
        raise
    try:
        data = response.read(max_bytes + 1, decode_content=True)
    finally:
        response.release_conn()
    return Answer(
        status=response.status,
        body=data[:max_bytes],
        content_type=response.headers.get("Content-Type", ""),
        truncated=len(data) > max_bytes,
    )
