"""Fixed-window rate limits on the shared cache (Redis, or files in var/cache).

Counting on a cache every web process shares is what makes a limit hold
across processes; the keys hold a hash, never the address itself.
"""

import hashlib
import ipaddress
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest


def allow(scope: str, identity: str, *, limit: int, window_seconds: int) -> bool:
    """Count one attempt of `identity` in `scope`; False once over `limit` in the window."""
    digest = hashlib.sha256(f"{scope}:{identity.lower()}".encode()).hexdigest()[:32]
    window = int(time.time() // window_seconds)
    key = f"ratelimit:{scope}:{digest}:{window}"
    if cache.add(key, 1, timeout=window_seconds):
        return True
    try:
        count = cache.incr(key)
    except ValueError:
        # The key expired between add and incr: this is the window's first hit.
        cache.add(key, 1, timeout=window_seconds)
        return True
    return count <= limit


def client_ip(request: HttpRequest) -> str:
    """Who is counted: the client's address, an IPv6 one as its /64.

    One IPv6 host usually holds a whole /64 (it may pick any address in
    it), so counting single addresses would let it sign up without limit.
    """
    raw = forwarded_client(request)
    try:
        ip = ipaddress.ip_address(raw)
    except ValueError:
        return raw  # no address at all (a Unix socket, a test): counted as it is
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def forwarded_client(request: HttpRequest) -> str:
    """The client's address: the peer's, or behind our proxy the one the proxy saw.

    X-Forwarded-For is read only when the peer is one of TRUSTED_PROXIES
    (anyone reaching gunicorn directly could write any header), and then
    only the entry TRUSTED_PROXY_HOPS from the right, the one our outermost
    proxy appended; what the client wrote to the left of it is never read.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    if not settings.BEHIND_PROXY or not _is_trusted_proxy(remote):
        return remote
    forwarded = request.headers.get("x-forwarded-for", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    if not hops:
        return remote
    # Fewer entries than proxies: every entry was still written by one of ours.
    candidate = (
        hops[-settings.TRUSTED_PROXY_HOPS] if len(hops) >= settings.TRUSTED_PROXY_HOPS else hops[0]
    )
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return remote  # not an address: a misconfigured proxy, not a client to trust
    return candidate


def _is_trusted_proxy(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack listener reports IPv4 peers so
    return any(ip in network for network in settings.TRUSTED_PROXIES)
