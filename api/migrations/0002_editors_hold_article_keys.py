"""Editors may make their own API keys (article keys only: api.scopes decides which)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP_NAME = "Editors"
CODENAMES = ["add_apikey", "change_apikey", "view_apikey", "view_apiwrite"]


def grant(apps, schema_editor):
    app_config = apps.get_app_config("api")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP_NAME)
    permissions = Permission.objects.filter(content_type__app_label="api", codename__in=CODENAMES)
    if permissions.count() != len(CODENAMES):
        raise RuntimeError(f"Expected the permissions {CODENAMES} to exist.")
    group.permissions.add(*permissions)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.filter(name=GROUP_NAME).first()
    if group is not None:
        group.permissions.remove(
            *Permission.objects.filter(content_type__app_label="api", codename__in=CODENAMES)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0001_initial"),
        ("newsletter", "0003_editors_group"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
