"""Fixed-window rate limits on the shared cache (Redis, or files in var/cache).

Counting on a cache every web process shares is what makes a limit hold
across processes; the keys hold a hash, never the address itself.
"""

import hashlib
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
    """The client's address; behind our proxy, the one it saw (last X-Forwarded-For hop)."""
    if settings.BEHIND_PROXY:
        forwarded = request.headers.get("x-forwarded-for", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1]
    return request.META.get("REMOTE_ADDR", "")
