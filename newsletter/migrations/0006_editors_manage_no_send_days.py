"""Editors keep the calendar: they add and remove no-send days, and see each send slot."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

CODENAMES = [
    "add_nosendday",
    "change_nosendday",
    "delete_nosendday",
    "view_nosendday",
    "view_sendslot",
]


def grant(apps, schema_editor):
    app_config = apps.get_app_config("newsletter")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.filter(name="Editors").first()
    if group is None:
        return
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label="newsletter", codename__in=CODENAMES)
    )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.filter(name="Editors").first()
    if group is not None:
        group.permissions.remove(
            *Permission.objects.filter(content_type__app_label="newsletter", codename__in=CODENAMES)
        )


class Migration(migrations.Migration):
    dependencies = [("newsletter", "0005_send_slots")]

    operations = [migrations.RunPython(grant, revoke)]
