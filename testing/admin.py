"""Driving the Django admin as staff do."""

from typing import TYPE_CHECKING

from django.db.models import Model
from django.test import Client
from django.urls import reverse

if TYPE_CHECKING:
    # The test client's responses, with .context, .json() and the rest (stubs only).
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse


def run_admin_action(
    client: Client, action: str, objects: list[Model], *, follow: bool = False
) -> "TestResponse":
    """POST a changelist action on `objects`, as the admin's action menu does."""
    meta = objects[0]._meta
    url = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
    data = {"action": action, "_selected_action": [obj.pk for obj in objects]}
    return client.post(url, data, follow=follow)
