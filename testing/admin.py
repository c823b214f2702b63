"""Driving the Django admin as staff do."""

from django.db.models import Model
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse


def run_admin_action(
    client: Client, action: str, objects: list[Model], *, follow: bool = False
) -> HttpResponse:
    """POST a changelist action on `objects`, as the admin's action menu does."""
    meta = objects[0]._meta
    url = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
    data = {"action": action, "_selected_action": [obj.pk for obj in objects]}
    return client.post(url, data, follow=follow)
