"""The admin's sign-in form, with a limit on password guessing.

Every attempt counts, per client address and per username, on the shared
rate-limit cache (subscriptions.ratelimit): over either limit the form is
refused before the password is checked, so a guesser learns nothing more,
even with the right password, until the window is over. Per username, so
guesses spread over many addresses still stop; per address, so one address
cannot try username after username.
"""

import logging
from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from subscriptions import ratelimit

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 15 * 60
LIMIT_PER_USERNAME = 10
# Higher: a newsroom may sign in from behind one address.
LIMIT_PER_ADDRESS = 30
TOO_MANY = (
    "Too many sign-in attempts for this account or from this network. "
    f"Wait {WINDOW_SECONDS // 60} minutes, then try again."
)


class RateLimitedAdminLoginForm(AdminAuthenticationForm):
    def clean(self) -> dict[str, Any]:
        address = ratelimit.client_ip(self.request) if self.request is not None else ""
        username = self.cleaned_data.get("username") or ""
        # Both are counted on every attempt, whichever is already over.
        address_allowed = ratelimit.allow(
            "admin-login-ip", address, limit=LIMIT_PER_ADDRESS, window_seconds=WINDOW_SECONDS
        )
        username_allowed = not username or ratelimit.allow(
            "admin-login-username",
            username,
            limit=LIMIT_PER_USERNAME,
            window_seconds=WINDOW_SECONDS,
        )
        if not (address_allowed and username_allowed):
            logger.warning(
                "Admin sign-in refused: too many attempts %s (client %s)",
                "from this address" if not address_allowed else "for this username",
                address,
            )
            raise ValidationError(TOO_MANY, code="rate_limited")
        return super().clean()
