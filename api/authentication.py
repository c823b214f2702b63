"""Who is calling: an API key in `Authorization: Bearer <key>`, its scopes and its rate.

The key is looked up by its hash; a revoked key, or one whose owner left,
is refused like an unknown one. Keys go in a header, never in the URL,
where access logs would keep them.
"""

import datetime
from typing import TYPE_CHECKING

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.request import Request

from api import scopes
from api.models import ApiKey, ApiWrite, hash_key
from subscriptions import ratelimit

if TYPE_CHECKING:
    # Imported by rest_framework.views itself (through its settings): no cycle at run time.
    from rest_framework.views import APIView

# last_used_at is written at most this often per key: not a write per request.
LAST_USED_RESOLUTION = datetime.timedelta(minutes=1)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, ApiKey] | None:
        header = request.headers.get("Authorization", "")
        if not header:
            return None
        keyword, _, token = header.partition(" ")
        token = token.strip()
        if keyword != self.keyword or not token:
            raise exceptions.AuthenticationFailed("Send the key as “Authorization: Bearer <key>”.")
        key = ApiKey.objects.live().select_related("owner").filter(hashed=hash_key(token)).first()
        if key is None:
            raise exceptions.AuthenticationFailed("This key is unknown or revoked.")
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now
        return key.owner, key

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


def key_of(request: Request) -> ApiKey:
    key = request.auth
    if not isinstance(key, ApiKey):
        raise exceptions.NotAuthenticated()
    return key


class HasScope(permissions.BasePermission):
    """The view's `read_scopes` (any of them) for reads, its `write_scope` for writes.

    Held by the key and, still now, allowed to its owner (api.scopes).
    """

    message = "This key's scopes do not allow this."

    def has_permission(self, request: Request, view: "APIView") -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            return False
        if request.method in permissions.SAFE_METHODS or getattr(view, "reads_by_post", False):
            needed: tuple[str, ...] = getattr(view, "read_scopes", (ApiKey.Scope.READ,))
        else:
            needed = (getattr(view, "write_scope", ""),)
        return any(scope in key.scopes and scopes.may_hold(request.user, scope) for scope in needed)


class KeyRateThrottle(throttling.BaseThrottle):
    """Each key's own requests per minute (ApiKey.requests_per_minute), on the shared cache."""

    window_seconds = 60

    def allow_request(self, request: Request, view: "APIView") -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            return True  # refused by authentication or permissions anyway
        return ratelimit.allow(
            "api-key",
            str(key.pk),
            limit=key.requests_per_minute,
            window_seconds=self.window_seconds,
        )

    def wait(self) -> float:
        now = timezone.now().timestamp()
        return self.window_seconds - now % self.window_seconds


def record_write(request: Request, view: "APIView", status_code: int) -> None:
    """Every write a key made, accepted or not: the publisher's audit trail."""
    key = request.auth
    if getattr(view, "reads_by_post", False):
        return
    if isinstance(key, ApiKey) and request.method not in permissions.SAFE_METHODS:
        ApiWrite.objects.create(
            key=key, method=request.method or "", path=request.path[:300], status_code=status_code
        )
