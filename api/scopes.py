"""What each scope of a key reaches, and which staff permission it needs.

A key acts for its owner: a scope is granted only to an owner with its
permission, the one the admin asks for the same data, and is checked again
at every request (a permission taken away ends the scope at once). Editors
have the newsletter's permissions and none on readers: they may hold
article keys only.
"""

from django.contrib.auth.models import AbstractUser, AnonymousUser

from api.models import ApiKey

Scope = ApiKey.Scope

# The admin's permission for the same data (subscriptions.admin_privacy).
READERS_PERMISSION = "subscriptions.view_subscriber"
# The dashboard's figures of money and growth (dashboard.figures.BILLING).
BILLING_PERMISSION = "subscriptions.view_membership"

SCOPE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    Scope.READ: (READERS_PERMISSION,),
    Scope.WRITE_READERS: (READERS_PERMISSION, "subscriptions.change_subscriber"),
    Scope.WRITE_ARTICLES: ("newsletter.add_article", "newsletter.change_article"),
}


def may_hold(user: AbstractUser | AnonymousUser, scope: str) -> bool:
    """Whether `user` may hold (and a key of theirs may use) `scope`."""
    if not user.is_active or not getattr(user, "is_staff", False):
        return False
    return all(user.has_perm(permission) for permission in SCOPE_PERMISSIONS[scope])


def grantable(user: AbstractUser | AnonymousUser) -> list[str]:
    return [scope for scope in Scope.values if may_hold(user, scope)]
