"""The "Editors" staff group: write and publish articles, curate editions.

Editors get permissions on newsletter models only (deliveries read-only) and
none on any model of the subscriptions app, where readers and their billing
live: they can see how a send went, not who pays what, and they cannot
delete a reader.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP_NAME = "Editors"

PERMISSIONS = {
    "article": ["add", "change", "delete", "view"],
    "section": ["add", "change", "view"],
    "edition": ["change", "view"],
    "editionarticle": ["add", "change", "delete", "view"],
    "delivery": ["view"],
}


def create_editors_group(apps, schema_editor):
    # Permissions are normally created after all migrations ran
    # (post_migrate); create this app's now so the group can be given them
    # on a fresh database too.
    app_config = apps.get_app_config("newsletter")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP_NAME)
    codenames = [
        f"{action}_{model}" for model, actions in PERMISSIONS.items() for action in actions
    ]
    permissions = Permission.objects.filter(
        content_type__app_label="newsletter", codename__in=codenames
    )
    if permissions.count() != len(codenames):
        raise RuntimeError(f"Expected the permissions {codenames} to exist.")
    group.permissions.add(*permissions)


def remove_editors_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("newsletter", "0002_article_lead_image"),
    ]

    operations = [migrations.RunPython(create_editors_group, remove_editors_group)]
